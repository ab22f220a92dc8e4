import sqlite3

from aioflaskr import create_app
from aioflaskr.db import User, db

from aioflask import run_sync


async def test_asyncio_driver_and_session_per_context(app):
    # SQLAlchemy's asyncio driver for SQLite: queries wait on the event loop.
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite+aiosqlite:///")

    async with app.app_context():
        user = await run_sync(db.session.get, User, 1)
        assert user.username == "test"
        session = db.session()
    # The teardown removed the context's session and gave its connection back.
    assert not session.in_transaction()
    assert list(session) == []


async def test_init_db_command(runner, monkeypatch):
    class Recorder:
        called = False

    def fake_init_db():
        Recorder.called = True

    monkeypatch.setattr("aioflaskr.db.init_db", fake_init_db)
    result = await runner.invoke(args=["init-db"])
    assert "Initialized" in result.output
    assert Recorder.called


async def test_init_db_command_creates_the_tables(tmp_path):
    path = tmp_path / "new" / "fresh.sqlite"
    app = create_app({"TESTING": True, "DATABASE": str(path)})
    result = await app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert result.output == "Initialized the database.\n"

    with sqlite3.connect(path) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        assert {"user", "post"} <= {name for (name,) in tables.fetchall()}
        assert connection.execute("SELECT COUNT(*) FROM user").fetchone() == (0,)
    connection.close()
    async with app.app_context():
        await run_sync(db.engine.dispose)
