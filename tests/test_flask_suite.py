"""The runner of Flask's own test suite against aioflask (tests/flask_suite/run.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

RUN = Path(__file__).parent / "flask_suite" / "run.py"


def test_without_the_sdist_offline_it_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("flask_suite_run", RUN)
    assert spec is not None and spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    monkeypatch.setattr(run, "WORK", tmp_path / ".flask-suite")
    # pip finds nothing: no index, no local wheels.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(SystemExit) as info:
        run.sdist()
    message = str(info.value.code)
    assert "Could not download Flask 3.1.3's sdist" in message
    assert "flask-3.1.3.tar.gz" in message
