"""Fixtures for aioflaskr's tests: an app on a temporary database, a client, a CLI runner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aioflaskr import create_app
from aioflaskr.db import get_db, init_db
from werkzeug.security import generate_password_hash

from aioflask import Flask
from aioflask.testing import FlaskClient, FlaskCliRunner

# Two users ("test" and "other", whose passwords are their names) and one post
# by "test". Password hashing is slow on purpose; a cheap method keeps the
# tests fast (check_password_hash reads the method from the hash).
USERS = [
    (name, generate_password_hash(name, method="pbkdf2:sha256:1000")) for name in ("test", "other")
]
POST = ("test title", "test\nbody", 1, "2018-01-01 00:00:00")


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Flask]:
    """A new app for each test, on a database of its own, with the test data."""
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "aioflaskr.sqlite")})

    async with app.app_context():
        await init_db()
        db = await get_db()
        await db.executemany("INSERT INTO user (username, password) VALUES (?, ?)", USERS)
        await db.execute(
            "INSERT INTO post (title, body, author_id, created) VALUES (?, ?, ?, ?)", POST
        )
        await db.commit()
    # Leaving the context closed the connection (the async teardown).

    yield app


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
