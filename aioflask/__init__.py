"""aioflask: Flask on asyncio. ``from aioflask import ...`` offers all of Flask.

Everything public in :mod:`flask` is re-exported here; the names below the
marker are aioflask's own or override Flask's.
"""

from __future__ import annotations

import sys as _sys

from flask import Config as Config
from flask import abort as abort
from flask import after_this_request as after_this_request
from flask import appcontext_popped as appcontext_popped
from flask import appcontext_pushed as appcontext_pushed
from flask import appcontext_tearing_down as appcontext_tearing_down
from flask import before_render_template as before_render_template
from flask import copy_current_request_context as copy_current_request_context
from flask import current_app as current_app
from flask import flash as flash
from flask import g as g
from flask import get_flashed_messages as get_flashed_messages
from flask import get_template_attribute as get_template_attribute
from flask import got_request_exception as got_request_exception
from flask import has_app_context as has_app_context
from flask import has_request_context as has_request_context
from flask import json as json
from flask import jsonify as jsonify
from flask import make_response as make_response
from flask import message_flashed as message_flashed
from flask import redirect as redirect
from flask import request as request
from flask import request_finished as request_finished
from flask import request_started as request_started
from flask import request_tearing_down as request_tearing_down
from flask import send_file as send_file
from flask import send_from_directory as send_from_directory
from flask import session as session
from flask import template_rendered as template_rendered
from flask import url_for as url_for

# aioflask's own names, and overrides of Flask's.
from . import patch as patch  # aioflask.patch.wrap_async, for extensions
from .app import Flask as Flask
from .blueprints import Blueprint as Blueprint
from .core import bridge
from .core import http as asgi
from .core.bridge import AwaitOutsideBridgeError as AwaitOutsideBridgeError
from .core.bridge import await_ as await_
from .core.bridge import run_sync as run_sync
from .databases import BlockingDriverWarning as BlockingDriverWarning
from .helpers import run_on_bridge as run_on_bridge
from .helpers import stream_with_context as stream_with_context
from .signals import got_background_exception as got_background_exception
from .signals import got_websocket_exception as got_websocket_exception
from .signals import websocket_finished as websocket_finished
from .signals import websocket_started as websocket_started
from .signals import websocket_tearing_down as websocket_tearing_down
from .sse import ServerSentEvent as ServerSentEvent
from .sse import sse_response as sse_response
from .templating import render_template as render_template
from .templating import render_template_string as render_template_string
from .templating import stream_template as stream_template
from .templating import stream_template_string as stream_template_string
from .threads import in_thread as in_thread
from .threads import run_in_thread as run_in_thread
from .websockets import WebSocketClosed as WebSocketClosed
from .websockets import after_this_websocket as after_this_websocket
from .websockets import copy_current_websocket_context as copy_current_websocket_context
from .websockets import has_websocket_context as has_websocket_context
from .websockets import websocket as websocket
from .wrappers import Request as Request
from .wrappers import Response as Response

# The bridge moved into the Flask-free core; ``aioflask.bridge`` (the path the
# docs have always named) stays importable as the same module.
_sys.modules[__name__ + ".bridge"] = bridge
# Likewise the ASGI http module (serve_http, build_environ, ClientDisconnected).
_sys.modules[__name__ + ".asgi"] = asgi

__all__ = [
    "AwaitOutsideBridgeError",
    "BlockingDriverWarning",
    "Blueprint",
    "Config",
    "Flask",
    "Request",
    "Response",
    "ServerSentEvent",
    "WebSocketClosed",
    "abort",
    "after_this_request",
    "after_this_websocket",
    "appcontext_popped",
    "appcontext_pushed",
    "appcontext_tearing_down",
    "await_",
    "before_render_template",
    "copy_current_request_context",
    "copy_current_websocket_context",
    "current_app",
    "flash",
    "g",
    "get_flashed_messages",
    "get_template_attribute",
    "got_background_exception",
    "got_request_exception",
    "got_websocket_exception",
    "has_app_context",
    "has_request_context",
    "has_websocket_context",
    "in_thread",
    "json",
    "jsonify",
    "make_response",
    "message_flashed",
    "patch",
    "redirect",
    "render_template",
    "render_template_string",
    "request",
    "request_finished",
    "request_started",
    "request_tearing_down",
    "run_in_thread",
    "run_on_bridge",
    "run_sync",
    "send_file",
    "send_from_directory",
    "session",
    "sse_response",
    "stream_template",
    "stream_template_string",
    "stream_with_context",
    "template_rendered",
    "url_for",
    "websocket",
    "websocket_finished",
    "websocket_started",
    "websocket_tearing_down",
]
