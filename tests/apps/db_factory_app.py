"""An app factory that imports Flask-SQLAlchemy after making the app, with a sync driver.

Flask's tutorial does the same (``from . import db`` in ``create_app()``); the
warning about the sync driver must not depend on that order.
"""

from __future__ import annotations

import os
from typing import Any

from aioflask import Flask


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]

    import sqlalchemy as sa
    from flask_sqlalchemy import SQLAlchemy

    db = SQLAlchemy(app)

    @app.get("/one")
    def one() -> Any:
        return {"one": db.session.scalar(sa.text("SELECT 1"))}

    return app
