"""Flask-SQLAlchemy and SQLAlchemy on asyncio drivers, through a real uvicorn.

Each test runs against a real PostgreSQL (asyncpg; a throwaway cluster, see
_postgres.py) and against SQLite (aiosqlite). ``tests/apps/db_app.py`` is the
app, written for Flask-SQLAlchemy and unmodified. Without PostgreSQL its tests
skip, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from _postgres import PostgresCluster, find_bindir
from _uvicorn import APPS_DIR, UvicornProcess

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    bindir = find_bindir()
    if bindir is None:
        reason = "PostgreSQL is not installed (initdb, postgres): apt-get install postgresql"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the PostgreSQL tests")
        pytest.skip(reason)
    cluster = PostgresCluster(bindir).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["postgresql", "sqlite"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database: PostgreSQL (asyncpg) or an SQLite file (aiosqlite)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.sqlite'}"
    import asyncpg

    cluster: PostgresCluster = request.getfixturevalue("postgres")
    name = f"test_{next(_databases)}"
    connection = await asyncpg.connect(cluster.dsn())
    try:
        await connection.execute(f"CREATE DATABASE {name}")
    finally:
        await connection.close()
    return cluster.url(name)


def flask(database_url: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``flask --app db_app <args>`` in tests/apps; its output."""
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "db_app", *args],
        cwd=APPS_DIR,
        env={**os.environ, "DATABASE_URL": database_url, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def serve(
    start_server: Callable[..., UvicornProcess], database_url: str
) -> Callable[..., UvicornProcess]:
    """Create the tables (``flask create-db``), then serve db_app with uvicorn."""

    def serve(**env: str) -> UvicornProcess:
        flask(database_url, "create-db", env=env)
        return start_server("db_app:app", env={"DATABASE_URL": database_url, **env})

    return serve


@pytest.fixture
async def http(serve: Callable[..., UvicornProcess]) -> AsyncIterator[httpx.AsyncClient]:
    server = serve()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield http


async def test_create_all_in_a_sync_cli_command(database_url: str) -> None:
    assert flask(database_url, "create-db") == "created ['post', 'user']\n"
    assert flask(database_url, "count-users") == "0 users\n"


async def test_flask_sqlalchemy_api_in_sync_and_async_views_and_hooks(
    http: httpx.AsyncClient,
) -> None:
    assert (await http.post("/users/ada", params={"posts": 2})).json() == {"id": 1}
    for name in ("bob", "cy", "dee", "eve"):
        assert (await http.post(f"/users/{name}")).status_code == 201
    # Model.query, in a sync view.
    assert (await http.get("/users")).json() == ["ada", "bob", "cy", "dee", "eve"]
    # db.paginate(), in an async view.
    assert (await http.get("/page/3")).json() == {"items": ["eve"], "total": 5, "pages": 3}
    # A sync hook (Model.query), lazy loading in an async view, an async hook.
    response = await http.get("/whoami", headers={"X-User": "ada"})
    assert response.json() == {"name": "ada", "posts": ["ada 0", "ada 1"]}
    assert response.headers["X-Users"] == "5"
    assert (await http.get("/whoami", headers={"X-User": "nobody"})).status_code == 401
    # Lazy loading both ways in a sync view; get_or_404.
    assert (await http.get("/posts/2/author")).json() == {"author": "ada", "posts": 2}
    assert (await http.get("/posts/9/author")).status_code == 404
    # Plain SQLAlchemy: create_engine() and Session.
    assert (await http.get("/plain")).json() == {
        "names": ["ada", "bob", "cy", "dee", "eve"],
        "one": 1,
    }
    # The unique constraint: an IntegrityError is a 500; nothing stays checked out.
    assert (await http.post("/users/ada")).status_code == 500
    assert (await http.get("/stats")).json()["checked_out"] == 0


async def test_concurrent_queries_on_one_worker(serve: Callable[..., UvicornProcess]) -> None:
    """200 requests, each running a 50 ms query: the server has them in flight at once."""
    server = serve(POOL_SIZE="200", MAX_OVERFLOW="0")
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as http:
        responses = await asyncio.gather(*(http.get("/sleep") for _ in range(200)))
        assert [r.status_code for r in responses] == [200] * 200
        stats = (await http.get("/stats")).json()
    print(f"peak of queries in flight: {stats['peak']} of 200")
    assert stats["ended"] == ["ok"] * 200
    # A driver that blocked the loop would have had one query at a time.
    assert stats["peak"] >= 20
    assert stats["checked_out"] == 0


@pytest.mark.parametrize("path", ["/fail", "/async-fail"])
async def test_an_error_rolls_the_transaction_back(http: httpx.AsyncClient, path: str) -> None:
    assert (await http.post("/users/ada")).status_code == 201
    assert (await http.post(f"{path}/bob")).status_code == 500
    # The flushed INSERT was rolled back; the connection went back clean.
    assert (await http.get("/users")).json() == ["ada"]
    assert (await http.post("/users/bob")).status_code == 201
    assert (await http.get("/users")).json() == ["ada", "bob"]
    assert (await http.get("/stats")).json()["checked_out"] == 0


async def _wait_for(http: httpx.AsyncClient, check: Callable[[dict[str, Any]], bool]) -> Any:
    for _ in range(1000):
        stats = (await http.get("/stats")).json()
        if check(stats):
            return stats
        await asyncio.sleep(0.01)
    raise AssertionError(f"never reached: {stats}")


async def _backends(database_url: str, postgres: PostgresCluster) -> list[tuple[str, str]]:
    """The (state, query) of the other connections to the test's PostgreSQL database."""
    import asyncpg

    connection = await asyncpg.connect(postgres.dsn(database_url.rsplit("/", 1)[1]))
    try:
        rows = await connection.fetch(
            "SELECT state, query FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    return [(row["state"], row["query"]) for row in rows]


async def test_a_disconnect_cancels_the_running_query(
    serve: Callable[..., UvicornProcess], database_url: str, request: pytest.FixtureRequest
) -> None:
    """The client goes away mid-query: the query is cancelled, the connection not reused dirty.

    PostgreSQL stops the query at once (asyncpg sends a cancel request). SQLite
    cannot stop a statement in its thread: SQLAlchemy closes the connection
    when the statement is over, so the query there sleeps 2 s only.
    """
    seconds = 20 if database_url.startswith("postgresql") else 2
    # One connection in the pool: the next requests must get a clean one.
    server = serve(POOL_SIZE="1", MAX_OVERFLOW="0")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        assert (await http.post("/users/ada")).status_code == 201
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as leaving:
            query = asyncio.create_task(leaving.get("/sleep", params={"s": seconds}))
            await _wait_for(http, lambda stats: stats["in_flight"] == 1)
            postgres = None
            if database_url.startswith("postgresql"):
                postgres = request.getfixturevalue("postgres")
                assert ("active", "SELECT pg_sleep($1)") in await _backends(database_url, postgres)
            query.cancel()
        stats = await _wait_for(http, lambda stats: stats["ended"] == ["CancelledError"])
        assert stats["in_flight"] == 0
        stats = await _wait_for(http, lambda stats: stats["checked_out"] == 0)
        # The pool's only connection serves the next requests, in a clean state.
        assert (await http.post("/users/bob")).status_code == 201
        assert (await http.get("/users")).json() == ["ada", "bob"]
        assert (await http.get("/sleep", params={"s": 0})).json() == {"ok": True}
        assert (await http.get("/stats")).json()["checked_out"] == 0
    if postgres is not None:
        # The cancelled query stopped on the server; no backend is left
        # running it or idle in a transaction.
        for _ in range(500):
            backends = await _backends(database_url, postgres)
            if all(state == "idle" for state, _ in backends):
                break
            await asyncio.sleep(0.01)
        assert all(state == "idle" for state, _ in backends), backends


async def test_flask_migrate_init_migrate_upgrade(database_url: str, tmp_path: Path) -> None:
    env = {"MIGRATIONS_DIR": str(tmp_path / "migrations")}
    flask(database_url, "db", "init", env=env)
    # Autogenerate reads the (empty) database; upgrade creates the tables.
    flask(database_url, "db", "migrate", "-m", "users and posts", env=env)
    [revision] = (tmp_path / "migrations" / "versions").glob("*_users_and_posts.py")
    assert "op.create_table('user'" in revision.read_text()
    flask(database_url, "db", "upgrade", env=env)
    assert flask(database_url, "db", "current", env=env).strip().endswith("(head)")
    # The schema is there: a command queries it, and the script writes.
    assert flask(database_url, "count-users") == "0 users\n"
    script = subprocess.run(
        [sys.executable, "db_script.py"],
        cwd=APPS_DIR,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert script.returncode == 0, script.stderr
    assert script.stdout == "flask-sqlalchemy: ['script']\nplain: 1\n"


def test_a_sync_driver_in_a_request_warns_what_to_use(tmp_path: Path) -> None:
    import sqlalchemy as sa
    from flask_sqlalchemy import SQLAlchemy

    import aioflask

    app = aioflask.Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'sync.sqlite'}"
    db = SQLAlchemy(app)

    @app.get("/")
    def index() -> Any:
        return {"one": db.session.scalar(sa.text("SELECT 1"))}

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.get("/")

    with pytest.warns(aioflask.BlockingDriverWarning) as warned:
        assert asyncio.run(get()).json() == {"one": 1}
    message = str(warned[0].message)
    assert "sqlite+pysqlite" in message and "sqlite+aiosqlite://" in message
    # Outside requests (a command, a script) it does not block anyone: no warning.
    with app.app_context():
        assert db.session.scalar(sa.text("SELECT 2")) == 2
    with app.app_context():  # the session gave its connection back: close them all
        db.engine.dispose()


async def test_a_sync_driver_blocks_the_worker_and_says_so(
    start_server: Callable[..., UvicornProcess], tmp_path: Path
) -> None:
    """The contrast: sqlite3 (sync) under uvicorn runs one query at a time, and warns."""
    database_url = f"sqlite:///{tmp_path / 'sync.sqlite'}"
    flask(database_url, "create-db")
    server = start_server("db_app:app", env={"DATABASE_URL": database_url})
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        responses = await asyncio.gather(*(http.get("/sleep") for _ in range(20)))
        assert [r.status_code for r in responses] == [200] * 20
        assert (await http.get("/stats")).json()["peak"] == 1
    assert "BlockingDriverWarning" in server.log
    assert "sqlite+aiosqlite://" in server.log


async def test_the_warning_does_not_depend_on_import_order(
    start_server: Callable[..., UvicornProcess], tmp_path: Path
) -> None:
    """An app factory that imports SQLAlchemy after making the app warns too."""
    database_url = f"sqlite:///{tmp_path / 'sync.sqlite'}"
    server = start_server(
        "db_factory_app:create_app", env={"DATABASE_URL": database_url}, args=("--factory",)
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        assert (await http.get("/one")).json() == {"one": 1}
    assert "BlockingDriverWarning" in server.log
    assert "sqlite+aiosqlite://" in server.log


def test_a_cluster_that_fails_to_start_leaves_nothing(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool, script in (("initdb", "exit 0"), ("postgres", "echo 'FATAL: no way'; exit 1")):
        (bindir / tool).write_text(f"#!/bin/sh\n{script}\n")
        (bindir / tool).chmod(0o755)
    cluster = PostgresCluster(bindir)
    cluster._user = None  # the fake tools are the test's own (as root: not postgres's)
    with pytest.raises(RuntimeError, match=r"(?s)postgres did not start.*FATAL: no way"):
        cluster.start()
    assert not cluster.dir.exists()


def test_a_killed_test_run_leaves_no_server_running(postgres: PostgresCluster) -> None:
    """A test run killed outright (a CI timeout) takes its PostgreSQL server with it."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from pathlib import Path\n"
        "from _postgres import PostgresCluster\n"
        "cluster = PostgresCluster(Path(sys.argv[2])).start()\n"
        "pid = (cluster.data / 'postmaster.pid').read_text().split()[0]\n"
        "print(pid, cluster.dir, flush=True)\n"
        "sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(postgres.bindir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as run:
        assert run.stdout is not None
        pid, directory = run.stdout.readline().split()
        try:
            os.kill(int(pid), 0)  # the server runs
            run.kill()
            run.wait()
            for _ in range(1000):
                try:
                    os.kill(int(pid), 0)
                except ProcessLookupError:
                    break
                time.sleep(0.01)
            else:
                raise AssertionError(f"postgres {pid} outlived the killed test run")
        finally:
            run.kill()
            shutil.rmtree(directory, ignore_errors=True)
