"""The Python examples in the Sphinx docs (docs/*.rst) are valid Python."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs"
_DIRECTIVE = re.compile(r"^(?P<indent> *)\.\. code-block:: python\s*$")


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """``(line number, code)`` of each ``.. code-block:: python`` in a file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    for number, line in enumerate(lines):
        match = _DIRECTIVE.match(line)
        if match is None:
            continue
        indent = len(match["indent"])
        body = []
        for following in lines[number + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        blocks.append((number + 1, textwrap.dedent("\n".join(body)).strip() + "\n"))
    return blocks


PAGES = sorted(DOCS.glob("*.rst"))
BLOCKS = [
    pytest.param(code, id=f"{page.name}:{number}")
    for page in PAGES
    for number, code in python_blocks(page)
]


def test_the_docs_have_examples() -> None:
    assert PAGES and len(BLOCKS) > 10


@pytest.mark.parametrize("code", BLOCKS)
def test_example_compiles(code: str) -> None:
    compile(code, "<docs example>", "exec")
