"""A 50 ms PostgreSQL query: psycopg on gunicorn gthread against asyncpg through aioflask.

``GET /db`` runs ``SELECT pg_sleep(0.05)`` through SQLAlchemy, the same sync
view in both apps, at 256 connections: Flask on gunicorn's gthread worker (32
threads, psycopg, a pool of 32) and aioflask on uvicorn (asyncpg, a pool of
256). The ideal is 32 / 0.05 s = 640 req/s for the threads; for aioflask it is
the CPU the worker has for 256 requests in flight. A throwaway PostgreSQL
cluster is started for the run (Debian's ``postgresql`` package; see
``tests/_postgres.py``).

    python benchmarks/databases.py [run.py options, e.g. -d 5 -r 1]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import run

# The test suite's throwaway cluster.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _postgres import PostgresCluster, find_bindir

STACKS = "aioflask,flask-gunicorn-gthread"


def main(argv: list[str]) -> int:
    bindir = find_bindir()
    if bindir is None:
        print("PostgreSQL is not installed: apt-get install postgresql", file=sys.stderr)
        return 2
    cluster = PostgresCluster(bindir).start()
    try:
        os.environ["BENCH_PG_PORT"] = str(cluster.port)
        return run.main(["--stacks", STACKS, "--endpoints", "db", *argv])
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
