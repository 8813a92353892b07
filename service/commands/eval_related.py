"""`papers eval related DIR`: related papers judged by citations (nDCG@10 / recall@10 / MRR@10).

A thin layer over :func:`indexer.evaluation.related.evaluate_related`, which ingests the
collection into a throw-away data directory, builds it, and asks the engine for each query
paper's related papers and for the related work of its pasted title + abstract.
"""

from __future__ import annotations

import json
import sys

import click

from indexer.errors import InvalidInput
from service.commands import get_settings


@click.command("related")
@click.argument("directory", type=click.Path(file_okay=False, dir_okay=True))
@click.option("--embeddings/--no-embeddings", default=True, show_default=True,
              help="Build the embedding index too (the service's configuration; slow on a CPU: about 15 minutes "
                   "for 30k papers) or rank with the lexical index alone")
@click.option("--device", default=None, help="Embedding device (cpu, cuda; default: PAPERS_EMBEDDING_DEVICE)")
@click.option("--run", "run_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the related-papers ranking as a TREC run file (top 10 per query)")
@click.option("--similar-run", "similar_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the similar-text ranking (title + abstract pasted) as a TREC run file")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object")
def eval_related_cmd(directory: str, embeddings: bool, device: str | None, run_path: str | None,
                     similar_path: str | None, as_json: bool) -> None:
    """Related papers (by id and by pasted text) on a citation-judged collection."""
    from indexer.evaluation.related import evaluate_related
    from indexer.evaluation.retrieval import write_trec_run

    settings = get_settings()
    metrics, related, similar = evaluate_related(directory, embeddings=embeddings,
                                                 progress=not as_json and sys.stderr.isatty(),
                                                 device=device or settings.embedding_device)
    for path, runs, tag in ((run_path, related, "papers-related"), (similar_path, similar, "papers-similar")):
        if path:
            try:
                write_trec_run(runs, path, tag=tag, depth=10)
            except OSError as e:
                raise InvalidInput(f"cannot write run file {path}: {e.strerror or e}") from e
    if as_json:
        click.echo(json.dumps(metrics, ensure_ascii=False))
        return
    click.echo(f"{metrics['dataset']} · {metrics['queries']} query papers · {metrics['docs']} docs"
               f" · dense: {', '.join(metrics['dense_models']) or 'none'}")
    for part in ("related", "similar"):
        m = metrics[part]
        click.echo(f"  {part:<8} nDCG@10 {m['ndcg@10']:.4f}  recall@10 {m['recall@10']:.4f}  MRR@10 {m['mrr@10']:.4f}")
    click.echo(f"  took {metrics['seconds']:.1f}s")


COMMANDS: list[click.Command] = [eval_related_cmd]
