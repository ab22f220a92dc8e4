"""Fixtures for aioflaskr's tests: an app on a temporary database, a client, a CLI runner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aioflaskr import create_app
from aioflaskr.db import Post, User, db, init_db
from werkzeug.security import generate_password_hash

from aioflask import Flask, run_sync
from aioflask.testing import FlaskClient, FlaskCliRunner

# Two users ("test" and "other", whose passwords are their names) and one post
# by "test". Password hashing is slow on purpose; a cheap method keeps the
# tests fast (check_password_hash reads the method from the hash).
USERS = [
    (name, generate_password_hash(name, method="pbkdf2:sha256:1000")) for name in ("test", "other")
]
POST = {
    "title": "test title",
    "body": "test\nbody",
    "author_id": 1,
    "created": datetime(2018, 1, 1),
}


def fill_db() -> None:
    init_db()
    db.session.add_all(User(username=name, password=password) for name, password in USERS)
    db.session.add(Post(**POST))
    db.session.commit()


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Flask]:
    """A new app for each test, on a database of its own, with the test data."""
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "aioflaskr.sqlite")})

    async with app.app_context():
        # The test runs on the event loop, not on the bridge: run_sync() puts
        # the sync Flask-SQLAlchemy calls there, as a view would be.
        await run_sync(fill_db)

    yield app

    # The pool's aiosqlite connections belong to this test's event loop.
    async with app.app_context():
        await run_sync(db.engine.dispose)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for the app: ``await client.get(...)``."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A runner for the app's Click commands: ``await runner.invoke(...)``."""
    return app.test_cli_runner()


class AuthActions:
    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    async def login(self, username: str = "test", password: str = "test") -> Any:
        return await self._client.post(
            "/auth/login", data={"username": username, "password": password}
        )

    async def logout(self) -> Any:
        return await self._client.get("/auth/logout")


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)
