import sqlite3

import pytest
from aioflaskr.db import get_db


async def test_get_close_db(app):
    async with app.app_context():
        db = await get_db()
        assert db is await get_db()

    # The async teardown closed the connection with the context.
    # (aiosqlite says "no active connection" or "Connection closed".)
    with pytest.raises(ValueError, match=r"closed|no active connection"):
        await db.execute("SELECT 1")


async def test_init_db_command(runner, monkeypatch):
    class Recorder:
        called = False

    async def fake_init_db():
        Recorder.called = True

    monkeypatch.setattr("aioflaskr.db.init_db", fake_init_db)
    result = await runner.invoke(args=["init-db"])
    assert "Initialized" in result.output
    assert Recorder.called


async def test_init_db_command_creates_the_tables(app, runner, tmp_path):
    app.config["DATABASE"] = str(tmp_path / "new" / "fresh.sqlite")
    result = await runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert result.output == "Initialized the database.\n"

    with sqlite3.connect(app.config["DATABASE"]) as db:
        tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        assert {"user", "post"} <= {name for (name,) in tables}
        assert db.execute("SELECT COUNT(*) FROM user").fetchone() == (0,)
    db.close()
