"""The private Flask names aioflask uses, in one place (see STYLE.md).

Each is checked against the Flask versions in ``tox.ini`` (``tests-min`` and the
latest); when Flask changes one, only this module changes.
"""

from __future__ import annotations

from flask.cli import _debug_option as debug_option

# Werkzeug's reloader (what `flask run` and Flask's app.run() use): it restarts
# the process as it was started, so a script need not be importable.
from werkzeug._reloader import run_with_reloader as run_with_reloader

__all__ = ["debug_option", "run_with_reloader"]
