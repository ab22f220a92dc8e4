"""aioflask's signals, beyond Flask's: WebSockets and background tasks.

Named and sent as Quart sends them, through a blinker ``Namespace`` like
Flask's :mod:`flask.signals`. Receivers may be ``async def`` (they are awaited
through the bridge, as Flask's signals are with ``_async_wrapper``).
"""

from __future__ import annotations

from blinker import Namespace

__all__ = [
    "got_background_exception",
    "got_websocket_exception",
    "websocket_finished",
    "websocket_started",
    "websocket_tearing_down",
]

_signals = Namespace()

#: Sent when a WebSocket handshake reaches its WebSocket route (after the
#: ``before_request`` functions), before the ``before_websocket`` functions;
#: receivers get the app.
websocket_started = _signals.signal("websocket-started")
#: Sent after the ``after_websocket`` functions, with ``response``: the
#: handshake's response, ``None`` once the connection was accepted.
websocket_finished = _signals.signal("websocket-finished")
#: Sent after the ``teardown_websocket`` functions, with ``exc``: the
#: unhandled exception that ended the handler, or ``None``.
websocket_tearing_down = _signals.signal("websocket-tearing-down")
#: Sent, with ``exception``, when a WebSocket handler (or one of its hooks)
#: raises an exception no error handler handles; before
#: :data:`~flask.got_request_exception`, which is sent too.
got_websocket_exception = _signals.signal("got-websocket-exception")
#: Sent, with ``exception``, when a background task raises.
got_background_exception = _signals.signal("got-background-exception")
