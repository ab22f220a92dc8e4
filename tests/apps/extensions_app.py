"""Flask-Login and Flask-WTF, unmodified, under uvicorn (``uvicorn extensions_app:app``).

A login form protected by CSRF, an ``async def`` user loader (adapted with
:func:`aioflask.patch.wrap_async`, since Flask-Login calls it synchronously)
and ``async def`` views behind ``login_required``.
"""

from __future__ import annotations

import asyncio

import jinja2
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired

from aioflask import Flask, redirect, render_template, url_for
from aioflask.patch import wrap_async

app = Flask(__name__)
app.secret_key = "test-only"
app.jinja_loader = jinja2.DictLoader(
    {
        "login.html": (
            '<form method="post">{{ form.hidden_tag() }}{{ form.name() }}{{ form.password() }}'
            "</form>{% for e in form.name.errors %}<p>{{ e }}</p>{% endfor %}"
        ),
    }
)
csrf = CSRFProtect(app)
login_manager = LoginManager(app)
login_manager.login_view = "login"

PASSWORDS = {"ada": "lovelace", "alan": "turing"}


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


@wrap_async(login_manager.user_loader)
async def load_user(user_id: str) -> User | None:
    await asyncio.sleep(0.001)  # a real await on the loop, like a database call
    return User(user_id) if user_id in PASSWORDS else None


class LoginForm(FlaskForm):
    name = StringField(validators=[DataRequired()])
    password = PasswordField(validators=[DataRequired()])


@app.route("/login", methods=["GET", "POST"])
async def login() -> object:
    form = LoginForm()
    if form.validate_on_submit():
        if PASSWORDS.get(form.name.data or "") == form.password.data:
            login_user(User(form.name.data or ""))
            return redirect(url_for("me"))
        form.name.errors.append("bad credentials")
    return await render_template("login.html", form=form)


@app.get("/me")
@login_required
async def me() -> object:
    await asyncio.sleep(0)
    return {"user": current_user.id}


@app.post("/logout")
@login_required
async def logout() -> object:
    logout_user()
    return {"user": None}
