"""`papers keywords`: keywords and keyphrases for JSON lines of text.

Input: one JSON object per line, ``{"id", "title", "text"}`` (``abstract`` is accepted
for ``text``). Output: one line per input line, ``{"id", "keywords": [{"keyword",
"weight"}, ...]}`` in order of weight. Document frequencies come from the built index
when there is one, else from the statistics shipped with the package;
``--df-from-input`` takes them from the input collection itself (how keyphrase
collections are evaluated).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

import click

from indexer.errors import InvalidInput
from indexer.jsonlines import json_objects
from service.commands import get_settings

if TYPE_CHECKING:
    from indexer.text.keywords import DocFreqs

log = logging.getLogger(__name__)


def parse_lines(fh: IO[str], name: str) -> Iterator[tuple[object, str, str]]:
    """``(id, title, text)`` per non-blank line; :class:`InvalidInput` names the bad line."""
    for lineno, obj in json_objects(fh, name, expected='a JSON object like {"id", "title", "text"}'):
        title = obj.get("title") or ""
        text = obj.get("text", obj.get("abstract")) or ""
        if not isinstance(title, str) or not isinstance(text, str):
            raise InvalidInput(f"{name}:{lineno}: 'title' and 'text' must be strings")
        yield obj.get("id", lineno), title, text


def index_doc_freqs() -> DocFreqs:
    """The index's statistics when an index is built, else the shipped ones."""
    from indexer.text.keywords import DocFreqs

    settings = get_settings()
    from indexer.paths import bm25_path

    path = bm25_path(settings)
    if path.is_dir():
        try:
            from indexer.lexical.bm25 import BM25Index

            return DocFreqs.from_index(BM25Index.open(path, readonly=True))
        except Exception as e:  # an unreadable index must not stop keyword extraction
            log.warning("keywords: cannot open the index at %s (%s); using shipped statistics", path, e)
    return DocFreqs.shipped()


@click.command("keywords")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--k", "k", type=click.IntRange(1, 1000), default=10, show_default=True, help="Keywords per document")
@click.option("--df-from-input", is_flag=True, help="Document frequencies from the input collection itself")
@click.option("--json", "as_json", is_flag=True, help="JSON lines output (the default is tab-separated text)")
def keywords_cmd(file: IO[str], k: int, df_from_input: bool, as_json: bool) -> None:
    """Top-k keywords of each JSON line {id, title, text} of FILE (or stdin)."""
    from indexer.text.keywords import DocFreqs, KeywordExtractor

    name = getattr(file, "name", "-")
    name = "stdin" if name in ("-", "<stdin>") else name
    rows: Iterator[tuple[object, str, str]] | list[tuple[object, str, str]] = parse_lines(file, name)
    if df_from_input:
        rows = list(rows)
        freqs = DocFreqs.from_texts(f"{title}\n{text}" for _, title, text in rows)
    else:
        freqs = index_doc_freqs()
    extractor = KeywordExtractor(freqs)
    out = sys.stdout
    for doc_id, title, text in rows:
        kws = extractor.extract(text, k=k, title=title)
        if as_json:
            out.write(json.dumps({"id": doc_id, "keywords": [kw.to_dict() for kw in kws]}, ensure_ascii=False) + "\n")
        else:
            out.write(f"{doc_id}\t" + "; ".join(f"{kw.keyword} ({kw.weight:.2f})" for kw in kws) + "\n")


COMMANDS: list[click.Command] = [keywords_cmd]
