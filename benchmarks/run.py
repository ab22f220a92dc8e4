"""Benchmark aioflask against the other Flask-compatible stacks, over HTTP.

For each stack: start the server on 127.0.0.1 (one worker, pinned to CPU 0),
check that every endpoint answers correctly, warm up, then drive it with wrk
(pinned to CPU 1). Repeats go round all stacks again (in a rotated order), so
that noise spreads over every stack. The report is a Markdown table per
endpoint: median req/s, median p99 latency and the ratio to aioflask.

    python benchmarks/run.py                      # every default stack, ~25 min
    python benchmarks/run.py --stacks aioflask,ceiling,quart --endpoints ping -d 5
    python benchmarks/run.py --list               # the stacks and their endpoints

Needs ``pip install -e '.[bench]'`` and wrk (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from apps.common import ECHO_SIZE, check
from loadgen import WrkResult, wrk, wrk_version
from stacks import ALL_ENDPOINTS, ROUTES, STACKS, Server, Stack, can_pin, request

#: Connections per endpoint (64; 256 for the 50 ms sleep and query; 16 for the 1 MiB file).
CONNECTIONS = {
    "ping": 64,
    "sleep": 256,
    "tmpl": 64,
    "echo": 64,
    "block": 64,
    "db": 256,
    "file": 16,
}
DEFAULT_ENDPOINTS = ("ping", "sleep", "tmpl", "echo")
PACKAGES = (
    "aioflask",
    "flask",
    "werkzeug",
    "jinja2",
    "greenlet",
    "quart",
    "starlette",
    "uvicorn",
    "granian",
    "uvloop",
    "httptools",
    "hypercorn",
    "gunicorn",
    "gevent",
    "a2wsgi",
)


@dataclass
class Sample:
    stack: str
    endpoint: str
    repeat: int
    connections: int
    rps: float = 0.0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    requests: int = 0
    non_2xx: int = 0
    errors: dict[str, int] | None = None
    #: The server's CPU use during the run (1.0 = one core busy all the time).
    cpu: float = math.nan
    #: Server CPU time per request (µs): steadier than req/s on a busy machine.
    cpu_us: float = math.nan
    #: The server's context switches per request (threads handing off the GIL,
    #: waits for the socket): what user-space instruction counts do not see.
    switches: float = math.nan
    failure: str | None = None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPUs ({cpu_model()}), Linux {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": ", ".join(versions),
        "wrk": wrk_version(),
        "load average at start": " ".join(f"{x:.2f}" for x in load),
    }


def check_endpoints(server: Server, endpoints: list[str]) -> dict[str, str]:
    """Endpoint -> what is wrong with its response (only the wrong ones)."""
    failures = {}
    for endpoint in endpoints:
        method, path = ROUTES[endpoint]
        body = b"x" * ECHO_SIZE if method == "POST" else None
        try:
            status, data = request(server.port, method, path, body)
        except OSError as exc:
            failures[endpoint] = f"request failed: {exc!r}"
            continue
        problem = check(endpoint, status, data)
        if problem is not None:
            failures[endpoint] = problem
    return failures


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (gunicorn's worker), or NaN."""
    return _usage(pid)[0]


def _usage(pid: int) -> tuple[float, float]:
    """(CPU seconds, context switches) of a process and its children, or NaNs."""
    try:
        import psutil
    except ImportError:
        return math.nan, math.nan
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
        cpu = switches = 0.0
        for proc in procs:
            cpu += sum(proc.cpu_times()[:2])
            switches += _thread_switches(proc.pid)
        return cpu, switches
    except psutil.Error:
        return math.nan, math.nan


def _thread_switches(pid: int) -> float:
    """Context switches of every thread of a process (Linux), or NaN.

    psutil counts the main thread's only; granian's Rust threads count too.
    """
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return math.nan
    total = 0
    for task in tasks:
        try:
            lines = (task / "status").read_text().splitlines()
        except OSError:
            continue  # the thread has ended
        total += sum(int(line.split()[1]) for line in lines if "ctxt_switches:" in line)
    return total


def measure(server: Server, endpoint: str, args: argparse.Namespace, repeat: int) -> Sample:
    connections = args.connections or CONNECTIONS[endpoint]
    sample = Sample(server.stack.name, endpoint, repeat, connections)
    url = server.url + ROUTES[endpoint][1]
    post = ROUTES[endpoint][0] == "POST"
    options = {"threads": args.wrk_threads, "timeout": args.timeout, "post": post}
    if args.warmup > 0:
        # Few connections: warm the code up without leaving a backlog behind.
        wrk(url, connections=min(connections, 16), duration=args.warmup, **options)
    (cpu_before, switches_before), started = _usage(server.pid), time.monotonic()
    result: WrkResult = wrk(url, connections=connections, duration=args.duration, **options)
    cpu_after, switches_after = _usage(server.pid)
    cpu_used = cpu_after - cpu_before
    if result.requests:
        sample.switches = (switches_after - switches_before) / result.requests
    sample.cpu = cpu_used / (time.monotonic() - started)
    sample.cpu_us = cpu_used / result.requests * 1e6 if result.requests else math.nan
    sample.rps = result.rps
    sample.p50_ms = result.p50_ms
    sample.p99_ms = result.p99_ms
    sample.requests = result.requests
    sample.non_2xx = result.non_2xx
    sample.errors = result.errors or None
    if args.verbose:
        print(result.output, file=sys.stderr)
    return sample


def run_stack(stack: Stack, endpoints: list[str], args, repeat: int) -> list[Sample]:
    """Measure each endpoint on a fresh server.

    A fresh server per endpoint, so that what one run leaves behind (a sync
    worker still draining a backlog of 256 timed-out connections) cannot
    spoil the next.
    """
    samples = []
    for endpoint in endpoints:
        try:
            server = Server(stack, pin=not args.no_pin).wait_ready()
        except RuntimeError as exc:
            samples.append(Sample(stack.name, endpoint, repeat, 0, failure=str(exc)))
            continue
        try:
            failure = check_endpoints(server, [endpoint]).get(endpoint)
            if failure is None:
                samples.append(measure(server, endpoint, args, repeat))
                _progress(samples[-1])
            else:
                samples.append(Sample(stack.name, endpoint, repeat, 0, failure=failure))
        except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as exc:
            # wrk failed or its output made no sense: report it, go on.
            samples.append(Sample(stack.name, endpoint, repeat, 0, failure=repr(exc)))
        finally:
            server.stop()
    return samples


def _progress(s: Sample) -> None:
    errors = f" non-2xx {s.non_2xx}" if s.non_2xx else ""
    if s.errors:
        errors += f" socket errors {s.errors}"
    print(
        f"  [{s.repeat + 1}] {s.stack:26} {s.endpoint:6} {s.rps:9.0f} req/s"
        f"  p99 {s.p99_ms:8.2f} ms  cpu {s.cpu:4.2f} ({s.cpu_us:.0f} us/req)"
        f"  {s.switches:.2f} ctx sw/req{errors}",
        file=sys.stderr,
        flush=True,
    )


# -- report ------------------------------------------------------------------


@dataclass
class Row:
    stack: str
    rps: float
    rps_min: float
    rps_max: float
    p99_ms: float
    cpu: float
    cpu_us: float
    switches: float
    non_2xx: int
    errors: dict[str, int]
    connections: int
    failure: str | None


def summarize(samples: list[Sample], endpoint: str, stacks: list[str]) -> list[Row]:
    rows = []
    for name in stacks:
        mine = [s for s in samples if s.stack == name and s.endpoint == endpoint]
        if not mine:
            continue
        good = [s for s in mine if s.failure is None]
        failure = next((s.failure for s in mine if s.failure), None)
        if not good:
            nan = math.nan
            rows.append(Row(name, nan, nan, nan, nan, nan, nan, nan, 0, {}, 0, failure))
            continue
        errors: dict[str, int] = {}
        for s in good:
            for kind, n in (s.errors or {}).items():
                errors[kind] = errors.get(kind, 0) + n
        rates = [s.rps for s in good]
        rows.append(
            Row(
                stack=name,
                rps=statistics.median(rates),
                rps_min=min(rates),
                rps_max=max(rates),
                p99_ms=_median(s.p99_ms for s in good),
                cpu=_median(s.cpu for s in good),
                cpu_us=_median(s.cpu_us for s in good),
                switches=_median(s.switches for s in good),
                non_2xx=sum(s.non_2xx for s in good),
                errors=errors,
                connections=good[0].connections,
                failure=failure,
            )
        )
    return sorted(rows, key=lambda r: -r.rps if not math.isnan(r.rps) else 0)


def _median(values: Iterable[float]) -> float:
    """The median of the numbers that are not NaN (NaN if none is)."""
    numbers = [v for v in values if not math.isnan(v)]
    return statistics.median(numbers) if numbers else math.nan


def _short(text: str) -> str:
    """One line of an error message, fit for a table cell."""
    return text.strip().splitlines()[0][:160].replace("|", "/") if text.strip() else "?"


def _fmt(value: float, spec: str) -> str:
    return "n/a" if math.isnan(value) else format(value, spec)


def _fmt_ms(ms: float) -> str:
    if math.isnan(ms):
        return "n/a"
    return f"{ms:.1f} ms" if ms >= 10 else f"{ms:.2f} ms"


def table(rows: list[Row]) -> list[str]:
    base = next((r for r in rows if r.stack == "aioflask"), None)
    lines = [
        "| stack | server | req/s (median) | min-max | p99 | vs aioflask"
        " | server CPU | CPU µs/req | ctx sw/req | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        if math.isnan(r.rps):
            failure = _short(r.failure or "")
            lines.append(f"| {r.stack} | {STACKS[r.stack].server} | FAILED ||||||| {failure} |")
            continue
        ratio = f"{r.rps / base.rps:.2f}x" if base and base.rps else "n/a"
        problems = []
        if r.non_2xx:
            problems.append(f"{r.non_2xx} non-2xx")
        problems += [f"{n} {kind}" for kind, n in r.errors.items()]
        if r.failure:
            problems.append(f"a run failed: {_short(r.failure)}")
        name = f"**{r.stack}**" if r.stack in AIOFLASK_ROWS else r.stack
        lines.append(
            f"| {name} | {STACKS[r.stack].server} | {r.rps:,.0f}"
            f" | {r.rps_min:,.0f}-{r.rps_max:,.0f}"
            f" | {_fmt_ms(r.p99_ms)} | {ratio} | {_fmt(r.cpu, '.0%')} | {_fmt(r.cpu_us, ',.0f')}"
            f" | {_fmt(r.switches, '.2f')} | {', '.join(problems)} |"
        )
    return lines


#: aioflask's rows, one per server; the targets take its best one.
AIOFLASK_ROWS = ("aioflask", "aioflask-granian")
#: aioflask's row -> the raw ASGI app on the same server.
RAW_ON_SAME_SERVER = {"aioflask": "raw-asgi", "aioflask-granian": "raw-asgi-granian"}


def targets(by_endpoint: dict[str, list[Row]]) -> list[str]:
    """The performance targets, from this run's medians.

    Throughput targets take aioflask on its best server of this run; /sleep
    compares each aioflask row with the raw ASGI app on the same server.
    """

    def get(endpoint: str, stack: str) -> Row | None:
        row = next((r for r in by_endpoint.get(endpoint, []) if r.stack == stack), None)
        return row if row is not None and not math.isnan(row.rps) else None

    def best(endpoint: str) -> Row | None:
        rows = [r for r in (get(endpoint, name) for name in AIOFLASK_ROWS) if r is not None]
        return max(rows, key=lambda r: r.rps, default=None)

    checks = [
        ("ping", "flask-granian-wsgi", 1.0, "JSON ping >= 1.0x Flask on granian WSGI"),
        ("tmpl", "flask-granian-wsgi", 1.0, "/tmpl >= 1.0x Flask on granian WSGI"),
        ("echo", "flask-granian-wsgi", 1.0, "/echo >= 1.0x Flask on granian WSGI"),
        ("ping", "quart", 1.6, "JSON ping >= 1.6x Quart"),
        ("tmpl", "quart", 1.6, "/tmpl >= 1.6x Quart"),
        ("echo", "quart", 1.6, "/echo >= 1.6x Quart"),
        ("ping", "ceiling", 0.9, "JSON ping >= 90% of the ceiling"),
    ]
    lines = []
    for endpoint, other, factor, text in checks:
        mine, theirs = best(endpoint), get(endpoint, other)
        if mine is None or theirs is None:
            continue
        ratio = mine.rps / theirs.rps
        verdict = "met" if ratio >= factor else "NOT met"
        lines.append(f"- {text} ({mine.stack}): {ratio:.2f}x, {verdict}")
    for name, raw in RAW_ON_SAME_SERVER.items():
        mine, theirs = get("sleep", name), get("sleep", raw)
        if mine is None or theirs is None:
            continue
        ratio = mine.rps / theirs.rps
        verdict = "met" if ratio >= 0.95 else "NOT met"
        lines.append(f"- /sleep >= 95% of {raw} ({name}): {ratio:.2f}x, {verdict}")
        p99 = mine.p99_ms / theirs.p99_ms
        verdict = "met" if p99 <= 1.3 else "NOT met"
        lines.append(f"- /sleep p99 within 1.3x of {raw} ({name}): {p99:.2f}x, {verdict}")
    return lines


def report(samples: list[Sample], info: dict[str, str], args, stacks, endpoints) -> str:
    lines = ["## HTTP benchmark", ""]
    lines += [f"- {key}: {value}" for key, value in info.items()]
    pin = "server on CPU 0, wrk on CPU 1" if can_pin() and not args.no_pin else "not pinned"
    lines += [
        f"- settings: {args.duration:g} s per run after {args.warmup:g} s of warm-up,"
        f" {args.repeats} repeats (median shown), wrk -t{args.wrk_threads}"
        f" --timeout {args.timeout:g}s, {pin}; one worker process per server",
        "",
    ]
    by_endpoint = {}
    for endpoint in endpoints:
        rows = summarize(samples, endpoint, stacks)
        if not rows:
            continue
        by_endpoint[endpoint] = rows
        method, path = ROUTES[endpoint]
        conns = next((r.connections for r in rows if r.connections), "?")
        lines += [f"### {method} {path} ({endpoint}), {conns} connections", ""]
        lines += table(rows)
        lines.append("")
    goals = targets(by_endpoint)
    if goals:
        lines += ["### Against the performance targets (this run)", "", *goals, ""]
    return "\n".join(lines)


#: The options a report mentions, saved with the samples.
SETTINGS = ("duration", "warmup", "repeats", "wrk_threads", "timeout", "no_pin")


def rerender(args: argparse.Namespace) -> str:
    """The report of a run saved with ``--json``."""
    data = json.loads(args.report.read_text())
    for key, value in data.get("settings", {}).items():
        setattr(args, key, value)
    samples = [Sample(**fields) for fields in data["samples"]]
    seen = {s.stack for s in samples}
    stacks = [name for name in STACKS if name in seen]
    endpoints = [e for e in ALL_ENDPOINTS if any(s.endpoint == e for s in samples)]
    if "repeats" not in data.get("settings", {}):
        args.repeats = max(s.repeat for s in samples) + 1
    return report(samples, data["machine"], args, stacks, endpoints)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--stacks", help="comma-separated names, or 'all' (default: the default ones)"
    )
    parser.add_argument(
        "--endpoints",
        default=",".join(DEFAULT_ENDPOINTS),
        help=f"comma-separated, of {', '.join(ALL_ENDPOINTS)} (default: %(default)s)",
    )
    parser.add_argument("-d", "--duration", type=float, default=10, help="seconds per run")
    parser.add_argument("-w", "--warmup", type=float, default=2, help="seconds of warm-up")
    parser.add_argument("-r", "--repeats", type=int, default=3)
    parser.add_argument(
        "-c", "--connections", type=int, help="for every endpoint (default: per endpoint)"
    )
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=5, help="wrk's request timeout (s)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    parser.add_argument("--json", type=Path, help="write every sample to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="print wrk's output")
    parser.add_argument("--list", action="store_true", help="list the stacks and exit")
    parser.add_argument(
        "--report", type=Path, metavar="JSON", help="print the report of a --json file, run nothing"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for stack in STACKS.values():
            default = "" if stack.default else "  (not run by default)"
            print(f"{stack.name:26} {stack.server}: {', '.join(stack.endpoints)}{default}")
        return 0
    if args.report:
        print(rerender(args))
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    if args.stacks == "all":
        stacks = list(STACKS)
    elif args.stacks:
        stacks = [name.strip() for name in args.stacks.split(",")]
    else:
        stacks = [name for name, stack in STACKS.items() if stack.default]
    endpoints = [name.strip() for name in args.endpoints.split(",")]
    unknown = [s for s in stacks if s not in STACKS] + [e for e in endpoints if e not in ROUTES]
    if unknown:
        print(f"unknown stack or endpoint: {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    stacks = [s for s in stacks if set(STACKS[s].endpoints) & set(endpoints)]
    info = machine()
    samples: list[Sample] = []
    for repeat in range(args.repeats):
        # Rotate the order, so that no stack always runs first or last.
        shift = repeat % len(stacks)
        for name in stacks[shift:] + stacks[:shift]:
            mine = [e for e in endpoints if e in STACKS[name].endpoints]
            samples += run_stack(STACKS[name], mine, args, repeat)
    if hasattr(os, "getloadavg"):
        info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text = report(samples, info, args, stacks, endpoints)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    if args.json:
        settings = {key: getattr(args, key) for key in SETTINGS}
        data = {"machine": info, "settings": settings, "samples": [asdict(s) for s in samples]}
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    return 1 if any(s.failure for s in samples) else 0


if __name__ == "__main__":
    sys.exit(main())
