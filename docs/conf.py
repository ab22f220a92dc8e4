"""Sphinx configuration for the aioflask documentation.

Build with warnings as errors (what ``tox -e docs`` and ``.ci/run`` do)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

The build needs no network: see "Intersphinx offline" below and docs/README.md.
"""

from __future__ import annotations

import logging
import re
from importlib.metadata import version as _version
from pathlib import Path

project = "aioflask"
author = "The aioflask developers"
copyright = "the aioflask developers"
release = _version("aioflask")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build", "_inventories", "README.md"]
default_role = "code"
# Unresolved cross-references are not warnings: offline, the intersphinx
# inventories are missing and every reference to Flask or Python would be one.
nitpicky = False

# -- HTML: furo bundles its assets, nothing is fetched at build or view time ---------------

html_theme = "furo"
html_title = f"aioflask {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]

# -- autodoc -----------------------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Types only for what a docstring documents (no "args (Any)" lists).
autodoc_typehints_description_target = "documented"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True

# -- Intersphinx offline -----------------------------------------------------------------
#
# Links to Python, Flask, Werkzeug, Jinja and Click need their objects.inv
# inventories. The installed packages do not ship them, and the machines this
# project is built on (developers' and CI's) reach no network but package
# registries, so the remote inventories cannot be fetched there. Each project
# therefore lists two locations, tried in order:
#
# 1. the remote inventory (used whenever the network is there, e.g. on a docs host);
# 2. a local file docs/_inventories/<name>.inv, used if it exists (none is
#    committed; see docs/README.md to add them).
#
# When no location can be read, Sphinx 9 logs "failed to reach any of the
# inventories" as a warning with no type, which -W turns into an error and which
# suppress_warnings cannot name. _OfflineInventories (below) demotes exactly that
# message to INFO, and only when every failure is a network error (no DNS, no
# route, a timeout): an inventory that answers 404 or is corrupt still fails the
# build. The references then render as code without a link (nitpicky is off).

_INVENTORIES = Path(__file__).parent / "_inventories"
_REMOTE = {
    "python": "https://docs.python.org/3/",
    "flask": "https://flask.palletsprojects.com/en/stable/",
    "werkzeug": "https://werkzeug.palletsprojects.com/en/stable/",
    "jinja": "https://jinja.palletsprojects.com/en/stable/",
    "click": "https://click.palletsprojects.com/en/stable/",
}


def _locations(name: str) -> tuple[str | None, ...]:
    local = _INVENTORIES / f"{name}.inv"
    return (None, str(local)) if local.is_file() else (None,)


intersphinx_mapping = {name: (uri, _locations(name)) for name, uri in _REMOTE.items()}
# Fail fast where the network is filtered rather than absent.
intersphinx_timeout = 10

_UNREACHABLE = re.compile(
    r"not fetchable due to <class 'requests\.exceptions\."
    r"(ConnectionError|ConnectTimeout|ReadTimeout|Timeout)'>"
)


class _OfflineInventories(logging.Filter):
    """Demote "failed to reach any of the inventories" to INFO when offline."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING:
            message = record.getMessage()
            if message.startswith("failed to reach any of the inventories"):
                failures = message.count("not fetchable due to")
                if failures and failures == len(_UNREACHABLE.findall(message)):
                    urls = re.findall(r"intersphinx inventory '([^']+)'", message)
                    record.levelno, record.levelname = logging.INFO, "INFO"
                    record.msg = "intersphinx: no network, %s not loaded (its links are left out)"
                    record.args = (", ".join(urls),)
                    record.nonl = False  # Sphinx's warnings add their own newline
        return True


def setup(app: object) -> None:
    # Sphinx's own logger for sphinx.ext.intersphinx (Sphinx prefixes "sphinx.").
    logging.getLogger("sphinx.sphinx.ext.intersphinx").addFilter(_OfflineInventories())
