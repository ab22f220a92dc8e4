"""A pytest plugin: Flask's own tests, with ``flask.Flask`` replaced by ``aioflask.Flask``.

``flask.render_template`` and ``render_template_string`` are aioflask's too.

Loaded with ``-p plugin`` before Flask's ``conftest.py`` is imported, so
``from flask import Flask`` there and in the test modules gives aioflask's
class, and with it aioflask's test client (``app.test_client()``) and CLI
runner: every request goes through ``app(scope, receive, send)``.
"""

from __future__ import annotations

import _pytest.monkeypatch
import flask

import aioflask

flask.Flask = aioflask.Flask  # type: ignore[misc]
# Flask's template tests are the spec of aioflask's render functions too
# (their own code, returning the result to sync code as Flask's do).
flask.render_template = aioflask.render_template
flask.render_template_string = aioflask.render_template_string

# Flask 3.1.3's test_cli.py imports `notset`, which pytest 8.4 renamed NOTSET.
if not hasattr(_pytest.monkeypatch, "notset"):
    _pytest.monkeypatch.notset = _pytest.monkeypatch.NOTSET  # type: ignore[attr-defined]
