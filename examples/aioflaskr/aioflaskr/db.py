"""The database: Flask-SQLAlchemy models on SQLite, through aiosqlite.

The URL is ``sqlite+aiosqlite:///<DATABASE>``: SQLAlchemy's asyncio driver for
SQLite. The code is the one you would write for Flask-SQLAlchemy with the sync
driver (``db.session``, ``db.get_or_404``, relationships); on aioflask, each
query suspends only its own request while the others go on.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from aioflask import Flask, current_app


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class User(db.Model):  # type: ignore[name-defined]
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(unique=True)
    password: Mapped[str]
    posts: Mapped[list[Post]] = relationship(back_populates="author")


class Post(db.Model):  # type: ignore[name-defined]
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(sa.ForeignKey(User.id))
    created: Mapped[datetime] = mapped_column(server_default=sa.func.current_timestamp())
    title: Mapped[str]
    body: Mapped[str]
    author: Mapped[User] = relationship(back_populates="posts")


def init_db() -> None:
    """Clear existing data and create new tables."""
    Path(current_app.config["DATABASE"]).parent.mkdir(parents=True, exist_ok=True)
    db.drop_all()
    db.create_all()


def init_db_command() -> None:
    """Clear the existing data and create new tables."""
    # A sync command: app.cli commands run on aioflask's bridge, so the
    # asyncio driver works here as in a view.
    init_db()
    click.echo("Initialized the database.")


def init_app(app: Flask) -> None:
    """Configure Flask-SQLAlchemy for the app, register the init-db command."""
    app.config.setdefault(
        "SQLALCHEMY_DATABASE_URI", f"sqlite+aiosqlite:///{app.config['DATABASE']}"
    )
    db.init_app(app)
    app.cli.command("init-db")(init_db_command)
