"""`papers eval keyphrases DIR`: exact-match P/R/F1 of our keyword extractor.

DIR holds ``docs.jsonl`` (``id``, ``title``, ``text``, ``keyphrases``, ``lang``). The
rule is in :mod:`indexer.evaluation.keyphrases`; ``--method`` scores the baselines
(the ``yake`` package, ``jieba.analyse``) with the same code so figures are comparable.
"""

from __future__ import annotations

import json

import click

from indexer.errors import InvalidInput


@click.command("keyphrases")
@click.argument("directory", type=click.Path(file_okay=True, dir_okay=True))
@click.option(
    "--df",
    type=click.Choice(["input", "shipped"]),
    default="input",
    show_default=True,
    help="Document frequencies from the collection itself or the shipped arXiv statistics",
)
@click.option("--split", default=None, help="Only documents whose 'split' field has this value (e.g. test)")
@click.option(
    "--method",
    type=click.Choice(["ours", "yake", "jieba"]),
    default="ours",
    show_default=True,
    help="Extractor to score (yake/jieba are the baselines)",
)
@click.option(
    "--pad-words",
    type=click.IntRange(0, 1_000_000),
    default=0,
    help="Long-document check: follow each text with this many words of the most similar other texts",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object")
def eval_keyphrases_cmd(
    directory: str, df: str, split: str | None, method: str, pad_words: int, as_json: bool
) -> None:
    """Keyphrase F1@5/F1@10/P@10/R@10 on a collection in keyphrase layout."""
    from indexer.evaluation.keyphrases import (
        evaluate_collection,
        evaluate_extractor,
        jieba_baseline,
        load_keyphrase_docs,
        pad_documents,
        yake_baseline,
    )

    if method == "ours":
        result = evaluate_collection(directory, df=df, split=split, pad_words=pad_words)
    else:
        docs = load_keyphrase_docs(directory, split)
        if pad_words:
            docs = pad_documents(docs, pad_words)
        try:
            extract = yake_baseline() if method == "yake" else jieba_baseline()
        except ImportError as e:
            raise InvalidInput(f"baseline '{method}' is not installed ({e.name})") from None
        result = evaluate_extractor(docs, extract)
    result["method"] = method
    if pad_words:
        result["pad_words"] = pad_words
    if method == "ours":
        result["df"] = df
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    else:
        for key in ("f1@5", "f1@10", "precision@10", "recall@10", "docs"):
            click.echo(f"{key:>13}  {result[key]}")


COMMANDS: list[click.Command] = [eval_keyphrases_cmd]
