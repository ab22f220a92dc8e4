"""``flask aiorun`` as a real subprocess, async CLI commands, ``flask shell``."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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
            match = re.search(r"Uvicorn running on https://127\.0\.0\.1:(\d+)", self.log)
            if match:
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
    server = aiorun("--app", "factory:create_app", "aiorun", "--reload", "--port", "0", cwd=project)
    assert httpx.get(server.url + "/").json()["greeting"] == "hello"
    time.sleep(0.5)
    (project / "factory.py").write_text(
        source.replace('greeting: str = "hello"', 'greeting: str = "reloaded"')
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(server.url + "/").json()["greeting"] == "reloaded":
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, server.log
        time.sleep(0.2)
    assert "Reloading" in server.log or "change" in server.log.lower()


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


def test_app_run_serves_with_uvicorn_and_the_debugger(aiorun, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "run_app.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(CLIAPP)!r})\n"
        "from factory import create_app\n"
        "app = create_app('from app.run')\n"
        "if __name__ == '__main__':\n"
        "    app.run(port=0, debug=True, load_dotenv=False)\n"
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


def test_app_run_refuses_the_reloader() -> None:
    app = Flask("no_reload")
    with pytest.raises(ValueError, match="aiorun --reload"):
        app.run(use_reloader=True, load_dotenv=False)


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


def test_flask_cli_runs_async_commands() -> None:
    result = subprocess.run(
        [*FLASK, "--app", "factory:create_app('hi')", "hello"],
        cwd=CLIAPP,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi cliapp\n"
    result = subprocess.run(
        [*FLASK, "--app", "factory:create_app", "tools", "count"],
        cwd=CLIAPP,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout == "tools cliapp\n", result.stderr


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
