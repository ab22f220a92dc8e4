"""Register, log in and log out; ``login_required`` for the blog's views."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from aioflask import (
    Blueprint,
    flash,
    g,
    redirect,
    render_template,
    request,
    run_in_thread,
    session,
    url_for,
)

from .db import User, db

bp = Blueprint("auth", __name__, url_prefix="/auth")


def login_required(view: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Redirect anonymous users to the login page (for ``async def`` views)."""

    @functools.wraps(view)
    async def wrapped_view(**kwargs: Any) -> Any:
        if g.user is None:
            return redirect(url_for("auth.login"))
        return await view(**kwargs)

    return wrapped_view


@bp.before_app_request
def load_logged_in_user() -> None:
    """Put the logged-in user on ``g.user``, or None (a sync hook)."""
    user_id = session.get("user_id")
    g.user = None if user_id is None else db.session.get(User, user_id)


@bp.route("/register", methods=("GET", "POST"))
async def register():
    """Register a new user; the password is stored hashed."""
    if request.method == "POST":
        username = request.form["username"]
        password = request.form["password"]
        error = None

        if not username:
            error = "Username is required."
        elif not password:
            error = "Password is required."

        if error is None:
            # Hashing takes tens of milliseconds of CPU on purpose: do it in a
            # worker thread, so the other requests go on meanwhile.
            password_hash = await run_in_thread(generate_password_hash, password)
            db.session.add(User(username=username, password=password_hash))
            try:
                db.session.commit()
            except IntegrityError:
                # The username was already taken (UNIQUE constraint), maybe
                # by a request that was in flight at the same time.
                db.session.rollback()
                error = f"User {username} is already registered."
            else:
                return redirect(url_for("auth.login"))

        flash(error)

    return await render_template("auth/register.html")


@bp.route("/login", methods=("GET", "POST"))
async def login():
    """Log in a registered user by adding the user id to the session."""
    if request.method == "POST":
        username = request.form["username"]
        password = request.form["password"]
        error = None
        user = db.session.scalar(db.select(User).filter_by(username=username))

        if user is None:
            error = "Incorrect username."
        elif not await run_in_thread(check_password_hash, user.password, password):
            error = "Incorrect password."

        if error is None:
            # Store the user id in a new session and return to the index.
            session.clear()
            session["user_id"] = user.id
            return redirect(url_for("index"))

        flash(error)

    return await render_template("auth/login.html")


@bp.route("/logout")
def logout():
    """Clear the current session, including the stored user id."""
    session.clear()
    return redirect(url_for("index"))
