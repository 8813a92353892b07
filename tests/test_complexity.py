"""No function in indexer/ or service/ above cyclomatic complexity 20 (radon), except those
listed in :data:`ALLOWED` with the reason.

Why 20: issue #16 measured the functions a newcomer loses the thread in (``search`` 41,
``recommend`` 37, ``_load_version`` 43, ``_build_into`` 38); below 20 a function still fits
in one reading. A parser may stay above it when its branches are one per token or field
kind, read top to bottom: splitting it would scatter one grammar over several functions.

The list only shrinks: an entry whose function is gone or back under the limit fails
:func:`test_allowed_entries_are_still_needed` until it is deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from radon.complexity import cc_visit

REPO = Path(__file__).resolve().parents[1]
LIMIT = 20
DIRS = ("indexer", "service")

#: "path::qualified name" -> why it may stay above LIMIT
ALLOWED: dict[str, str] = {
    # parsers: one branch per token or field kind, read top to bottom
    "indexer/lexical/query.py::_lex": "parser: the search-box lexer, one branch per token kind (phrases, fields, signs, brackets)",
    "indexer/lexical/query.py::parse_query": "parser: the search-box grammar (fields, filters, boolean groups), each clause checked with its message",
    "indexer/ingest/arxiv_api.py::parse_entry": "parser: one Atom <entry>, one check per field with its own InvalidRecord message",
    "indexer/ingest/kaggle.py::_authors": "parser: the snapshot's three author shapes (parsed triples, strings, lists), inlined on ingest's hot path",
}


def complexities() -> Iterator[tuple[str, int]]:
    """("path::qualified name", cyclomatic complexity) of every function and method (closures too)."""
    def walk(blocks):
        for b in blocks:
            yield b
            yield from walk(getattr(b, "methods", None) or [])
            yield from walk(getattr(b, "closures", None) or [])

    seen = set()
    for d in DIRS:
        for path in sorted((REPO / d).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            for block in walk(cc_visit(path.read_text(encoding="utf-8"))):
                if hasattr(block, "methods"):  # a class: its methods are measured one by one
                    continue
                key = (f"{rel}::{block.fullname}", block.lineno)
                if key not in seen:
                    seen.add(key)
                    yield key[0], block.complexity


def test_no_function_above_the_complexity_limit_unless_allowed():
    over = {name: cc for name, cc in complexities() if cc > LIMIT}
    bad = [f"{name}: complexity {cc}" for name, cc in sorted(over.items()) if name not in ALLOWED]
    assert not bad, (f"functions above cyclomatic complexity {LIMIT} (split them, or list a parser in "
                     f"tests/test_complexity.py ALLOWED with the reason):\n" + "\n".join(bad))


def test_allowed_entries_are_still_needed():
    over = {name for name, cc in complexities() if cc > LIMIT}
    stale = sorted(set(ALLOWED) - over)
    assert not stale, f"these are gone or at most {LIMIT} now: delete them from ALLOWED: {stale}"


def test_the_measure_counts_branches():
    """The gate is only as good as radon's count: 21 ifs make 22, a plain function 1."""
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(21))
    (block,) = cc_visit(f"def f(x):\n{branches}    return -1\n")
    assert block.complexity == 22
    (plain,) = cc_visit("def g():\n    return 1\n")
    assert plain.complexity == 1
