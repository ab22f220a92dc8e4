"""CPU instructions of rendering ``/tmpl``'s template, step by step: Jinja, Flask, aioflask.

Each row renders ``apps/templates/table.html`` (the 20-row table of ``run.py``'s
``/tmpl``) with the benchmark's data N times, adding one layer at a time, so
the difference of two rows is what that layer costs. Counted like
``instructions.py`` (callgrind, N2 - N1 renders).

    python benchmarks/template_steps.py [--n 200 1200] [--rows jinja,aioflask-env]

Needs ``valgrind`` (Debian's package).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from instructions import parse_args, per_request

HERE = Path(__file__).resolve().parent
ROWS = {
    "jinja": "template.render() in plain Jinja (the raw ASGI app's environment)",
    "flask-env": "template.render() in plain Flask's environment",
    "aioflask-env": "template.render() in aioflask's environment",
    "flask-render": "flask.render_template() in a plain Flask request context",
    "aioflask-render": "aioflask.render_template() from sync code, in a request context",
    "aioflask-await": "await aioflask.render_template() in a coroutine, in a request context",
}


def run_row(row: str, n: int) -> None:
    sys.path.insert(0, str(HERE))
    import flask
    import jinja2
    from apps.common import ROWS as DATA
    from apps.common import TEMPLATE, TITLE

    import aioflask
    from apps import aioflask_app, flask_app, raw_app

    if row == "jinja":
        template = raw_app._env.get_template(TEMPLATE)
    elif row in ("flask-env", "flask-render"):
        app: flask.Flask = flask_app.app
    else:
        app = aioflask_app.app
    if row != "jinja":
        ctx = app.test_request_context("/tmpl")
        ctx.push()
        template = app.jinja_env.get_template(TEMPLATE)
    context = {"rows": DATA, "title": TITLE}

    if row in ("jinja", "flask-env", "aioflask-env"):
        assert isinstance(template, jinja2.Template)
        for _ in range(n):
            template.render(context)
    elif row == "flask-render":
        for _ in range(n):
            flask.render_template(TEMPLATE, **context)
    elif row == "aioflask-render":
        for _ in range(n):
            aioflask.render_template(TEMPLATE, **context)
    elif row == "aioflask-await":

        async def render() -> None:
            for _ in range(n):
                await aioflask.render_template(TEMPLATE, **context)

        asyncio.run(render())
    else:
        raise SystemExit(f"unknown row {row!r}")


def main() -> None:
    args = parse_args(__doc__, run_row, ROWS)
    if args is None:
        return
    n1, n2, rows = args
    print("| row | instructions / render |\n|---|---:|")
    for row in rows:
        print(f"| {ROWS[row]} | {per_request(row, n1, n2, script=__file__):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
