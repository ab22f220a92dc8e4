"""Blocking sync views: aioflask's ``@in_thread`` against Flask on gunicorn gthread.

``GET /block`` sleeps 50 ms with ``time.sleep`` (a stand-in for a sync database
driver), at 64 connections. aioflask runs it with ``@in_thread`` in the app's
thread pool (``AIOFLASK_THREADS``, 32 by default) and, as ``aioflask-loop-pool``,
with ``AIOFLASK_THREADS = None``: asyncio's default executor,
``min(32, cpu_count + 4)`` threads; gunicorn gthread has 32 threads, a2wsgi
its default 10. The ideal with N threads is N / 0.05 s = 20 N req/s.

    python benchmarks/sync_threads.py [run.py options, e.g. -d 5 -r 1]
"""

from __future__ import annotations

import sys

import run

STACKS = "aioflask,aioflask-loop-pool,flask-gunicorn-gthread,flask-a2wsgi"

if __name__ == "__main__":
    sys.exit(run.main(["--stacks", STACKS, "--endpoints", "block", *sys.argv[1:]]))
