"""The blog: list posts; create, update and delete your own."""

from __future__ import annotations

import sqlite3

from aioflask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from .auth import login_required
from .db import get_db

bp = Blueprint("blog", __name__)


@bp.route("/")
async def index():
    """Show all the posts, most recent first."""
    db = await get_db()
    posts = await db.execute_fetchall(
        "SELECT p.id, title, body, created, author_id, username"
        " FROM post p JOIN user u ON p.author_id = u.id"
        " ORDER BY created DESC"
    )
    return await render_template("blog/index.html", posts=posts)


async def get_post(id: int, check_author: bool = True) -> sqlite3.Row:
    """Get a post and its author by id.

    Checks that the id exists and optionally that the current user is the
    author.

    :param id: id of post to get
    :param check_author: require the current user to be the author
    :return: the post with author information
    :raise 404: if a post with the given id doesn't exist
    :raise 403: if the current user isn't the author
    """
    db = await get_db()
    async with db.execute(
        "SELECT p.id, title, body, created, author_id, username"
        " FROM post p JOIN user u ON p.author_id = u.id"
        " WHERE p.id = ?",
        (id,),
    ) as cursor:
        post = await cursor.fetchone()

    if post is None:
        abort(404, f"Post id {id} doesn't exist.")

    if check_author and post["author_id"] != g.user["id"]:
        abort(403)

    return post


@bp.route("/create", methods=("GET", "POST"))
@login_required
async def create():
    """Create a new post for the current user."""
    if request.method == "POST":
        title = request.form["title"]
        body = request.form["body"]
        error = None

        if not title:
            error = "Title is required."

        if error is not None:
            flash(error)
        else:
            db = await get_db()
            await db.execute(
                "INSERT INTO post (title, body, author_id) VALUES (?, ?, ?)",
                (title, body, g.user["id"]),
            )
            await db.commit()
            return redirect(url_for("blog.index"))

    return await render_template("blog/create.html")


@bp.route("/<int:id>/update", methods=("GET", "POST"))
@login_required
async def update(id: int):
    """Update a post if the current user is the author."""
    post = await get_post(id)

    if request.method == "POST":
        title = request.form["title"]
        body = request.form["body"]
        error = None

        if not title:
            error = "Title is required."

        if error is not None:
            flash(error)
        else:
            db = await get_db()
            await db.execute("UPDATE post SET title = ?, body = ? WHERE id = ?", (title, body, id))
            await db.commit()
            return redirect(url_for("blog.index"))

    return await render_template("blog/update.html", post=post)


@bp.route("/<int:id>/delete", methods=("POST",))
@login_required
async def delete(id: int):
    """Delete a post.

    Ensures that the post exists and that the logged in user is the author of
    the post.
    """
    await get_post(id)
    db = await get_db()
    await db.execute("DELETE FROM post WHERE id = ?", (id,))
    await db.commit()
    return redirect(url_for("blog.index"))
