"""`papers eval retrieval DIR`: nDCG@10 / recall@100 / MRR@10 on a BEIR-layout collection.

A thin layer over :func:`indexer.evaluation.retrieval.evaluate_retrieval`, which builds a
throw-away index in a temporary directory (the main database and index are untouched).
"""

from __future__ import annotations

import json
import sys

import click

from indexer.errors import InvalidInput
from indexer.evaluation.retrieval import MODES, evaluate_retrieval, write_trec_run
from service.commands import get_settings


@click.command("retrieval")
@click.argument("directory", type=click.Path(file_okay=False, dir_okay=True))
@click.option("--mode", type=click.Choice(MODES), default="hybrid", show_default=True,
              help="bm25, dense, hybrid (the product's ranking); baselines: rank-bm25 (plain \\w+ tokens), "
                   "bm25s (stemming + stop words), fts5 (SQLite FTS5 bm25(), OR-ed words)")
@click.option("--model", default=None, help="Main embedding model (default: PAPERS_EMBEDDING_MODEL)")
@click.option("--multilingual-model", default=None,
              help="Model for queries with CJK text (default: PAPERS_MULTILINGUAL_MODEL; '' = none)")
@click.option("--fusion", "fusion_method", type=click.Choice(["hybrid", "rrf", "zscore", "minmax"]), default="hybrid",
              show_default=True, help="hybrid = the engine's ranking; the others are plain fusion variants for comparison")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Reuse corpus embeddings across runs (keyed by content hash)")
@click.option("--device", default=None, help="Embedding device (cpu, cuda; default: PAPERS_EMBEDDING_DEVICE)")
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv")
@click.option("--run", "run_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write the ranking as a TREC run file (top 100 per query)")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object")
def eval_retrieval_cmd(directory: str, mode: str, model: str | None, multilingual_model: str | None,
                       fusion_method: str, cache_dir: str | None, device: str | None, split: str,
                       run_path: str | None, as_json: bool) -> None:
    """Retrieval quality of bm25, dense or hybrid search on a BEIR collection."""
    settings = get_settings()
    result = evaluate_retrieval(
        directory,
        mode,
        model=model or settings.embedding_model,
        multilingual_model=settings.multilingual_model if multilingual_model is None else multilingual_model,
        fusion_method=None if fusion_method == "hybrid" else fusion_method,
        cache_dir=cache_dir,
        device=device or settings.embedding_device,
        progress=not as_json and sys.stderr.isatty(),
        split=split,
        precision=settings.embed_precision,
        threads=settings.embed_threads,
    )
    if run_path:
        try:
            write_trec_run(result.runs, run_path, tag=f"papers-{mode}")
        except OSError as e:
            raise InvalidInput(f"cannot write run file {run_path}: {e.strerror or e}") from e
    m = result.metrics
    if as_json:
        click.echo(json.dumps(m, ensure_ascii=False))
        return
    click.echo(f"{m['dataset']} · {m['mode']} · {m['queries']} queries · {m['docs']} docs")
    for key in ("ndcg@10", "recall@100", "mrr@10"):
        click.echo(f"  {key:<11} {m[key]:.4f}")
    click.echo(f"  took {m['seconds']:.1f}s")


COMMANDS: list[click.Command] = [eval_retrieval_cmd]
