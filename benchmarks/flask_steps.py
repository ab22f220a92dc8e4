"""CPU instructions of each step of Flask's own dispatch, for one JSON ping.

The rows add one step of ``Flask.wsgi_app`` at a time (plain Flask, the
``def`` view of ``inprocess.py`` returning ``{"ok": True}``), so the difference
of two rows is what that step costs; two more rows measure pieces inside the
steps. Counted like ``instructions.py`` (callgrind, N2 - N1 requests).

    python benchmarks/flask_steps.py [--n 200 1200]

Needs ``valgrind`` (Debian's package).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from instructions import parse_args, per_request

HERE = Path(__file__).resolve().parent
ROWS = {
    "request-context": "app.request_context(environ): Request, URL adapter bound",
    "push-pop": "+ ctx.push() / ctx.pop(): app context, session, URL match, signals",
    "dispatch": "+ full_dispatch_request(): hooks, view, make_response, process_response",
    "wsgi": "+ response(environ, start_response), body iterated, closed: all of wsgi_app",
    "bind": "(inside) app.create_url_adapter(request): Map.bind_to_environ",
    "json-response": "(inside) app.make_response({'ok': True}) in a request context",
    "signals": "(inside) the 6 signals sent per request, no receivers",
}


def run_row(row: str, n: int) -> None:
    sys.path.insert(0, str(HERE))
    import flask
    import inprocess
    from werkzeug.test import EnvironBuilder

    app, _ = inprocess.make_apps()
    environ = EnvironBuilder(
        path="/ping",
        base_url="http://127.0.0.1:8000",
        headers={"User-Agent": "benchmark", "Accept": "*/*"},
        environ_base={"REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "54321"},
    ).get_environ()
    copy = environ.copy

    def start_response(*args: Any) -> None:
        return None

    if row == "request-context":
        for _ in range(n):
            app.request_context(copy())
    elif row == "push-pop":
        for _ in range(n):
            ctx = app.request_context(copy())
            ctx.push()
            ctx.pop(None)
    elif row == "dispatch":
        for _ in range(n):
            ctx = app.request_context(copy())
            ctx.push()
            app.full_dispatch_request()
            ctx.pop(None)
    elif row == "wsgi":
        for _ in range(n):
            iterable = app.wsgi_app(copy(), start_response)
            for _chunk in iterable:
                pass
            iterable.close()
    elif row == "bind":
        with app.test_request_context("/ping"):
            request = flask.request._get_current_object()  # type: ignore[attr-defined]
            for _ in range(n):
                app.create_url_adapter(request)
    elif row == "json-response":
        with app.test_request_context("/ping"):
            for _ in range(n):
                app.make_response({"ok": True})
    elif row == "signals":
        names = [
            "appcontext_pushed",
            "request_started",
            "request_finished",
            "request_tearing_down",
            "appcontext_tearing_down",
            "appcontext_popped",
        ]
        signals = [getattr(flask.signals, name) for name in names]
        for _ in range(n):
            for signal in signals:
                signal.send(app)
    else:
        raise SystemExit(f"unknown row {row!r}")


def main() -> None:
    args = parse_args(__doc__, run_row)
    if args is None:
        return
    n = args[:2]
    print("| step | instructions / request | difference |\n|---|---:|---:|")
    before = 0.0
    for row, label in ROWS.items():
        per = per_request(row, *n, script=__file__)
        step = label.startswith("+") or row == "request-context"
        diff = f"{per - before:,.0f}" if step else ""
        print(f"| {label} | {per:,.0f} | {diff} |", flush=True)
        if step:
            before = per


if __name__ == "__main__":
    main()
