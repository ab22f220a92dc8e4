"""The private Flask names aioflask uses, in one place (see STYLE.md).

Each is checked against the Flask versions in ``tox.ini`` (``tests-min`` and the
latest); when Flask changes one, only this module changes.
"""

from __future__ import annotations

from flask.cli import _debug_option as debug_option

__all__ = ["debug_option"]
