"""The app the real-server tests run under uvicorn (``uvicorn server_app:app``).

State shared with the tests lives in module-level dicts keyed by a token the
test chooses, and is reported by ``/state/<key>``: the tests run in another
process and see only what the server answers.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import threading
import time
import traceback

from aioflask import (
    Flask,
    await_,
    bridge,
    in_thread,
    render_template_string,
    request,
    session,
    stream_with_context,
)

app = Flask(__name__)
app.secret_key = "test-only"
app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
# /debug/live counts greenlets in gc.get_objects(), which leaves frozen objects out.
app.config["AIOFLASK_GC_FREEZE"] = False

CHUNK = 64 * 1024

#: key -> what happened to the request/generator with that key.
STATE: dict[str, dict[str, object]] = collections.defaultdict(
    lambda: {
        "started": False,
        "produced": 0,
        "closed": False,
        "cancelled": False,
        "teardown": False,
    }
)
#: key -> one release per POST /release/<key>; a waiting generator takes one and goes on.
RELEASE: dict[str, asyncio.Semaphore] = collections.defaultdict(lambda: asyncio.Semaphore(0))
INFLIGHT = {"now": 0, "peak": 0}


@app.teardown_request
def record_teardown(exc: BaseException | None) -> None:
    key = request.args.get("key")
    if key:
        STATE[key]["teardown"] = True


@app.get("/ping")
def ping():
    return {"ok": True}


@app.get("/state/<key>")
def state(key: str):
    return dict(STATE[key])


@app.post("/release/<key>")
def release(key: str):
    RELEASE[key].release()
    return {"released": key}


@app.get("/debug/live")
def live():
    """Running tasks and busy bridge greenlets (this request's included)."""
    gc.collect()
    # The bridge keeps idle worker greenlets for reuse: those do not count.
    idle = {id(g) for g in getattr(getattr(bridge, "_pools", None), "idle", ())}
    greenlets = [
        o
        for o in gc.get_objects()
        if isinstance(o, bridge._BridgeGreenlet) and not o.dead and id(o) not in idle
    ]
    # Where each suspended greenlet is (not this request's: it is running).
    stacks = [traceback.format_stack(g.gr_frame)[-4:] for g in greenlets if g.gr_frame]
    return {
        "tasks": len(asyncio.all_tasks()),
        "greenlets": len(greenlets),
        "bridge": bridge.in_bridge(),
        "stacks": stacks,
    }


# -- concurrency ---------------------------------------------------------------


@app.get("/sleep")
async def sleep():
    INFLIGHT["now"] += 1
    INFLIGHT["peak"] = max(INFLIGHT["peak"], INFLIGHT["now"])
    try:
        await asyncio.sleep(0.2)
    finally:
        INFLIGHT["now"] -= 1
    return {"slept": 0.2}


THREADS = {"now": 0, "peak": 0, "names": set()}
THREADS_LOCK = threading.Lock()


@app.get("/blocking")
@in_thread
def blocking():
    """A sync view that blocks (time.sleep), run in the app's thread pool."""
    with THREADS_LOCK:
        THREADS["now"] += 1
        THREADS["peak"] = max(THREADS["peak"], THREADS["now"])
        THREADS["names"].add(threading.current_thread().name)
    try:
        time.sleep(0.2)
    finally:
        with THREADS_LOCK:
            THREADS["now"] -= 1
    return {"on_loop_thread": threading.current_thread() is threading.main_thread()}


@app.get("/threads")
def threads():
    return {"peak": THREADS["peak"], "names": sorted(THREADS["names"])}


async def _lookup(name: str) -> str:
    await asyncio.sleep(0)
    return name.upper()


async def _rows(n: int):
    for i in range(n):
        await asyncio.sleep(0)
        yield {"i": i}


@app.get("/template")
async def template():
    """A template that awaits a call and loops over an async generator."""
    return await render_template_string(
        "{{ lookup('hi') }}:{% for row in rows %}{{ row.i }}{% endfor %}"
        ":{{ rows_again(2)|map(attribute='i')|join(',') }}",
        lookup=_lookup,
        rows=_rows(3),
        rows_again=_rows,
    )


@app.route("/inflight", methods=["GET", "DELETE"])
def inflight():
    if request.method == "DELETE":
        INFLIGHT["peak"] = INFLIGHT["now"]
    return dict(INFLIGHT)


# -- request bodies --------------------------------------------------------------


@app.post("/count")
def count():
    """Read the body in chunks without keeping it."""
    total = 0
    stream = request.stream
    while data := stream.read(CHUNK):
        total += len(data)
    return {"count": total}


@app.post("/count-unlimited")
def count_unlimited():
    request.max_content_length = 1 << 40  # None would mean "the app config"
    return count()


@app.post("/json-async")
async def json_async():
    return {"got": request.get_json()}


@app.post("/json-sync")
def json_sync():
    return {"got": request.get_json()}


# -- streaming responses -------------------------------------------------------------


@app.get("/stream/sync/<key>")
def stream_sync(key: str):
    """Three chunks; the second and third wait for POST /release/<key>."""

    @stream_with_context
    def generate():
        try:
            for i in range(3):
                if i:
                    await_(RELEASE[key].acquire())
                STATE[key]["produced"] = i + 1
                yield f"sync-{i}-{request.args['tag']};".encode()
        finally:
            STATE[key]["closed"] = True

    return generate(), {"Content-Type": "text/plain"}


@app.get("/stream/async/<key>")
def stream_async(key: str):
    async def generate():
        try:
            for i in range(3):
                if i:
                    await RELEASE[key].acquire()
                STATE[key]["produced"] = i + 1
                yield f"async-{i};".encode()
        finally:
            STATE[key]["closed"] = True

    return generate(), {"Content-Type": "text/plain"}


@app.route("/forever/sync/<key>", methods=["GET", "POST"])
def forever_sync(key: str):
    def generate():
        try:
            while True:
                STATE[key]["produced"] += 1  # type: ignore[operator]
                yield b"x" * 1024
                await_(asyncio.sleep(0.02))
        finally:
            STATE[key]["closed"] = True

    return generate()


@app.get("/forever/async/<key>")
def forever_async(key: str):
    async def generate():
        try:
            while True:
                STATE[key]["produced"] += 1  # type: ignore[operator]
                yield b"x" * 1024
                await asyncio.sleep(0.02)
        finally:
            STATE[key]["closed"] = True

    return generate()


@app.get("/forever/busy/<key>")
def forever_busy(key: str):
    """An endless generator that never awaits (like one writing a big CSV report)."""

    def generate():
        try:
            while True:
                STATE[key]["produced"] += 1  # type: ignore[operator]
                yield b"a line of a report that never ends\n"
        finally:
            STATE[key]["closed"] = True

    return generate()


@app.get("/wait-forever")
async def wait_forever():
    key = request.args["key"]
    STATE[key]["started"] = True
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        STATE[key]["cancelled"] = True
        raise
    finally:
        STATE[key]["closed"] = True
    return {"never": True}


# -- URLs and headers --------------------------------------------------------------


def describe():
    return {
        "path": request.path,
        "full_path": request.full_path,
        "args": request.args.to_dict(flat=False),
        "view_args": request.view_args,
        "raw_uri": request.environ.get("RAW_URI"),
        "url": request.url,
        "host": request.host,
        "scheme": request.scheme,
        "remote_addr": request.remote_addr,
    }


@app.get("/echo/<a>/<b>")
def echo(a: str, b: str):
    return describe()


@app.get("/path/<path:p>")
def echo_path(p: str):
    return describe()


@app.get("/headers")
def headers():
    return {
        "multi": request.headers.get("X-Multi"),
        "multi_list": request.headers.getlist("X-Multi"),
        "cookies": request.cookies.to_dict(),
        "user_agent": request.headers.get("User-Agent"),
        **describe(),
    }


@app.post("/session/<value>")
def set_session(value: str):
    session["value"] = value
    response = app.make_response({"set": value})
    response.set_cookie("plain", "cookie-value")
    return response


@app.get("/session")
def get_session():
    return {"value": session.get("value"), "plain": request.cookies.get("plain")}


@app.get("/text")
def text():
    return "héllo " * 1000


@app.get("/stream/head")
def stream_head():
    def generate():
        yield b"abc"
        yield b"def"

    return generate(), {"Content-Type": "text/plain"}
