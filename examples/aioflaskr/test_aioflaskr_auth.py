import asyncio

import pytest
from aioflaskr.db import User, db

from aioflask import g, run_sync, session


async def test_register(client, app):
    # The page renders without template errors.
    assert (await client.get("/auth/register")).status_code == 200

    # A successful registration redirects to the login page.
    response = await client.post("/auth/register", data={"username": "a", "password": "a"})
    assert response.headers["Location"] == "/auth/login"

    # The user was inserted into the database, with a hashed password.
    async with app.app_context():
        user = await run_sync(db.session.scalar, db.select(User).filter_by(username="a"))
    assert user is not None
    assert user.password != "a"


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("", "", b"Username is required."),
        ("a", "", b"Password is required."),
        ("test", "test", b"already registered"),
    ],
)
async def test_register_validate_input(client, username, password, message):
    response = await client.post(
        "/auth/register", data={"username": username, "password": password}
    )
    assert response.status_code == 200
    assert message in response.data


async def test_register_the_same_name_twice_at_once(app):
    # Both requests are in flight together (each waits for the database and
    # hashes in a thread): one registers, the other is told the name is taken.
    clients = [app.test_client(), app.test_client()]
    responses = await asyncio.gather(
        *(c.post("/auth/register", data={"username": "twice", "password": "a"}) for c in clients)
    )
    assert sorted(r.status_code for r in responses) == [200, 302]
    assert any(b"already registered" in r.data for r in responses)


async def test_login(client, auth):
    # The page renders without template errors.
    assert (await client.get("/auth/login")).status_code == 200

    # A successful login redirects to the index page.
    response = await auth.login()
    assert response.headers["Location"] == "/"

    # The login put the user id in the session; the next request loads the
    # user from it (the request context is kept for inspection).
    async with client:
        await client.get("/")
        assert session["user_id"] == 1
        assert g.user.username == "test"


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [("a", "test", b"Incorrect username."), ("test", "a", b"Incorrect password.")],
)
async def test_login_validate_input(auth, username, password, message):
    response = await auth.login(username, password)
    assert message in response.data


async def test_logout(client, auth):
    await auth.login()

    async with client:
        await auth.logout()
        assert "user_id" not in session


async def test_session_transaction(client):
    # Log in without the form: write the session directly.
    async with client.session_transaction() as sess:
        sess["user_id"] = 2

    response = await client.get("/")
    assert b"<span>other</span>" in response.data
    assert b"Log Out" in response.data
