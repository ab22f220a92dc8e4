"""Flask extensions, unmodified, on aioflask: the real packages, through the
async test client (and Flask-Login with Flask-WTF through a real uvicorn).

Where an extension calls a function without ``ensure_sync`` (Flask-Login's
``user_loader``, Flask-CORS's ``cross_origin``), the tests use
:func:`aioflask.patch.wrap_async` and show what happens without it.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import re
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import flask
import httpx
import jinja2
import pytest
import sqlalchemy as sa
from flask_caching import Cache
from flask_cors import CORS, cross_origin
from flask_login import (
    FlaskLoginClient,
    LoginManager,
    UserMixin,
    current_user,
    fresh_login_required,
    login_required,
    login_user,
    logout_user,
)
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from wtforms import StringField
from wtforms.validators import DataRequired

import aioflask
from aioflask import Flask, abort, request, run_sync
from aioflask.patch import wrap_async


def make_app() -> Flask:
    app = Flask(__name__)
    app.secret_key = "test-only"
    return app


def close_left_coroutines(error: BaseException) -> int:
    """Close the coroutines an extension left un-awaited; how many it closed.

    They are in the frames of ``error``'s traceback. Closed here, they never
    warn "was never awaited" (an error under ``filterwarnings = error``) in
    whatever test happens to collect them.
    """
    closed = 0
    tb = error.__traceback__
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if inspect.iscoroutine(value) and value.cr_frame is not None:
                value.close()
                closed += 1
        tb = tb.tb_next
    return closed


# -- Flask-Login -------------------------------------------------------------------------


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


USERS = {"1": "ada", "2": "alan"}


def login_app(*, async_loader: bool) -> tuple[Flask, list[str]]:
    """An app with login/logout views and ``async def`` views behind login_required.

    Returns the app and the list of user ids its user loader was called with.
    """
    app = make_app()
    manager = LoginManager(app)
    loads: list[str] = []

    if async_loader:

        @wrap_async(manager.user_loader)
        async def load_user(user_id: str) -> User | None:
            await asyncio.sleep(0)
            loads.append(user_id)
            return User(user_id) if user_id in USERS else None

    else:

        @manager.user_loader
        def load_user(user_id: str) -> User | None:
            loads.append(user_id)
            return User(user_id) if user_id in USERS else None

    @app.post("/login/<user_id>")
    async def login(user_id: str) -> Any:
        await asyncio.sleep(0)
        login_user(User(user_id), remember=request.args.get("remember") == "1")
        return {"logged_in": user_id}

    @app.post("/logout")
    @login_required
    async def logout() -> Any:
        logout_user()
        return {"logged_in": None}

    @app.get("/me")
    @login_required
    async def me() -> Any:
        await asyncio.sleep(0)
        return {"id": current_user.id, "name": USERS[current_user.id]}

    @app.get("/fresh")
    @fresh_login_required
    async def fresh() -> Any:
        return {"fresh": True}

    @app.get("/sync-me")
    @login_required
    def sync_me() -> Any:
        return {"id": current_user.id}

    @app.get("/template")
    async def template() -> Any:
        # Flask-Login's context processor loads the user (sync, on the bridge).
        return await aioflask.render_template_string(
            "{% if current_user.is_authenticated %}{{ current_user.id }}"
            "{% else %}anonymous{% endif %}"
        )

    @app.get("/preloaded")
    async def preloaded() -> Any:
        # Loading the user from sync code run with run_sync works as well.
        user = await run_sync(current_user._get_current_object)
        return {"authenticated": user.is_authenticated}

    return app, loads


@pytest.mark.parametrize("async_loader", [False, True], ids=["sync-loader", "async-loader"])
def test_flask_login_client_in_a_sync_test(async_loader: bool) -> None:
    """Flask-Login's own test client subclass, unmodified, in a sync test."""
    app, _ = login_app(async_loader=async_loader)
    app.test_client_class = FlaskLoginClient
    client = app.test_client(user=User("2"))
    assert isinstance(client, aioflask.testing.FlaskClient)  # requests go through ASGI
    assert client.get("/me").json == {"id": "2", "name": "alan"}
    assert client.get("/template").text == "2"
    assert app.test_client().get("/me").status_code == 401


async def test_flask_login_client_in_an_async_test() -> None:
    app, _ = login_app(async_loader=True)
    app.test_client_class = FlaskLoginClient
    client = app.test_client(user=User("1"))
    assert (await client.get("/me")).json == {"id": "1", "name": "ada"}


@pytest.mark.parametrize("async_loader", [False, True], ids=["sync-loader", "async-loader"])
async def test_login_flow_with_async_views(async_loader: bool) -> None:
    app, loads = login_app(async_loader=async_loader)
    client = app.test_client()

    assert (await client.get("/me")).status_code == 401
    assert (await client.post("/logout")).status_code == 401

    response = await client.post("/login/1")
    assert response.json == {"logged_in": "1"}
    assert client.get_cookie("session") is not None

    response = await client.get("/me")
    assert response.status_code == 200
    assert response.json == {"id": "1", "name": "ada"}
    assert (await client.get("/sync-me")).json == {"id": "1"}
    assert (await client.get("/fresh")).json == {"fresh": True}
    assert (await client.get("/template")).text == "1"
    assert (await client.get("/preloaded")).json == {"authenticated": True}
    # Once per request that needed the user.
    assert loads == ["1"] * 5

    assert (await client.post("/logout")).json == {"logged_in": None}
    assert (await client.get("/me")).status_code == 401
    assert (await client.get("/template")).text == "anonymous"
    assert (await client.get("/preloaded")).json == {"authenticated": False}


async def test_login_required_redirects_to_login_view() -> None:
    app, _ = login_app(async_loader=True)

    @app.get("/login")
    async def login_form() -> Any:
        return "log in"

    app.login_manager.login_view = "login_form"  # type: ignore[attr-defined]
    response = await app.test_client().get("/me")
    assert response.status_code == 302
    assert response.location == "/login?next=%2Fme"


async def test_unknown_user_in_session_is_anonymous() -> None:
    app, loads = login_app(async_loader=True)
    client = app.test_client()
    async with client.session_transaction() as sess:
        sess["_user_id"] = "99"
        sess["_fresh"] = True
    assert (await client.get("/me")).status_code == 401
    assert loads == ["99"]


async def test_session_transaction_logs_in() -> None:
    app, _ = login_app(async_loader=True)
    client = app.test_client()
    async with client.session_transaction() as sess:
        sess["_user_id"] = "2"
        sess["_fresh"] = False
    assert (await client.get("/me")).json == {"id": "2", "name": "alan"}
    # Not fresh: fresh_login_required refuses (401, no login view set).
    assert (await client.get("/fresh")).status_code == 401


@pytest.mark.parametrize("async_loader", [False, True], ids=["sync-loader", "async-loader"])
async def test_remember_me_cookie_restores_the_login(async_loader: bool) -> None:
    app, loads = login_app(async_loader=async_loader)
    client = app.test_client()
    await client.post("/login/2?remember=1")
    assert client.get_cookie("remember_token") is not None
    client.delete_cookie("session")
    assert (await client.get("/me")).json == {"id": "2", "name": "alan"}
    # Restored from the remember cookie: not fresh.
    assert (await client.get("/fresh")).status_code == 401
    assert loads == ["2", "2"]


async def test_current_user_in_async_view_with_sync_loader() -> None:
    app, _ = login_app(async_loader=False)

    @app.get("/whoami")
    async def whoami() -> Any:
        await asyncio.sleep(0)
        return {"authenticated": current_user.is_authenticated}

    client = app.test_client()
    assert (await client.get("/whoami")).json == {"authenticated": False}
    await client.post("/login/1")
    assert (await client.get("/whoami")).json == {"authenticated": True}


async def test_async_context_inspection_after_login() -> None:
    app, _ = login_app(async_loader=True)
    client = app.test_client()
    await client.post("/login/1")
    async with client:
        await client.get("/me")
        # The request's context is kept: the user loaded for it is there.
        assert current_user.id == "1"
        assert flask.g._login_user.id == "1"


async def test_async_user_loader_needs_wrap_async() -> None:
    # Flask-Login calls the loader synchronously: registered as it is, an
    # async def loader makes current_user a coroutine object.
    app = make_app()
    app.testing = True
    manager = LoginManager(app)

    @manager.user_loader
    async def load_user(user_id: str) -> User:
        return User(user_id)

    @app.get("/me")
    @login_required
    async def me() -> Any:
        return {"id": current_user.id}

    client = app.test_client()
    async with client.session_transaction() as sess:
        sess["_user_id"] = "1"
    left = []

    @app.teardown_appcontext
    def close_left_coroutine(exc: BaseException | None) -> None:
        # What the loader returned was kept in g; close it (no warning).
        user = flask.g.pop("_login_user", None)
        if inspect.iscoroutine(user):
            user.close()
            left.append(user)

    with pytest.raises(AttributeError, match="'coroutine' object has no attribute"):
        await client.get("/me")
    assert len(left) == 1


async def test_async_loader_first_used_in_async_view() -> None:
    # No login_required to load the user first: current_user is loaded in the
    # async view's own code, and the wrapped loader waits from there.
    app, loads = login_app(async_loader=True)

    @app.get("/whoami")
    async def whoami() -> Any:
        return {"authenticated": current_user.is_authenticated}

    client = app.test_client()
    assert (await client.get("/whoami")).json == {"authenticated": False}
    await client.post("/login/1")
    assert (await client.get("/whoami")).json == {"authenticated": True}
    assert loads == ["1"]


# -- Flask-WTF ---------------------------------------------------------------------------

FORM_TEMPLATE = (
    '<form method="post">{{ form.csrf_token }}{{ form.name() }}</form>'
    "{% for errors in form.errors.values() %}{% for error in errors %}"
    "<p class=error>{{ error }}</p>{% endfor %}{% endfor %}"
)


class NameForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired()])


def csrf_token_of(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def wtf_app(*, protect: bool = True) -> Flask:
    app = make_app()
    app.jinja_loader = jinja2.DictLoader({"form.html": FORM_TEMPLATE})
    if protect:
        CSRFProtect(app)

    @app.route("/async-form", methods=["GET", "POST"])
    async def async_form() -> Any:
        form = NameForm()
        if form.validate_on_submit():
            await asyncio.sleep(0)
            return {"hello": form.name.data}
        return await aioflask.render_template("form.html", form=form)

    @app.route("/sync-form", methods=["GET", "POST"])
    def sync_form() -> Any:
        form = NameForm()
        if form.validate_on_submit():
            return {"hello": form.name.data}
        # Flask's own sync render_template, through the bridge.
        return flask.render_template("form.html", form=form)

    return app


@pytest.mark.parametrize("view", ["/async-form", "/sync-form"])
async def test_csrf_protected_form_post(view: str) -> None:
    client = wtf_app().test_client()
    response = await client.get(view)
    assert response.status_code == 200
    token = csrf_token_of(response.text)

    response = await client.post(view, data={"csrf_token": token, "name": "Ada"})
    assert response.status_code == 200
    assert response.json == {"hello": "Ada"}

    # A valid token, an invalid form: the form again, with its error.
    response = await client.post(view, data={"csrf_token": token, "name": ""})
    assert response.status_code == 200
    assert "This field is required." in response.text

    response = await client.post(view, data={"name": "Ada"})
    assert response.status_code == 400
    assert "The CSRF token is missing." in response.text

    response = await client.post(view, data={"csrf_token": "forged", "name": "Ada"})
    assert response.status_code == 400
    assert "The CSRF token is invalid." in response.text


async def test_csrf_token_is_tied_to_the_session() -> None:
    app = wtf_app()
    first, second = app.test_client(), app.test_client()
    token = csrf_token_of((await first.get("/async-form")).text)
    await second.get("/async-form")
    response = await second.post("/async-form", data={"csrf_token": token, "name": "Ada"})
    assert response.status_code == 400


async def test_csrf_token_in_header_and_async_error_handler() -> None:
    app = wtf_app()

    @app.errorhandler(CSRFError)
    async def csrf_error(error: CSRFError) -> Any:
        await asyncio.sleep(0)
        return {"csrf": error.description}, 400

    @app.post("/api")
    async def api() -> Any:
        return {"ok": True}

    client = app.test_client()
    token = csrf_token_of((await client.get("/async-form")).text)
    response = await client.post("/api", headers={"X-CSRFToken": token})
    assert response.json == {"ok": True}
    response = await client.post("/api")
    assert response.status_code == 400
    assert response.json == {"csrf": "The CSRF token is missing."}


async def test_csrf_exempt_async_view() -> None:
    app = make_app()
    csrf = CSRFProtect(app)

    @app.post("/hook")
    @csrf.exempt
    async def hook() -> Any:
        return {"ok": True}

    assert (await app.test_client().post("/hook")).json == {"ok": True}


async def test_form_in_async_view_without_csrf_protect() -> None:
    # Only the form's own CSRF check: the body is first read by the FlaskForm
    # built in the async view (no before_request read it).
    app = wtf_app(protect=False)
    client = app.test_client()
    token = csrf_token_of((await client.get("/async-form")).text)
    response = await client.post("/async-form", data={"csrf_token": token, "name": "Ada"})
    assert response.json == {"hello": "Ada"}
    response = await client.post("/async-form", data={"name": "Ada"})
    assert response.status_code == 200
    assert "<p class=error>The CSRF token is missing.</p>" in response.text


async def test_form_built_with_run_sync() -> None:
    app = wtf_app(protect=False)

    @app.post("/bridged")
    async def bridged() -> Any:
        form = await run_sync(NameForm)
        if form.validate_on_submit():
            return {"hello": form.name.data}
        return {"errors": form.errors}, 400

    client = app.test_client()
    token = csrf_token_of((await client.get("/async-form")).text)
    response = await client.post("/bridged", data={"csrf_token": token, "name": "Ada"})
    assert response.json == {"hello": "Ada"}
    response = await client.post("/bridged", data={"name": "Ada"})
    assert response.json == {"errors": {"csrf_token": ["The CSRF token is missing."]}}


# -- Flask-SQLAlchemy ---------------------------------------------------------------------


# These tests use the sync sqlite3 driver on purpose (the asyncio drivers are
# tested in test_databases.py): it works, with a warning that it blocks the loop.
sync_driver = pytest.mark.filterwarnings("ignore::aioflask.BlockingDriverWarning")


class SQLAApp:
    """An app with Flask-SQLAlchemy on an sqlite file, and what its views saw."""

    def __init__(self, tmp_path: Path) -> None:
        class Base(DeclarativeBase):
            pass

        self.path = tmp_path / "test.sqlite"
        self.app = app = make_app()
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{self.path}"
        self.db = db = SQLAlchemy(app, model_class=Base)
        #: The Session objects the views used, in order.
        self.sessions: list[Any] = []

        class Item(db.Model):  # type: ignore[name-defined]
            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str] = mapped_column(sa.String(50), unique=True)

        self.Item = Item
        barrier = asyncio.Event()
        self.barrier = barrier
        self.waiting = 0

        @app.post("/items/<name>")
        async def add(name: str) -> Any:
            await asyncio.sleep(0)
            item = Item(name=name)
            db.session.add(item)
            db.session.commit()
            self.sessions.append(db.session())
            return {"id": item.id}, 201

        @app.get("/items")
        def list_items() -> Any:
            self.sessions.append(db.session())
            return [i.name for i in db.session.scalars(sa.select(Item).order_by(Item.id))]

        @app.get("/items/<int:item_id>")
        async def get(item_id: int) -> Any:
            item = db.get_or_404(Item, item_id)
            await asyncio.sleep(0)
            self.sessions.append(db.session())
            return {"id": item.id, "name": item.name}

        @app.get("/count")
        async def count() -> Any:
            before = db.session()
            self.waiting += 1
            await barrier.wait()
            after = db.session()
            assert before is after
            self.sessions.append(after)
            return {"count": db.session.scalar(sa.select(sa.func.count(Item.id)))}

        @app.get("/threaded")
        @aioflask.in_thread
        def threaded() -> Any:
            self.sessions.append(db.session())
            return {"count": db.session.scalar(sa.select(sa.func.count(Item.id)))}

    def registry(self) -> dict[Any, Any]:
        """The scoped session's registry: app context id -> Session."""
        return self.db.session.registry.registry  # type: ignore[no-any-return,union-attr]


@pytest.fixture
async def sqla(tmp_path: Path) -> AsyncIterator[SQLAApp]:
    sqla = SQLAApp(tmp_path)
    async with sqla.app.app_context():
        sqla.db.create_all()
    yield sqla
    async with sqla.app.app_context():
        sqla.db.engine.dispose()


@sync_driver
async def test_sqlalchemy_create_all_insert_query(sqla: SQLAApp) -> None:
    assert sqla.path.exists()
    client = sqla.app.test_client()
    assert (await client.post("/items/apple")).json == {"id": 1}
    assert (await client.post("/items/pear")).json == {"id": 2}
    assert (await client.get("/items")).json == ["apple", "pear"]
    assert (await client.get("/items/2")).json == {"id": 2, "name": "pear"}
    assert (await client.get("/items/3")).status_code == 404

    # An IntegrityError in the view: a 500, and the next request is fine.
    assert (await client.post("/items/apple")).status_code == 500
    assert (await client.post("/items/plum")).status_code == 201

    # The data is in the file, seen by a plain SQLAlchemy engine.
    engine = sa.create_engine(f"sqlite:///{sqla.path}")
    with engine.connect() as conn:
        names = conn.scalars(sa.text("select name from item order by id")).all()
    engine.dispose()
    assert names == ["apple", "pear", "plum"]


@sync_driver
async def test_sqlalchemy_session_removed_at_teardown(sqla: SQLAApp) -> None:
    client = sqla.app.test_client()
    await client.post("/items/apple")
    await client.get("/items")
    await client.get("/items/1")
    # One Session per request (per app context), each removed and closed after it.
    assert len({id(s) for s in sqla.sessions}) == 3
    assert sqla.registry() == {}
    for session in sqla.sessions:
        assert not session.in_transaction()
        assert list(session) == []


@sync_driver
async def test_sqlalchemy_concurrent_requests_have_their_own_session(sqla: SQLAApp) -> None:
    client = sqla.app.test_client()
    await client.post("/items/apple")
    sqla.sessions.clear()

    async def release_when_both_wait() -> None:
        while sqla.waiting < 2:
            await asyncio.sleep(0.001)
        # Both requests are in flight, each with its own app context and Session.
        assert len(sqla.registry()) == 2
        sqla.barrier.set()

    first, second, _ = await asyncio.gather(
        client.get("/count"), client.get("/count"), release_when_both_wait()
    )
    assert first.json == second.json == {"count": 1}
    assert sqla.sessions[0] is not sqla.sessions[1]
    assert sqla.registry() == {}


@sync_driver
async def test_sqlalchemy_in_thread_view(sqla: SQLAApp) -> None:
    client = sqla.app.test_client()
    await client.post("/items/apple")
    assert (await client.get("/threaded")).json == {"count": 1}
    assert sqla.registry() == {}


@sync_driver
async def test_sqlalchemy_in_async_app_context(sqla: SQLAApp) -> None:
    async with sqla.app.app_context():
        sqla.db.session.add(sqla.Item(name="fig"))
        sqla.db.session.commit()
        assert len(sqla.registry()) == 1
    # Popping the context removed the session (teardown_appcontext).
    assert sqla.registry() == {}
    assert (await sqla.app.test_client().get("/items")).json == ["fig"]


# -- Flask-CORS --------------------------------------------------------------------------

ORIGIN = "https://example.com"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "Content-Type",
}


def cors_app() -> Flask:
    app = make_app()
    CORS(app, resources={r"/api/*": {"origins": [ORIGIN]}})

    @app.route("/api/data", methods=["GET", "POST"])
    async def data() -> Any:
        await asyncio.sleep(0)
        return {"data": 1}

    @app.get("/api/missing")
    async def missing() -> Any:
        abort(404)

    @app.get("/private")
    async def private() -> Any:
        return {"private": 1}

    return app


async def test_cors_header_on_async_view() -> None:
    client = cors_app().test_client()
    response = await client.get("/api/data", headers={"Origin": ORIGIN})
    assert response.json == {"data": 1}
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN

    response = await client.get("/api/data", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers

    response = await client.get("/private", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_cors_preflight() -> None:
    client = cors_app().test_client()
    response = await client.options("/api/data", headers=PREFLIGHT)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"].lower() == "content-type"


async def test_cors_on_error_response_from_async_view() -> None:
    # Flask-CORS wraps app.handle_user_exception: still fine on aioflask.
    client = cors_app().test_client()
    response = await client.get("/api/missing", headers={"Origin": ORIGIN})
    assert response.status_code == 404
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_cross_origin_decorator_needs_wrap_async() -> None:
    # cross_origin calls the view itself, without ensure_sync.
    app = make_app()
    app.testing = True

    @app.get("/raw")
    @cross_origin()
    async def raw() -> Any:
        return {"data": 1}

    with pytest.raises(TypeError, match="but it was a coroutine") as info:
        await app.test_client().get("/raw", headers={"Origin": ORIGIN})
    assert close_left_coroutines(info.value) >= 1


async def test_cross_origin_decorator_with_wrap_async() -> None:
    app = make_app()
    calls = []

    @app.route("/adapted", methods=["GET", "PUT"])
    @wrap_async(cross_origin(origins=[ORIGIN], methods=["GET", "PUT"]))
    async def adapted() -> Any:
        await asyncio.sleep(0)
        calls.append(request.method)
        return {"data": 1}

    client = app.test_client()
    response = await client.get("/adapted", headers={"Origin": ORIGIN})
    assert response.json == {"data": 1}
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN

    # cross_origin answers the preflight itself (its automatic_options), and
    # the attributes it sets on the function reach Flask's routing.
    preflight = {**PREFLIGHT, "Access-Control-Request-Method": "PUT"}
    response = await client.options("/adapted", headers=preflight)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == "GET, PUT"
    assert calls == ["GET"]
    assert app.url_map._rules_by_endpoint["adapted"][0].methods >= {"GET", "PUT", "OPTIONS"}


# -- Flask-Caching -----------------------------------------------------------------------


def cache_app(*, factory: bool = False) -> tuple[Flask, Cache, list[str]]:
    app = make_app()
    config = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 60}
    if factory:
        cache = Cache(config=config)
        cache.init_app(app)
    else:
        cache = Cache(app, config=config)
    calls: list[str] = []

    @app.get("/cached")
    @cache.cached()
    async def cached() -> Any:
        await asyncio.sleep(0)
        calls.append("cached")
        return {"call": len(calls)}

    @app.get("/search")
    @cache.cached(query_string=True)
    async def search() -> Any:
        calls.append(request.args["q"])
        return {"q": request.args["q"], "call": len(calls)}

    @cache.memoize()
    async def square(n: int) -> int:
        await asyncio.sleep(0)
        calls.append(f"square({n})")
        return n * n

    @app.get("/square/<int:n>")
    def square_view(n: int) -> Any:
        # memoize calls the function through app.ensure_sync: the memoized
        # async def function is a sync function now (call it from sync code).
        return {"square": square(n)}

    @app.get("/async-square/<int:n>")
    async def async_square_view(n: int) -> Any:
        # From an async def view too: no await, it waits on the bridge.
        return {"square": square(n)}

    @app.get("/kv/<key>")
    async def kv(key: str) -> Any:
        value = cache.get(key)
        if value is None:
            cache.set(key, f"value of {key}")
            return {"hit": False}
        return {"hit": True, "value": value}

    return app, cache, calls


@pytest.mark.parametrize("factory", [False, True], ids=["Cache(app)", "init_app"])
async def test_cached_async_view_runs_once(factory: bool) -> None:
    app, cache, calls = cache_app(factory=factory)
    client = app.test_client()
    first = await client.get("/cached")
    second = await client.get("/cached")
    assert first.json == second.json == {"call": 1}
    assert calls == ["cached"]

    async with app.app_context():
        cache.clear()
    assert (await client.get("/cached")).json == {"call": 2}


async def test_cached_async_view_with_query_string() -> None:
    app, _, calls = cache_app()
    client = app.test_client()
    for q in ("a", "b", "a", "b"):
        response = await client.get(f"/search?q={q}")
        assert response.json["q"] == q
    assert calls == ["a", "b"]


async def test_cached_async_view_concurrently() -> None:
    app, _, calls = cache_app()
    client = app.test_client()
    await client.get("/cached")
    responses = await asyncio.gather(*(client.get("/cached") for _ in range(5)))
    assert {r.json["call"] for r in responses} == {1}
    assert calls == ["cached"]


async def test_memoized_async_function() -> None:
    app, _, calls = cache_app()
    client = app.test_client()
    assert (await client.get("/square/3")).json == {"square": 9}
    assert (await client.get("/square/3")).json == {"square": 9}
    assert (await client.get("/square/4")).json == {"square": 16}
    assert (await client.get("/async-square/4")).json == {"square": 16}
    assert (await client.get("/async-square/5")).json == {"square": 25}
    assert calls == ["square(3)", "square(4)", "square(5)"]


async def test_cache_api_in_async_view() -> None:
    app, _, _ = cache_app()
    client = app.test_client()
    assert (await client.get("/kv/a")).json == {"hit": False}
    assert (await client.get("/kv/a")).json == {"hit": True, "value": "value of a"}


# -- Flask-Login and Flask-WTF under a real uvicorn ---------------------------------------


async def test_login_with_csrf_form_under_uvicorn(start_server: Callable[..., Any]) -> None:
    # tests/apps/extensions_app.py, under conftest.py's uvicorn subprocess.
    server = start_server("extensions_app:app")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        response = await http.get("/me")
        assert response.status_code == 302
        assert response.headers["location"].startswith("/login?next=")

        response = await http.get("/login")
        assert response.status_code == 200
        token = csrf_token_of(response.text)
        assert "session" in http.cookies

        response = await http.post("/login", data={"name": "ada", "password": "x"})
        assert response.status_code == 400  # no CSRF token

        response = await http.post(
            "/login", data={"csrf_token": token, "name": "ada", "password": "wrong"}
        )
        assert response.status_code == 200
        assert "bad credentials" in response.text

        response = await http.post(
            "/login", data={"csrf_token": token, "name": "ada", "password": "lovelace"}
        )
        assert response.status_code == 302
        assert response.headers["location"] == "/me"

        # Several requests at once, each loading the user through the async loader.
        responses = await asyncio.gather(*(http.get("/me") for _ in range(10)))
        assert [r.json() for r in responses] == [{"user": "ada"}] * 10

        # Flask-WTF checks CSRF on every POST, logout included.
        assert (await http.post("/logout")).status_code == 400
        response = await http.post("/logout", headers={"X-CSRFToken": token})
        assert response.json() == {"user": None}
        assert (await http.get("/me")).status_code == 302

    assert "Traceback" not in server.log


# -- Found while testing the extensions -----------------------------------------------


class Marker:
    """An object to watch with a weak reference."""


async def test_a_failed_request_is_not_kept_alive_by_the_bridge() -> None:
    # Found with cross_origin's un-awaited coroutine, which outlived the test
    # that made it (and warned "never awaited" in a later one): an idle pooled
    # worker greenlet kept its last call's result, or error with its traceback
    # and every frame's locals, alive until the worker was reused.
    app = make_app()
    app.testing = True
    refs: list[weakref.ref[Marker]] = []

    @app.get("/fail")
    async def fail() -> Any:
        marker = Marker()  # a local of a frame in the error's traceback
        refs.append(weakref.ref(marker))
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await app.test_client().get("/fail")
    gc.collect()
    assert refs[0]() is None


async def test_a_result_is_not_kept_alive_by_the_bridge() -> None:
    refs: list[weakref.ref[Marker]] = []

    def make() -> Marker:
        marker = Marker()
        refs.append(weakref.ref(marker))
        return marker

    assert isinstance(await run_sync(make), Marker)  # and dropped
    gc.collect()
    assert refs[0]() is None
