"""ASGI type aliases (asgiref's definitions) and the WSGI ones used beside them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from asgiref.typing import ASGIReceiveCallable as Receive
from asgiref.typing import ASGIReceiveEvent as ReceiveEvent
from asgiref.typing import ASGISendCallable as Send
from asgiref.typing import ASGISendEvent as SendEvent
from asgiref.typing import HTTPScope as HTTPScope
from asgiref.typing import LifespanScope as LifespanScope
from asgiref.typing import Scope as Scope
from asgiref.typing import WebSocketScope as WebSocketScope

__all__ = [
    "ExcInfo",
    "HTTPScope",
    "LifespanScope",
    "Receive",
    "ReceiveEvent",
    "Scope",
    "Send",
    "SendEvent",
    "StartResponse",
    "WSGIApp",
    "WSGIEnviron",
    "WebSocketScope",
]

WSGIEnviron = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[WSGIEnviron, StartResponse], Iterable[bytes]]
