"""Flask-SQLAlchemy, unmodified, on an asyncio driver (``DATABASE_URL``); for test_databases.py.

Sync and async views and hooks query through ``db.session``, ``Model.query``,
``db.paginate`` and lazy-loaded relationships; ``/plain`` uses plain
SQLAlchemy (``create_engine`` + ``Session``). ``/sleep`` counts the requests in
flight (the peak proves concurrency) and records how each one ended.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import click
import sqlalchemy as sa
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from aioflask import Flask, abort, g, request

DATABASE_URL = os.environ["DATABASE_URL"]
POOL: dict[str, Any] = {
    "pool_size": int(os.environ.get("POOL_SIZE", "5")),
    "max_overflow": int(os.environ.get("MAX_OVERFLOW", "10")),
}
if DATABASE_URL.startswith("sqlite+aiosqlite:"):
    # A queue pool, as for the other drivers (SQLAlchemy before 2.0.38 gives a
    # file database on aiosqlite a NullPool, without pool_size).
    POOL["poolclass"] = sa.pool.AsyncAdaptedQueuePool


class Base(DeclarativeBase):
    pass


app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = DATABASE_URL
app.config["SQLALCHEMY_ENGINE_OPTIONS"] = POOL
db = SQLAlchemy(app, model_class=Base)
migrate = Migrate(app, db, directory=os.environ.get("MIGRATIONS_DIR", "migrations"))

#: Plain SQLAlchemy on the same database.
engine = sa.create_engine(DATABASE_URL, **POOL)


class User(db.Model):  # type: ignore[name-defined]
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50), unique=True)
    posts: Mapped[list[Post]] = relationship(back_populates="author", order_by="Post.id")


class Post(db.Model):  # type: ignore[name-defined]
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(100))
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"))
    author: Mapped[User] = relationship(back_populates="posts")


def _sqlite_sleep(dbapi_connection: Any, record: Any) -> None:
    # pg_sleep() for SQLite: it runs in the aiosqlite connection's own thread.
    if DATABASE_URL.startswith("sqlite"):
        dbapi_connection.create_function("pg_sleep", 1, time.sleep)


with app.app_context():
    sa.event.listen(db.engine, "connect", _sqlite_sleep)
sa.event.listen(engine, "connect", _sqlite_sleep)

#: Requests in /sleep now, the most at once, and how each one ended.
state: dict[str, Any] = {"in_flight": 0, "peak": 0, "ended": []}


@app.cli.command("create-db")
def create_db() -> None:
    """A sync command: Flask-SQLAlchemy's create_all() on the asyncio driver."""
    db.create_all()
    click.echo(f"created {sorted(db.metadata.tables)}")


@app.cli.command("count-users")
def count_users_command() -> None:
    """A sync command querying through the session; its teardown closes it on the bridge."""
    click.echo(f"{User.query.count()} users")


@app.before_request
def load_user() -> None:
    """A sync hook: Model.query."""
    name = request.headers.get("X-User")
    g.user = User.query.filter_by(name=name).one_or_none() if name else None


@app.after_request
async def count_users(response: Any) -> Any:
    """An async hook: db.session.scalar()."""
    if request.endpoint == "whoami":
        await asyncio.sleep(0)
        response.headers["X-Users"] = str(db.session.scalar(sa.select(sa.func.count(User.id))))
    return response


@app.post("/users/<name>")
def add_user(name: str) -> Any:
    """A sync view: add a user with posts, commit."""
    count = request.args.get("posts", 0, type=int)
    user = User(name=name, posts=[Post(title=f"{name} {i}") for i in range(count)])
    db.session.add(user)
    db.session.commit()
    return {"id": user.id}, 201


@app.get("/users")
def users() -> Any:
    return [user.name for user in User.query.order_by(User.name)]


@app.get("/page/<int:page>")
async def page(page: int) -> Any:
    """An async view: db.paginate()."""
    await asyncio.sleep(0)
    pagination = db.paginate(db.select(User).order_by(User.id), page=page, per_page=2)
    return {
        "items": [user.name for user in pagination.items],
        "total": pagination.total,
        "pages": pagination.pages,
    }


@app.get("/whoami")
async def whoami() -> Any:
    """An async view: a one-to-many relationship, lazy-loaded."""
    if g.user is None:
        abort(401)
    return {"name": g.user.name, "posts": [post.title for post in g.user.posts]}


@app.get("/posts/<int:post_id>/author")
def author(post_id: int) -> Any:
    """A sync view: get_or_404, and a many-to-one relationship, lazy-loaded."""
    post = db.get_or_404(Post, post_id)
    return {"author": post.author.name, "posts": len(post.author.posts)}


@app.post("/fail/<name>")
def fail(name: str) -> Any:
    """The user is written (flushed), then the view fails: teardown rolls it back."""
    db.session.add(User(name=name))
    db.session.flush()
    raise RuntimeError("the view failed after writing")


@app.post("/async-fail/<name>")
async def async_fail(name: str) -> Any:
    db.session.add(User(name=name))
    db.session.flush()
    await asyncio.sleep(0)
    raise RuntimeError("the view failed after writing")


@app.get("/sleep")
def sleep() -> Any:
    """``SELECT pg_sleep(s)``: the in-flight count, and how the request ended."""
    state["in_flight"] += 1
    state["peak"] = max(state["peak"], state["in_flight"])
    try:
        db.session.execute(
            sa.text("SELECT pg_sleep(:s)"), {"s": request.args.get("s", 0.05, float)}
        )
    except BaseException as exc:
        state["ended"].append(type(exc).__name__)
        raise
    else:
        state["ended"].append("ok")
    finally:
        state["in_flight"] -= 1
    return {"ok": True}


@app.get("/stats")
def stats() -> Any:
    """The /sleep figures, and the pool: connections checked out, and in total."""
    pool: Any = db.engine.pool
    return {
        "in_flight": state["in_flight"],
        "peak": state["peak"],
        "ended": state["ended"],
        "checked_out": pool.checkedout(),
        "pool": pool.status(),
    }


@app.get("/plain")
def plain() -> Any:
    """Plain SQLAlchemy: a Session on an engine from create_engine()."""
    with Session(engine) as session:
        names = session.scalars(sa.select(User.name).order_by(User.name)).all()
    with engine.connect() as connection:
        one = connection.scalar(sa.text("SELECT 1"))
    return {"names": list(names), "one": one}
