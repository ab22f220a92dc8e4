"""The blog: list posts; create, update and delete your own.

``async def`` views that query with Flask-SQLAlchemy's sync API, without
``await``: the asyncio driver's waits go to the event loop through aioflask's
bridge, so a query suspends only its own request.
"""

from __future__ import annotations

from aioflask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from .auth import login_required
from .db import Post, db

bp = Blueprint("blog", __name__)


@bp.route("/")
async def index():
    """Show all the posts, most recent first."""
    posts = db.session.scalars(db.select(Post).order_by(Post.created.desc(), Post.id.desc()))
    # The template reads post.author.username: a lazy load, on the bridge too.
    return await render_template("blog/index.html", posts=posts.all())


def get_post(id: int, check_author: bool = True) -> Post:
    """Get a post by id.

    Checks that the id exists and optionally that the current user is the
    author.

    :param id: id of post to get
    :param check_author: require the current user to be the author
    :return: the post
    :raise 404: if a post with the given id doesn't exist
    :raise 403: if the current user isn't the author
    """
    post = db.get_or_404(Post, id, description=f"Post id {id} doesn't exist.")

    if check_author and post.author_id != g.user.id:
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
            db.session.add(Post(title=title, body=body, author=g.user))
            db.session.commit()
            return redirect(url_for("blog.index"))

    return await render_template("blog/create.html")


@bp.route("/<int:id>/update", methods=("GET", "POST"))
@login_required
async def update(id: int):
    """Update a post if the current user is the author."""
    post = get_post(id)

    if request.method == "POST":
        title = request.form["title"]
        body = request.form["body"]
        error = None

        if not title:
            error = "Title is required."

        if error is not None:
            flash(error)
        else:
            post.title = title
            post.body = body
            db.session.commit()
            return redirect(url_for("blog.index"))

    return await render_template("blog/update.html", post=post)


@bp.route("/<int:id>/delete", methods=("POST",))
@login_required
async def delete(id: int):
    """Delete a post.

    Ensures that the post exists and that the logged in user is the author of
    the post.
    """
    db.session.delete(get_post(id))
    db.session.commit()
    return redirect(url_for("blog.index"))
