"""Driving a server with wrk, and reading wrk's report."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from stacks import CLIENT_CPU, pinned

ECHO_SCRIPT = Path(__file__).resolve().parent / "echo.lua"

_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int = 0
    #: Socket errors by kind (connect, read, write, timeout), when any.
    errors: dict[str, int] = field(default_factory=dict)
    output: str = ""


def wrk_version() -> str:
    if shutil.which("wrk") is None:
        return "not installed"
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return out.split("Copyright")[0].strip() or "unknown"


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"cannot read a wrk latency: {text!r}")
    return float(match[1]) * _UNITS_MS[match[2]]


def parse(output: str) -> WrkResult:
    """Read req/s, latency percentiles and errors from wrk's ``--latency`` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"(\d+) requests in", output)
    if rps is None or total is None:
        raise ValueError(f"cannot read wrk's output:\n{output}")
    requests = int(total[1])
    result = WrkResult(
        rps=float(rps[1]),
        # Percentiles of completed requests only (wrk shows 0 when none did).
        p50_ms=_ms(p50[1]) if p50 and requests else float("nan"),
        p99_ms=_ms(p99[1]) if p99 and requests else float("nan"),
        requests=requests,
        output=output,
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        result.non_2xx = int(non_2xx[1])
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if errors:
        counts = zip(("connect", "read", "write", "timeout"), errors.groups(), strict=True)
        result.errors = {kind: int(n) for kind, n in counts if int(n)}
    return result


def wrk(
    url: str,
    *,
    connections: int,
    duration: float,
    post: bool = False,
    threads: int = 1,
    timeout: float = 5,
) -> WrkResult:
    """Run wrk (pinned to the client CPU) against ``url``."""
    argv = [
        *("wrk", "--latency", "-t", str(threads), "-c", str(connections)),
        *("-d", f"{duration:g}s", "--timeout", f"{timeout:g}s"),
    ]
    if post:
        argv += ["-s", str(ECHO_SCRIPT)]
    try:
        done = subprocess.run(
            pinned([*argv, url], CLIENT_CPU), capture_output=True, text=True, timeout=duration + 60
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"wrk did not finish within {duration + 60:g} s") from None
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse(done.stdout)
