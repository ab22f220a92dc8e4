"""Files sent with ``send_file`` and as static files (tests/test_files.py,
tests/test_granian.py): the files of ``$FILES_DIR``, and ``/reads``, how many
bytes of them the app itself read (the server may send them from their path).
"""

from __future__ import annotations

import io
import os
from typing import Any

from aioflask import Flask, Response, send_from_directory

FILES_DIR = os.environ["FILES_DIR"]
app = Flask(__name__, static_folder=FILES_DIR, static_url_path="/static")
read_bytes = 0


@app.after_request
def count_reads(response: Response) -> Response:
    body = response.response
    body = getattr(body, "iterable", body)  # a range of the file (Werkzeug's _RangeWrapper)
    file = getattr(body, "file", None)
    if type(file) is io.BufferedReader:
        read = file.read

        def counting(size: int | None = -1) -> bytes:
            global read_bytes
            data = read(size)
            read_bytes += len(data)
            return data

        file.read = counting  # type: ignore[method-assign]
    return response


@app.get("/")
def index() -> str:
    return "files"


@app.get("/file/<name>")
def file(name: str) -> Any:
    return send_from_directory(FILES_DIR, name)


@app.get("/reads")
def reads() -> dict[str, Any]:
    return {"bytes": read_bytes, "pid": os.getpid()}
