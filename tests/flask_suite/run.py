"""Run Flask's own test suite, tutorial app and javascript example against aioflask.

Downloads Flask's sdist (``pip download flask==VERSION --no-binary :all:``)
into ``.flask-suite/``, then runs with this interpreter:

- Flask's ``tests/`` with ``flask.Flask`` replaced by ``aioflask.Flask``
  (``plugin.py``), minus the tests listed in ``DESELECTED.txt``;
- ``examples/tutorial`` (flaskr) and ``examples/javascript`` with their
  ``from flask import`` lines changed to ``from aioflask import``, and
  nothing else changed.

Usage: ``python tests/flask_suite/run.py [pytest options]``. Exits non-zero
if any run fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

VERSION = "3.1.3"
HERE = Path(__file__).resolve().parent
WORK = HERE.parent.parent / ".flask-suite"
EXAMPLES = ("tutorial", "javascript")


def sdist() -> Path:
    """Flask's source tree, downloaded and extracted once."""
    tree = WORK / f"flask-{VERSION}"
    if not (tree / "tests").is_dir():
        WORK.mkdir(exist_ok=True)
        archive = WORK / f"flask-{VERSION}.tar.gz"
        if not archive.exists():
            pip = [sys.executable, "-m", "pip", "download", f"flask=={VERSION}"]
            options = ["--no-binary", ":all:", "--no-deps", "--quiet", "--dest", str(WORK)]
            if subprocess.run([*pip, *options]).returncode:
                sys.exit(
                    f"Could not download Flask {VERSION}'s sdist (see pip's error above)."
                    f" Offline, put flask-{VERSION}.tar.gz from PyPI in {WORK}."
                )
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):  # Python 3.10.12+
                tar.extraction_filter = tarfile.data_filter
            tar.extractall(WORK)
    return tree


def deselected() -> list[str]:
    lines = (HERE / "DESELECTED.txt").read_text().splitlines()
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]


def swap_imports(example: Path) -> None:
    """The import swap a user makes: ``from flask import`` -> ``from aioflask import``."""
    for path in example.rglob("*.py"):
        text = path.read_text()
        swapped = re.sub(r"^from flask import", "from aioflask import", text, flags=re.M)
        if swapped != text:
            path.write_text(swapped)


def pytest(cwd: Path, args: list[str], pythonpath: Path) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(pythonpath), str(HERE)])}
    # pytest-asyncio stays off: Flask's tests are sync, as is their config.
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:asyncio"]
    print("==", cwd.name, " ".join(args), flush=True)
    return subprocess.run([*command, *args], cwd=cwd, env=env).returncode


def main(extra: list[str]) -> int:
    tree = sdist()
    failures = 0
    suite = [arg for test in deselected() for arg in ("--deselect", test)]
    failures += bool(pytest(tree, ["-p", "plugin", "-q", *suite, *extra, "tests"], tree))
    for name in EXAMPLES:
        example = WORK / name
        shutil.rmtree(example, ignore_errors=True)
        shutil.copytree(tree / "examples" / name, example)
        swap_imports(example)
        failures += bool(pytest(example, ["-q", *extra, "tests"], example))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
