"""A plain script using db_app's models and engines: one run_on_bridge() call."""

from __future__ import annotations

import sqlalchemy as sa
from db_app import User, app, db, engine
from sqlalchemy.orm import Session

from aioflask import run_on_bridge


def main() -> None:
    with app.app_context():
        db.create_all()
        db.session.add(User(name="script"))
        db.session.commit()
        print("flask-sqlalchemy:", [user.name for user in User.query.all()])
    with Session(engine) as session:
        print("plain:", session.scalar(sa.select(sa.func.count(User.id))))


if __name__ == "__main__":
    run_on_bridge(main)
