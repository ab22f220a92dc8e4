"""The loop watchdog: names the view or hook that holds the event loop.

One blocking call in an ``async def`` view (``time.sleep``, a sync driver)
stalls every request of the process, and nothing in asyncio says which view
did it (its debug mode names the server's task). The watchdog does:

- on the loop, a timer "beats" every ``threshold / 4`` seconds; a beat that
  runs more than ``threshold`` late means the loop was held that long;
- a monitor thread looks at the beat; once it is ``threshold`` overdue, it
  takes the loop thread's current frame (``sys._current_frames()``): the
  stack of the code holding the loop at that moment, and the request it
  serves (the ``environ`` of the request's greenlet, found on that stack);
- the late beat, once the loop is free again, logs the warning with how long
  the loop was held, and counts it (:attr:`LoopWatchdog.count`); a hold that
  lasts (1 s, or 10 thresholds) is also reported while it lasts, once, from
  the monitor thread: code that never gives the loop back is named too.

Off (the default outside debug mode), it costs one attribute test per ASGI
call. On, nothing per request: a timer every ``threshold / 4`` seconds and a
thread that wakes as often. ``benchmarks/instructions.py``: a JSON ping costs
435.9k and 437.7k instructions with it off (two runs), 436.5k and 440.0k on
(within the 0.6% by which two runs of the same code differ, though callgrind,
50 times slower, counts 50 times the wake-ups per request).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

import flask

if TYPE_CHECKING:
    from .app import Flask

__all__ = ["LoopWatch", "LoopWatchdog", "blocked_loop_threshold"]

#: The threshold in debug mode when ``AIOFLASK_BLOCKED_LOOP_WARNING`` is None.
DEBUG_THRESHOLD = 0.1
#: A hold this long (or 10 thresholds) is reported while it lasts, once.
STILL_HELD = 1.0
#: The frame whose ``environ`` local is the request a greenlet serves (an HTTP
#: request or a WebSocket handshake): Flask's ``wsgi_app(environ, start_response)``.
_WSGI_APP_CODE = flask.Flask.wsgi_app.__code__


def blocked_loop_threshold(app: Flask) -> float | None:
    """The watchdog's threshold in seconds for ``app``, or None when it is off.

    ``AIOFLASK_BLOCKED_LOOP_WARNING``: None (the default) is 0.1 s in debug
    mode and off otherwise; a number of seconds turns it on; 0 or False off.
    """
    value = app.config.get("AIOFLASK_BLOCKED_LOOP_WARNING")
    if value is None:
        return DEBUG_THRESHOLD if app.debug else None
    if value is False or value == 0:
        return None
    seconds = float(value)
    if seconds < 0:
        raise ValueError(f"AIOFLASK_BLOCKED_LOOP_WARNING must be >= 0 seconds, not {value!r}")
    return seconds


class LoopWatch:
    """An app's watchdog, for the loop that serves it.

    :meth:`start` is called at the app's first ASGI call on a loop (the
    lifespan, or the first request where no lifespan runs), :meth:`stop` at
    shutdown; a watchdog whose loop was closed lets the next loop be watched
    (tests, scripts).
    """

    __slots__ = ("_earlier", "watchdog", "watched")

    def __init__(self) -> None:
        # No reference to the app: an app is freed at zero refcount, without the GC.
        #: The watchdog while it runs.
        self.watchdog: LoopWatchdog | None = None
        #: Whether it was started (or found off) for the running loop.
        self.watched = False
        self._earlier = 0  # the counts of stopped watchdogs

    @property
    def count(self) -> int:
        """Times the app's loops were held past the threshold, in all."""
        watchdog = self.watchdog
        return self._earlier + (watchdog.count if watchdog is not None else 0)

    def start(self, app: Flask) -> None:
        """Start the watchdog on the running loop if it is on (checked once per loop)."""
        threshold = blocked_loop_threshold(app)
        if threshold is not None:
            self.stop()
            self.watchdog = LoopWatchdog(app, threshold, asyncio.get_running_loop())
            self.watchdog.on_stop = self._loop_closed
        self.watched = True

    def stop(self) -> None:
        """Stop the watchdog (at shutdown, on the loop's thread)."""
        watchdog, self.watchdog = self.watchdog, None
        if watchdog is not None:
            watchdog.stop()
            self._earlier += watchdog.count
        self.watched = False

    def _loop_closed(self) -> None:
        self.watched = False


class _Sighting:
    """What the monitor saw while the loop was held past the threshold."""

    __slots__ = ("after", "due", "stack", "warned", "what")

    def __init__(self, due: float, after: float, what: str, stack: str) -> None:
        self.due = due  # the beat that was late
        self.after = after  # seconds held when seen
        self.what = what  # the view or hook, the request
        self.stack = stack
        self.warned = False  # "still held" was logged


class LoopWatchdog:
    """Watches one event loop for an app; see the module's docstring.

    .. versionadded:: 0.5
    """

    def __init__(self, app: Flask, threshold: float, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        #: Seconds the loop may be held before it is reported.
        self.threshold = threshold
        #: Times the loop was held longer than :attr:`threshold`.
        self.count = 0
        #: The longest hold seen, in seconds.
        self.longest = 0.0
        self.loop = loop
        self._interval = threshold / 4
        self._thread_id = threading.get_ident()
        self._due = time.monotonic() + self._interval
        self._seen: _Sighting | None = None
        self._stop = threading.Event()
        self._handle = loop.call_later(self._interval, self._beat)
        #: Called in the watchdog's thread if it stops because the loop was closed.
        self.on_stop: Callable[[], None] | None = None
        self._thread = threading.Thread(
            target=self._monitor, name=f"aioflask-watchdog-{app.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (lifespan shutdown); call it on the loop's thread."""
        self._stop.set()
        self._handle.cancel()

    @property
    def running(self) -> bool:
        return not self._stop.is_set()

    def _beat(self) -> None:
        # On the loop: how late is this beat? That long the loop was held.
        now = time.monotonic()
        late = now - self._due
        seen, self._seen = self._seen, None
        if late > self.threshold:
            self._report(late, seen if seen is not None and seen.due == self._due else None)
        self._due = now + self._interval
        if not self._stop.is_set():
            self._handle = self.loop.call_later(self._interval, self._beat)

    def _monitor(self) -> None:
        # In the watchdog thread: catch the loop in the act.
        while not self._stop.wait(self._interval):
            if self.loop.is_closed():
                self._stop.set()
                if self.on_stop is not None:
                    self.on_stop()
                return
            due = self._due
            held = time.monotonic() - due
            seen = self._seen
            if seen is not None and seen.due == due:
                # Still the same hold: say so once if it does not end.
                if not seen.warned and held >= max(STILL_HELD, 10 * self.threshold):
                    seen.warned = True
                    if not self._warn_still_held(held):
                        break
                continue
            if held <= self.threshold:
                continue
            sighting = self._sight(due, held)
            if sighting is None:
                break
            self._seen = sighting
        self._stop.set()

    def _sight(self, due: float, held: float) -> _Sighting | None:
        """What holds the loop now (None if the loop's thread has ended)."""
        frame = sys._current_frames().get(self._thread_id)
        if frame is None:
            return None
        try:
            return _Sighting(due, held, self._describe(frame), _format(frame))
        finally:
            del frame

    def _warn_still_held(self, held: float) -> bool:
        # From this thread: the loop cannot log what never ends.
        now = self._sight(self._due, held)
        if now is None:
            return False
        self.app.logger.warning(
            "The event loop has been held for %.1f s so far by %s, and is still"
            " held (an endless loop? a blocking wait without a timeout?). Stack now:\n%s",
            held,
            now.what,
            now.stack,
        )
        return True

    def _describe(self, frame: FrameType) -> str:
        """The view or hook on the stack, and its request (or the asyncio task)."""
        names = _registered(self.app)
        function = None
        environ = None
        for f in _outward(frame):
            if function is None:
                function = names.get(f.f_code)
            if f.f_code is _WSGI_APP_CODE:
                environ = f.f_locals.get("environ")
                break
        code = frame.f_code
        parts = [function or f"{getattr(code, 'co_qualname', code.co_name)}()"]
        if environ is not None:
            parts.append(_request_line(environ))
        else:
            task = asyncio.current_task(self.loop)
            if task is not None:
                parts.append(f"in task {task.get_name()!r}")
        return ", ".join(parts)

    def _report(self, late: float, seen: _Sighting | None) -> None:
        self.count += 1
        self.longest = max(self.longest, late)
        if seen is None:
            self.app.logger.warning(
                "The event loop was held for at least %.3f s (more than %.3f s); the code"
                " holding it was not caught in the act.",
                late,
                self.threshold,
            )
            return
        self.app.logger.warning(
            "The event loop was held for at least %.3f s (more than %.3f s) by %s."
            " Every other request waited meanwhile: move blocking calls to a"
            " thread (@in_thread, run_in_thread) or await an async API."
            " Stack when seen, %.3f s in:\n%s",
            late,
            self.threshold,
            seen.what,
            seen.after,
            seen.stack,
        )


def _outward(frame: FrameType | None) -> Iterator[FrameType]:
    while frame is not None:
        yield frame
        frame = frame.f_back


def _format(frame: FrameType) -> str:
    return "".join(traceback.format_stack(frame)).rstrip()


def _request_line(environ: dict[str, Any]) -> str:
    request = environ.get("werkzeug.request")
    rule = getattr(request, "url_rule", None)
    path = environ.get("PATH_INFO", "")
    text = f"{environ.get('REQUEST_METHOD', '')} {path}"
    if rule is not None:
        text += f" (route {rule.rule!r}, endpoint {rule.endpoint!r})"
    return text


def _registered(app: Flask) -> dict[Any, str]:
    """Code object -> "view 'name'" for the app's views, hooks and handlers."""
    names: dict[Any, str] = {}

    def add(kind: str, func: Callable[..., Any]) -> None:
        # Through decorators (functools.wraps) and WebSocket handshake views.
        obj: Any = func
        for _ in range(10):
            if obj is None:
                break
            code = getattr(obj, "__code__", None)
            if code is not None:
                names.setdefault(code, f"{kind} {obj.__qualname__!r}")
            obj = getattr(obj, "handler", None) or getattr(obj, "__wrapped__", None)

    for view in app.view_functions.values():
        add("view", view)
    hooks: dict[str, Any] = {
        "before_request": app.before_request_funcs,
        "after_request": app.after_request_funcs,
        "teardown_request": app.teardown_request_funcs,
        "url_value_preprocessor": app.url_value_preprocessors,
        "context_processor": app.template_context_processors,
    }
    for kind, by_blueprint in hooks.items():
        for funcs in by_blueprint.values():
            for func in funcs:
                add(f"{kind} hook", func)
    for by_code in app.error_handler_spec.values():
        for handlers in by_code.values():
            for func in handlers.values():
                add("error handler", func)
    for func in app.teardown_appcontext_funcs:
        add("teardown_appcontext hook", func)
    for func in (*app.before_serving_funcs, *app.after_serving_funcs):
        add("serving hook", func)
    return names
