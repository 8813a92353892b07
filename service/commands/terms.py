"""`papers terms`: the learned Chinese → English term table behind Chinese queries.

``papers terms learn`` rebuilds it from (Chinese summary, English paper) pairs — rerun it
when the corpus of summaries grows; ``papers terms translate`` shows what a query's Chinese
parts are searched as. The learning itself is :mod:`indexer.text.zh_en_learn`; lookups
:mod:`indexer.text.zh_en`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from indexer.errors import InvalidInput, StorageError


@click.group("terms")
def terms_group() -> None:
    """The learned Chinese → English term table (Chinese queries over English papers)."""


@terms_group.command("learn")
@click.option("--pairs", "pairs_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help='JSON lines {"id", "zh"}: a Chinese summary per paper (.gz ok), e.g. ../shared/data/arxiv/zh_tldr.jsonl.gz')
@click.option("--papers", "papers_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help='JSON lines {"id", "title", "abstract"} of those papers (.gz ok), e.g. ../shared/data/arxiv/papers.jsonl.gz')
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Where to write the table (default: the shipped indexer/data/zh-en-terms.json.gz)")
@click.option("--min-df", type=click.IntRange(1), default=None, help="Pairs a term must occur in (default 5)")
def learn_cmd(pairs_path: str, papers_path: str, out_path: str | None, min_df: int | None) -> None:
    """Learn the table from summary/paper pairs (Dice association of co-occurring terms)."""
    from indexer.text import zh_en, zh_en_learn

    out = Path(out_path) if out_path else zh_en.TABLE_PATH
    kw = {"min_df": min_df} if min_df else {}
    table = zh_en_learn.learn_table(zh_en_learn.read_pairs(Path(pairs_path), Path(papers_path)), **kw)
    try:
        zh_en_learn.write_table(table, out)
    except OSError as e:
        raise StorageError(f"cannot write {out}: {e.strerror or e}") from e
    click.echo(f"{len(table['terms']):,} Chinese terms learned from {table['pairs']:,} pairs → {out}")


@terms_group.command("translate")
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object")
def translate_cmd(query: str, as_json: bool) -> None:
    """Show the English terms a query's Chinese parts are searched with."""
    from indexer.text import zh_en

    if not query.strip():
        raise InvalidInput("empty query")
    tr = zh_en.translate(query)
    if as_json:
        click.echo(json.dumps({"query": query, "coverage": round(tr.coverage, 3), "weights": tr.weights,
                               "matched": [{"zh": zh, "en": en} for zh, en in tr.matched]}, ensure_ascii=False))
        return
    if not tr:
        click.echo("no Chinese term of this query is in the table")
        return
    click.echo(tr.shown)


COMMANDS: list[click.Command] = [terms_group]
