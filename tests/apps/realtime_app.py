"""WebSockets, server-sent events and background tasks under a real uvicorn.

Served as ``uvicorn realtime_app:app`` by tests/test_websockets.py,
tests/test_sse.py, tests/test_tasks.py and tests/test_lifespan_client.py.
What happens on the server is reported by ``GET /state/<key>``, or written
to the file named by ``$REALTIME_LOG`` (for what happens during shutdown).
``$REALTIME_FAIL_STARTUP=1`` makes a startup hook raise.
"""

from __future__ import annotations

import asyncio
import collections
import os
from pathlib import Path

from aioflask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    request,
    session,
    sse_response,
    websocket,
    websocket_tearing_down,
)

app = Flask(__name__)
app.secret_key = "test-only"
if "REALTIME_TASK_TIMEOUT" in os.environ:
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = float(os.environ["REALTIME_TASK_TIMEOUT"])

#: key -> what happened to the handler, generator or task with that key.
STATE: dict[str, dict[str, object]] = collections.defaultdict(dict)
#: room -> the connections in it.
ROOMS: dict[str, set[object]] = collections.defaultdict(set)


def record(line: str) -> None:
    path = os.environ.get("REALTIME_LOG")
    if path:
        with Path(path).open("a") as f:
            f.write(line + "\n")


@app.before_serving
def startup() -> None:
    record("startup")
    if os.environ.get("REALTIME_FAIL_STARTUP"):
        raise RuntimeError("the database is unreachable")


@app.after_serving
def shutdown() -> None:
    record("after_serving")


@app.before_request
def guard() -> None:
    if request.args.get("token") == "bad":
        abort(401)


@app.get("/state/<key>")
def state(key: str):
    return dict(STATE[key])


@app.post("/session/<value>")
def set_session(value: str):
    session["value"] = value
    return {"set": value}


# -- WebSockets ----------------------------------------------------------------------


@app.websocket("/ws/echo")
async def echo():
    await websocket.accept(subprotocol="echo" if "echo" in websocket.subprotocols else None)
    async for message in websocket:
        await websocket.send(message)


@app.websocket("/ws/sync-echo")
def sync_echo():
    websocket.accept()
    for message in websocket:
        websocket.send_json({"echo": message, "session": session.get("value")})


@app.websocket("/ws/refuse")
async def refuse():
    await websocket.close()


@app.websocket("/ws/wait/<key>")
async def wait(key: str):
    await websocket.accept()
    STATE[key]["accepted"] = True
    record(f"accepted {key}")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        STATE[key]["cancelled"] = True
        raise
    finally:
        STATE[key]["close_code"] = websocket.close_code
        record(f"finally {key} {websocket.close_code}")


@app.websocket("/ws/room/<name>")
async def room(name: str):
    """Broadcast each message to everybody in the room."""
    await websocket.accept()
    me = websocket._get_current_object()  # type: ignore[attr-defined]
    ROOMS[name].add(me)
    try:
        await websocket.send_json({"members": len(ROOMS[name])})
        async for message in websocket:
            for other in list(ROOMS[name]):
                await other.send(message)
    finally:
        ROOMS[name].discard(me)


@app.websocket("/ws/fail")
async def fail():
    await websocket.accept()
    await websocket.receive()
    raise RuntimeError("the handler failed")


# The WebSocket hooks of a blueprint; what ran is in STATE[key]["hooks"].
hooked = Blueprint("hooked", __name__, url_prefix="/hooked")


def hook_log() -> list[str]:
    return STATE[websocket.view_args["key"]].setdefault("hooks", [])  # type: ignore[return-value]


@hooked.before_websocket
async def before_ws() -> object:
    hook_log().append("before_websocket")
    if websocket.args.get("deny"):
        return "denied by before_websocket", 403
    return None


@hooked.after_websocket
def after_ws(response: object) -> object:
    hook_log().append(f"after_websocket {response}")
    return response


@hooked.teardown_websocket
async def teardown_ws(exc: BaseException | None) -> None:
    hook_log().append(f"teardown_websocket {type(exc).__name__}")


@hooked.websocket("/info/<key>")
async def info(key: str):
    await websocket.accept(subprotocol=websocket.requested_subprotocols[0])
    await websocket.send_json(
        {
            "args": websocket.args.to_dict(),
            "header": websocket.headers.get("X-Test"),
            "cookie": websocket.cookies.get("flavour"),
            "path": websocket.path,
            "full_path": websocket.full_path,
            "url": websocket.url,
            "scheme": websocket.scheme,
            "query_string": websocket.query_string.decode(),
        }
    )
    await websocket.receive()  # the client says when to end


app.register_blueprint(hooked)


@websocket_tearing_down.connect_via(app)
def torn_down(sender: Flask, exc: BaseException | None, **kwargs: object) -> None:
    if request.blueprint == "hooked":
        hook_log().append("websocket_tearing_down")


# -- Server-sent events --------------------------------------------------------------


@app.get("/events/<key>")
def events(key: str):
    async def generate():
        STATE[key]["open"] = True
        try:
            for i in range(3):
                yield {"n": i}
            while True:  # then nothing but keep-alives
                await asyncio.sleep(3600)
        finally:
            STATE[key]["open"] = False

    return sse_response(generate(), keepalive=0.1)


# -- Background tasks ----------------------------------------------------------------


async def slow_task(key: str, seconds: float) -> None:
    record(f"task {key} started")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        record(f"task {key} cancelled")
        raise
    record(f"task {key} done in {current_app.name}")


@app.post("/task/<key>")
def start_task(key: str):
    app.add_background_task(slow_task, key, float(request.args.get("seconds", "0.5")))
    return {"started": key}
