import pytest
from aioflaskr.db import db

from aioflask import run_sync


async def fetch_one(app, sql):
    """One row of a raw SQL query, or None."""
    async with app.app_context():
        return await run_sync(lambda: db.session.execute(db.text(sql)).mappings().first())


async def execute(app, sql):
    async with app.app_context():
        await run_sync(lambda: (db.session.execute(db.text(sql)), db.session.commit()))


async def test_index(client, auth):
    response = await client.get("/")
    assert b"Log In" in response.data
    assert b"Register" in response.data

    await auth.login()
    response = await client.get("/")
    assert b"Log Out" in response.data
    assert b"test title" in response.data
    assert b"by test on 2018-01-01" in response.data
    assert b"test\nbody" in response.data
    assert b'href="/1/update"' in response.data


@pytest.mark.parametrize("path", ["/create", "/1/update", "/1/delete"])
async def test_login_required(client, path):
    response = await client.post(path)
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login"


async def test_author_required(app, client, auth):
    # Give the post to another user.
    await execute(app, "UPDATE post SET author_id = 2 WHERE id = 1")

    await auth.login()
    # The current user can't modify another user's post...
    assert (await client.post("/1/update")).status_code == 403
    assert (await client.post("/1/delete")).status_code == 403
    # ...and doesn't see the edit link.
    assert b'href="/1/update"' not in (await client.get("/")).data


@pytest.mark.parametrize("path", ["/2/update", "/2/delete"])
async def test_exists_required(client, auth, path):
    await auth.login()
    response = await client.post(path)
    assert response.status_code == 404
    assert b"Post id 2 doesn&#39;t exist." in response.data


async def test_create(client, auth, app):
    await auth.login()
    assert (await client.get("/create")).status_code == 200
    response = await client.post("/create", data={"title": "created", "body": ""})
    assert response.headers["Location"] == "/"

    assert (await fetch_one(app, "SELECT COUNT(id) AS n FROM post"))["n"] == 2
    post = await fetch_one(app, "SELECT * FROM post WHERE id = 2")
    assert (post["title"], post["author_id"]) == ("created", 1)


async def test_update(client, auth, app):
    await auth.login()
    assert (await client.get("/1/update")).status_code == 200
    await client.post("/1/update", data={"title": "updated", "body": ""})

    post = await fetch_one(app, "SELECT * FROM post WHERE id = 1")
    assert post["title"] == "updated"


@pytest.mark.parametrize("path", ["/create", "/1/update"])
async def test_create_update_validate(client, auth, path):
    await auth.login()
    response = await client.post(path, data={"title": "", "body": ""})
    assert b"Title is required." in response.data


async def test_delete(client, auth, app):
    await auth.login()
    response = await client.post("/1/delete")
    assert response.headers["Location"] == "/"

    assert await fetch_one(app, "SELECT * FROM post WHERE id = 1") is None


async def test_follow_redirects(client, auth):
    # The whole round trip: log in, write a post, see it on the index.
    await auth.login()
    response = await client.post(
        "/create", data={"title": "A day out", "body": "It rained."}, follow_redirects=True
    )
    assert response.status_code == 200
    assert response.request.path == "/"
    assert b"A day out" in response.data
    assert b"It rained." in response.data
