"""aioflaskr: Flask's tutorial blog ("flaskr"), made async with aioflask.

Initialize the database, then serve it::

    flask --app examples/aioflaskr/aioflaskr init-db
    flask --app examples/aioflaskr/aioflaskr --debug aiorun
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aioflask import Flask


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure an instance of the app."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        # A default secret that should be overridden by instance config.
        SECRET_KEY="dev",
        # Store the database in the instance folder.
        DATABASE=os.path.join(app.instance_path, "aioflaskr.sqlite"),
    )

    if test_config is None:
        # Load the instance config, if it exists, when not testing, then
        # FLASK_* environment variables (FLASK_DATABASE, FLASK_SECRET_KEY).
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_prefixed_env()
    else:
        app.config.update(test_config)

    # A simple page that says hello: sync views work as in Flask.
    @app.get("/hello")
    def hello():
        return "Hello, World!"

    # Register the database commands and teardown.
    from . import db

    db.init_app(app)

    # Apply the blueprints to the app.
    from . import auth, blog

    app.register_blueprint(auth.bp)
    app.register_blueprint(blog.bp)

    # The blog is the main index: url_for("index") == url_for("blog.index").
    app.add_url_rule("/", endpoint="index")

    return app
