"""The README's commands for real: ``flask init-db``, then ``flask aiorun`` (uvicorn)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

APP = str(Path(__file__).parent / "aioflaskr")
TIMEOUT = 30.0


def flask(*args: str, env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "flask", "--app", APP, *args]
    output = log.open("wb") if log else subprocess.PIPE
    try:
        return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    finally:
        if log:
            output.close()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    # create_app() reads FLASK_* variables: a database of this test's own.
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "FLASK_DATABASE": str(tmp_path / "instance" / "aioflaskr.sqlite"),
    }


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """``flask init-db`` then ``flask aiorun --port 0``; yields the server's URL."""
    init = flask("init-db", env=env)
    output, _ = init.communicate(timeout=TIMEOUT)
    assert init.returncode == 0, output
    assert b"Initialized the database." in output
    assert Path(env["FLASK_DATABASE"]).is_file()

    log = tmp_path / "aiorun.log"
    process = flask("aiorun", "--port", "0", env=env, log=log)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (match := re.search(r"running on (http://127\.0\.0\.1:\d+)", log.read_text())):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(TIMEOUT)


def test_init_db_and_aiorun(server: str) -> None:
    with httpx.Client(base_url=server, timeout=TIMEOUT) as http:
        assert "Register" in http.get("/").text
        form = {"username": "alice", "password": "secret"}
        response = http.post("/auth/register", data=form)
        assert (response.status_code, response.headers["Location"]) == (302, "/auth/login")
        assert http.post("/auth/login", data=form).headers["Location"] == "/"
        response = http.post("/create", data={"title": "Served", "body": "by uvicorn"})
        assert response.headers["Location"] == "/"
        page = http.get("/").text
        assert "<span>alice</span>" in page
        assert "Served" in page
        assert "by alice on" in page
        assert http.get("/static/style.css").status_code == 200
