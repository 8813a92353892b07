"""JSON lines read by the commands that take them (`papers keywords`, `papers eval
keyphrases`): one object per non-blank line, and one way of saying which line is wrong.

The ingestion sources have their own, faster readers (indexer.ingest.files: a parser
process, bad lines skipped and counted); these inputs are small and a bad line stops
the command with a message that names it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from indexer.errors import InvalidInput


def json_objects(lines: Iterable[str], name: str, expected: str = "a JSON object") -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` per non-blank line of ``lines``; :class:`InvalidInput`
    ``"{name}:{line}: …"`` for a line that is not JSON or not ``expected``."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InvalidInput(f"{name}:{lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise InvalidInput(f"{name}:{lineno}: expected {expected}")
        yield lineno, obj
