"""``flask aiorun`` as a real subprocess, async CLI commands, ``flask shell``."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import flask
import flask.cli
import flask.testing
import httpx
import pytest

from _helpers import sqlalchemy_await
from _uvicorn import UvicornProcess
from aioflask import Blueprint, Flask, current_app

CLIAPP = Path(__file__).parent / "apps" / "cliapp"
FLASK = [sys.executable, "-m", "flask"]


def _environ_without_app() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("FLASK_APP", "FLASK_DEBUG")}


class AiorunProcess(UvicornProcess):
    """A command serving with uvicorn (``flask ... aiorun``, a script calling
    ``app.run()``) in its own process group."""

    def __init__(self, argv: list[str], log_path: Path, cwd: Path, env: dict[str, str]) -> None:
        self.log_path = log_path
        self.port = None
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**_environ_without_app(), "PYTHONUNBUFFERED": "1", **env},
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 30.0) -> UvicornProcess:
        deadline = time.monotonic() + timeout
        while self.port is None and time.monotonic() < deadline:
            # The base class knows http:// only.
            # uvicorn's line, or the one printed where uvicorn is given the
            # socket (behind the reloader).
            match = re.search(
                r"(?:Uvicorn running|\* Running) on https?://127\.0\.0\.1:(\d+)", self.log
            )
            if match and "Uvicorn running on http://" not in match.group(0):
                self.port = int(match.group(1))
            elif "Uvicorn running on http://" in self.log or self.process.poll() is not None:
                break
            time.sleep(0.02)
        return super().wait_ready(max(deadline - time.monotonic(), 1))

    def kill(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode


@pytest.fixture
def aiorun(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    started: list[AiorunProcess] = []

    def start(
        *args: str,
        cwd: Path = CLIAPP,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
    ) -> AiorunProcess:
        """``flask *args``, or ``command`` when given."""
        log = tmp_path / f"aiorun-{len(started)}.log"
        process = AiorunProcess(command or [*FLASK, *args], log, cwd, env or {})
        started.append(process)
        return process.wait_ready(timeout=60)  # type: ignore[return-value]

    yield start
    for process in started:
        process.kill()


def test_aiorun_serves_a_factory_with_arguments(aiorun) -> None:  # type: ignore[no-untyped-def]
    server = aiorun(
        "--app", "factory:create_app('bonjour')", "aiorun", "--host", "127.0.0.1", "--port", "0"
    )
    response = httpx.get(server.url + "/")
    assert response.status_code == 200
    assert response.json()["greeting"] == "bonjour"
    assert response.json()["debug"] is False
    assert "Serving Flask app 'factory:create_app('bonjour')'" in server.log
    # uvicorn shuts down gracefully, then re-raises the signal for its exit status.
    assert server.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in server.log


def test_aiorun_loads_dotenv_files(aiorun, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "project"
    project.mkdir()
    (project / "factory.py").write_text((CLIAPP / "factory.py").read_text())
    (project / ".flaskenv").write_text("FLASK_APP=factory:create_app('from flaskenv')\n")
    (project / ".env").write_text("CLIAPP_SETTING=from-dotenv\n")
    server = aiorun("aiorun", "--port", "0", cwd=project)
    body = httpx.get(server.url + "/").json()
    assert body["greeting"] == "from flaskenv"
    assert body["from_env"] == "from-dotenv"


def test_aiorun_debug_serves_the_pin_protected_debugger(aiorun) -> None:  # type: ignore[no-untyped-def]
    server = aiorun(
        "--app", "factory:create_app", "--debug", "aiorun", "--no-reload", "--port", "0"
    )
    assert "Debug mode: on" in server.log
    pin = re.search(r"Debugger PIN: ([\d-]+)", server.log)
    assert pin, server.log
    assert httpx.get(server.url + "/").json()["debug"] is True
    response = httpx.get(server.url + "/boom")
    assert response.status_code == 500
    # Werkzeug's interactive debugger page, with its console locked by the PIN.
    assert "Werkzeug Debugger" in response.text
    assert "boom for the debugger" in response.text
    assert "EVALEX_TRUSTED = false" in response.text


def test_aiorun_reload_restarts_on_change(aiorun, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "project"
    project.mkdir()
    source = (CLIAPP / "factory.py").read_text()
    (project / "factory.py").write_text(source)
    (project / "skip_me.py").write_text("")
    extra = project / "extra.txt"
    extra.write_text("a")
    server = aiorun(
        *("--app", "factory:create_app", "aiorun", "--reload", "--port", "0"),
        *("--extra-files", str(extra), "--exclude-patterns", "*skip_me*"),
        cwd=project,
    )
    url = f"http://127.0.0.1:{server.port}/"
    first = httpx.get(url).json()
    assert first["greeting"] == "hello"
    time.sleep(1.5)  # the reloader polls once a second
    (project / "factory.py").write_text(
        source.replace('greeting: str = "hello"', 'greeting: str = "reloaded"')
    )
    _wait_for(server, url, lambda r: r.json()["greeting"] == "reloaded")
    assert "Detected change in" in server.log
    reloaded = httpx.get(url).json()
    # An excluded file changes, then (after a scan of the files) an extra one:
    # the restart that follows is for the extra file.
    (project / "skip_me.py").write_text("# changed\n")
    time.sleep(1.5)
    extra.write_text("b")
    _wait_for(server, url, lambda r: r.json()["pid"] != reloaded["pid"])
    # The watching process logs it; on a busy machine the line may come late.
    deadline = time.monotonic() + 10
    while f"Detected change in {str(extra)!r}" not in server.log:
        assert time.monotonic() < deadline, server.log
        time.sleep(0.2)
    assert "skip_me" not in server.log
    assert "skip_me" not in server.log


def test_aiorun_workers_serve_from_several_processes(aiorun) -> None:  # type: ignore[no-untyped-def]
    server = aiorun("--app", "factory:create_app", "aiorun", "--workers", "2", "--port", "0")
    pids = set()
    deadline = time.monotonic() + 30
    while len(pids) < 2:
        with httpx.Client() as client:  # new connections spread over the workers
            pids.add(client.get(server.url + "/").json()["pid"])
        assert time.monotonic() < deadline, f"only saw {pids}\n{server.log}"
    assert server.pid not in pids


def test_aiorun_https_with_an_adhoc_certificate(aiorun) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("cryptography")
    server = aiorun("--app", "factory:create_app", "aiorun", "--cert", "adhoc", "--port", "0")
    url = server.url.replace("http://", "https://")
    response = httpx.get(url + "/", verify=False)
    assert response.json()["scheme"] == "https"


def test_adhoc_certificate_leaves_no_key_file(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    # A process serving with an adhoc certificate (killed or not) leaves no
    # private key on disk; worker processes need files: removed at exit.
    code = (
        "import ssl, sys, tempfile\n"
        "tempfile.tempdir = sys.argv[1]\n"
        "from aioflask.serving import _adhoc_certificate, _ssl_options\n"
        "assert isinstance(_ssl_options('adhoc')[2], ssl.SSLContext)\n"
        "assert not list(__import__('pathlib').Path(sys.argv[1]).rglob('*.pem'))\n"
        "cert, key = _adhoc_certificate()\n"
        "ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
    )
    assert result.stdout == "ok\n", result.stderr
    assert list(tmp_path.iterdir()) == []


def test_app_run_serves_with_uvicorn_and_the_debugger(aiorun, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "run_app.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(CLIAPP)!r})\n"
        "from factory import create_app\n"
        "app = create_app('from app.run')\n"
        "if __name__ == '__main__':\n"
        # Without the reloader: a signal to the process group makes it kill
        # the serving process (as Werkzeug's does), with no graceful shutdown.
        "    app.run(port=0, debug=True, use_reloader=False, load_dotenv=False)\n"
    )
    server = aiorun(command=[sys.executable, str(script)], cwd=tmp_path)
    body = httpx.get(server.url + "/").json()
    assert body["greeting"] == "from app.run"
    assert body["debug"] is True
    assert re.search(r"Debugger PIN: [\d-]+", server.log), server.log
    response = httpx.get(server.url + "/boom")
    assert response.status_code == 500
    assert "Werkzeug Debugger" in response.text
    assert server.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in server.log


def _wait_for(server: AiorunProcess, url: str, check: Callable[[httpx.Response], bool]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if check(httpx.get(url, verify=False)):
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, server.log
        time.sleep(0.2)


def test_app_run_reloads_on_change_with_port_0_and_https(aiorun, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("cryptography")
    from werkzeug.serving import make_ssl_devcert

    cert, key = make_ssl_devcert(str(tmp_path / "dev"), host="localhost")
    extra = tmp_path / "settings.cfg"
    extra.write_text("a")
    # A name that cannot be imported: the reloader restarts the command itself.
    script = tmp_path / "run-app.py"
    source = (
        "import sys\n"
        f"sys.path.insert(0, {str(CLIAPP)!r})\n"
        "from factory import create_app\n"
        "app = create_app('first')\n"
        "if __name__ == '__main__':\n"
        f"    app.run(port=0, debug=True, load_dotenv=False, ssl_context=({cert!r}, {key!r}),"
        f" extra_files=[{str(extra)!r}], reloader_interval=0.1)\n"
    )
    script.write_text(source)
    server = aiorun(command=[sys.executable, str(script)], cwd=tmp_path)
    url = f"https://127.0.0.1:{server.port}/"
    body = httpx.get(url, verify=False).json()
    assert (body["greeting"], body["scheme"], body["debug"]) == ("first", "https", True)

    script.write_text(source.replace("'first'", "'second'"))
    _wait_for(server, url, lambda r: r.json()["greeting"] == "second")
    assert "Detected change in" in server.log

    second_pid = httpx.get(url, verify=False).json()["pid"]
    extra.write_text("b")  # an extra file restarts the server too
    _wait_for(server, url, lambda r: r.json()["pid"] != second_pid)
    assert f"Detected change in {str(extra)!r}" in server.log


def test_app_run_takes_an_ssl_context_object(aiorun, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("cryptography")
    from werkzeug.serving import make_ssl_devcert

    cert, key = make_ssl_devcert(str(tmp_path / "dev"), host="localhost")
    script = tmp_path / "run_app.py"
    script.write_text(
        "import ssl, sys\n"
        f"sys.path.insert(0, {str(CLIAPP)!r})\n"
        "from factory import create_app\n"
        "context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
        f"context.load_cert_chain({cert!r}, {key!r})\n"
        "create_app('tls').run(port=0, load_dotenv=False, ssl_context=context)\n"
    )
    server = aiorun(command=[sys.executable, str(script)], cwd=tmp_path)
    body = httpx.get(f"https://127.0.0.1:{server.port}/", verify=False).json()
    assert (body["greeting"], body["scheme"]) == ("tls", "https")


def test_app_run_maps_flasks_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    import aioflask.app

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(aioflask.app, "run_server", lambda app, **kw: calls.append(kw))
    app = Flask("mapped")
    app.run(port=0, load_dotenv=False, threaded=True)
    assert (calls[-1]["port"], calls[-1]["reload"], calls[-1]["debugger"]) == (0, False, False)
    assert not app.jinja_env.auto_reload
    app.run(debug=True, load_dotenv=False, use_debugger=False, ssl_context="adhoc")
    assert (calls[-1]["port"], calls[-1]["reload"], calls[-1]["debugger"]) == (5000, True, False)
    assert calls[-1]["ssl_context"] == "adhoc"
    assert app.jinja_env.auto_reload  # Flask's debug mode reloads templates


def test_aiorun_rejects_bad_option_combinations(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*FLASK, "--app", "factory:create_app", "aiorun", *args],
            cwd=CLIAPP,
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = run("--reload", "--workers", "2")
    assert result.returncode == 2
    assert "--reload and --workers cannot be used together" in result.stderr
    result = run("--key", str(CLIAPP / "factory.py"))
    assert result.returncode == 2
    assert '"--cert" must also be specified' in result.stderr
    result = subprocess.run(
        [*FLASK, "--app", "nonexistent_module", "aiorun"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "nonexistent_module" in result.stderr


def _flask_command(app: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``flask --app <app> <args>`` in the cliapp folder."""
    return subprocess.run(
        [*FLASK, "--app", app, *args], cwd=CLIAPP, capture_output=True, text=True, timeout=60
    )


def test_flask_cli_runs_async_commands() -> None:
    result = _flask_command("factory:create_app('hi')", "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi cliapp\n"
    result = _flask_command("factory:create_app", "tools", "count")
    assert result.stdout == "tools cliapp\n", result.stderr


def test_flask_cli_sync_command_may_run_its_own_loop() -> None:
    """Commands wait on a loop only while they wait: ``asyncio.run()`` works in them."""
    result = _flask_command("factory:create_app('hi')", "own-loop")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi from asyncio.run cliapp\n"


def test_flask_shell_works_and_can_await() -> None:
    code = (
        "from aioflask import await_\nimport asyncio\n"
        "print('app is', app.name, await_(asyncio.sleep(0, 'slept')))\n"
    )
    result = subprocess.run(
        [*FLASK, "--app", "factory:create_app", "shell"],
        cwd=CLIAPP,
        input=code,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "app is cliapp slept" in result.stdout


async def test_runner_invokes_app_and_blueprint_commands() -> None:
    app = Flask("runner")
    bp = Blueprint("bp", __name__)
    seen: list[str] = []

    @app.cli.command("with-ctx")
    async def with_ctx() -> None:
        seen.append(current_app.name)

    @app.cli.command("without-ctx", with_appcontext=False)
    async def without_ctx() -> None:
        seen.append("no context")

    @app.cli.group("grp")
    def grp() -> None:
        pass

    @grp.command("sub")
    async def sub() -> None:
        seen.append("sub " + current_app.name)

    @bp.cli.command("bpcmd")
    async def bpcmd() -> None:
        seen.append("bp " + current_app.name)

    app.register_blueprint(bp)
    runner = app.test_cli_runner()
    for args in (["with-ctx"], ["without-ctx"], ["grp", "sub"], ["bp", "bpcmd"]):
        result = await runner.invoke(args=args)
        assert result.exit_code == 0, (args, result.output, result.exception)
    assert seen == ["runner", "no context", "sub runner", "bp runner"]


async def test_runner_reports_a_failing_async_command() -> None:
    app = Flask("runner")

    @app.cli.command("fail")
    async def fail() -> None:
        raise LookupError("async failure")

    result = await app.test_cli_runner().invoke(args=["fail"])
    assert result.exit_code == 1
    assert isinstance(result.exception, LookupError)


def test_every_command_of_app_cli_runs_on_the_bridge() -> None:
    """However a command got into ``app.cli``, sync code in it can wait like a view.

    Flask merges the commands of a blueprint with ``cli_group=None`` into
    ``app.cli.commands`` directly (extensions use flask.Blueprint).
    """

    app = Flask("runner")
    bp = flask.Blueprint("flask_bp", __name__, cli_group=None)
    seen: list[str] = []

    async def name() -> str:
        await asyncio.sleep(0)
        return current_app.name

    @app.cli.command("decorated")
    def decorated() -> None:
        seen.append("decorated " + sqlalchemy_await(name()))

    @bp.cli.command("merged")
    def merged() -> None:
        seen.append("merged " + sqlalchemy_await(name()))

    @click.command("assigned")
    @flask.cli.with_appcontext
    def assigned() -> None:
        seen.append("assigned " + sqlalchemy_await(name()))

    app.register_blueprint(bp)
    app.cli.commands["assigned"] = assigned
    # Flask's own sync runner: no loop runs here, as under `flask`.
    runner = flask.testing.FlaskCliRunner(app)
    for command in ("decorated", "merged", "assigned"):
        result = runner.invoke(args=[command])
        assert result.exit_code == 0, (command, result.output, result.exception)
    assert seen == ["decorated runner", "merged runner", "assigned runner"]


def test_a_command_sees_g_from_its_parameter_callbacks() -> None:
    """``flask`` gives parameter callbacks the app context; what they put on g stays."""
    result = _flask_command("factory:create_app", "greet", "--user", "bob")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello Bob\n"


async def test_flask_sync_runner_in_an_async_test_runs_sync_commands() -> None:
    """A loop runs here: a sync command is simply called, as with Flask."""
    app = Flask("runner")

    @app.cli.command("hello")
    def hello() -> None:
        click.echo(f"hello from {current_app.name}")

    result = flask.testing.FlaskCliRunner(app).invoke(args=["hello"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.output == "hello from runner\n"


def test_app_run_passes_the_websocket_ping_keys_to_uvicorn(aiorun, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "run_ws.py"
    script.write_text(
        "import asyncio\n"
        "from aioflask import Flask, websocket\n"
        "app = Flask('pings')\n"
        "app.config['WEBSOCKET_PING_INTERVAL'] = 0.2\n"
        "app.config['WEBSOCKET_PING_TIMEOUT'] = 0.5\n"
        "@app.websocket('/ws')\n"
        "async def ws():\n"
        "    await websocket.accept()\n"
        "    try:\n"
        "        await asyncio.sleep(3600)\n"
        "    finally:\n"
        "        print('handler ended with', websocket.close_code, flush=True)\n"
        "if __name__ == '__main__':\n"
        "    app.run(port=0, load_dotenv=False)\n"
    )
    server = aiorun(command=[sys.executable, str(script)], cwd=tmp_path)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
        head, _, data = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        # The server pings (opcode 9); unanswered, it closes the connection.
        opcodes = []
        while chunk := sock.recv(4096):
            data += chunk
            while len(data) >= 2 and len(data) >= 2 + (data[1] & 0x7F):
                opcodes.append(data[0] & 0x0F)
                data = data[2 + (data[1] & 0x7F) :]
    assert opcodes[0] == 0x9, opcodes
    deadline = time.monotonic() + 10
    while "handler ended with" not in server.log and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "handler ended with" in server.log, server.log  # the server closed it


def _routes_app(cls: type[flask.Flask]) -> flask.Flask:
    app = cls("routes")

    @app.route("/items", methods=["GET", "POST"])
    def items() -> str:
        return ""

    @app.get("/about")
    def about() -> str:
        return ""

    if isinstance(app, Flask):

        @app.websocket("/ws/<room>")
        async def chat(room: str) -> None:
            pass

        bp = Blueprint("live", __name__)
        bp.websocket("/feed")(chat)
        app.register_blueprint(bp, url_prefix="/live")
    return app


@pytest.fixture
def restore_run_from_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    # FlaskGroup sets FLASK_RUN_FROM_CLI, which makes later app.run() calls return.
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "false")


def _invoke_routes(app: flask.Flask, *args: str) -> list[list[str]]:
    cli = flask.cli.FlaskGroup(create_app=lambda: app)
    result = app.test_cli_runner().invoke(cli, ["routes", *args])
    assert result.exit_code == 0, result.output
    return [re.split(r"  +", line.strip()) for line in result.output.splitlines()[2:]]


@pytest.mark.usefixtures("restore_run_from_cli")
def test_routes_shows_websocket_routes_as_websocket() -> None:
    app = _routes_app(Flask)
    assert _invoke_routes(app) == [
        ["about", "GET", "/about"],
        ["chat", "WEBSOCKET", "/ws/<room>"],
        ["items", "GET, POST", "/items"],
        ["live.chat", "WEBSOCKET", "/live/feed"],
        ["static", "GET", "/static/<path:filename>"],
    ]
    by_methods = _invoke_routes(app, "--sort", "methods")
    assert [row[1] for row in by_methods] == ["GET", "GET", "GET, POST", "WEBSOCKET", "WEBSOCKET"]
    all_methods = {row[0]: row[1] for row in _invoke_routes(app, "--all-methods")}
    assert all_methods["items"] == "GET, HEAD, OPTIONS, POST"
    assert all_methods["chat"] == all_methods["live.chat"] == "WEBSOCKET"
    in_match_order = _invoke_routes(app, "--sort", "match")
    assert [row[0] for row in in_match_order] == [r.endpoint for r in app.url_map.iter_rules()]


@pytest.mark.usefixtures("restore_run_from_cli")
@pytest.mark.parametrize("subdomain", [False, True])
@pytest.mark.parametrize("args", [(), ("-s", "methods"), ("-s", "rule"), ("--all-methods",)])
def test_routes_prints_http_routes_as_flask_does(subdomain: bool, args: tuple[str, ...]) -> None:
    app = _routes_app(flask.Flask)
    if subdomain:
        app.add_url_rule("/api", "api", lambda: "", subdomain="api")
    runner = app.test_cli_runner()
    ours = runner.invoke(flask.cli.FlaskGroup(create_app=lambda: app), ["routes", *args])
    flasks = runner.invoke(flask.cli.routes_command, list(args))
    assert ours.exit_code == flasks.exit_code == 0, ours.output
    assert ours.output == flasks.output


def test_flask_routes_command_lists_websocket_routes() -> None:
    result = _flask_command("factory:create_app", "routes", "--sort", "rule")
    assert result.returncode == 0, result.stderr
    rows = [re.split(r"  +", line.strip()) for line in result.stdout.splitlines()]
    assert ["room", "WEBSOCKET", "/ws/<room>"] in rows
    assert ["index", "GET", "/"] in rows
