"""`papers migrate`, `papers ingest ...`, `papers stats`: the database write path.

Thin wrappers over :mod:`indexer.ingest.store` and :mod:`indexer.ingest`. Each ingest prints
one summary line on stdout (inserted / updated / unchanged / skipped) plus the first
skipped records on stderr; ``--json`` prints the whole report as one JSON object.
Every command brings the schema to head first, so a fresh data directory just works.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import click

from service.commands import get_settings

SHOWN_ERRORS = 10


def _emit(report, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.as_dict(), default=str, sort_keys=True))
        return
    click.echo(report.summary())
    for reason in report.errors[:SHOWN_ERRORS]:
        click.echo(f"  skipped {reason}", err=True)
    if report.skipped > SHOWN_ERRORS:
        click.echo(f"  ... {report.skipped - SHOWN_ERRORS} more skipped (see ingest_runs)", err=True)


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@click.command("migrate")
def migrate_cmd() -> None:
    """Create or upgrade the database schema to the newest version (idempotent)."""
    from indexer.db import engine_for
    from indexer.migrate import current_revision, upgrade

    settings = get_settings()
    engine = engine_for(settings.resolved_database_url)
    before = current_revision(engine)
    after = upgrade(engine)
    if before == after:
        click.echo(f"database already at revision {after}")
    else:
        click.echo(f"database migrated from {before or 'empty'} to {after}")


@click.group("ingest")
def ingest_group() -> None:
    """Load paper metadata into the database (JSONL, Kaggle snapshot, OAI-PMH, arXiv API).

    Every source goes through the same idempotent upsert: re-ingesting the same input
    changes nothing; a newer version updates the paper. Bad records are skipped and
    counted, and each run is recorded in the ingest_runs table. Run `papers build`
    afterwards to index what changed.
    """


_batch_option = click.option(
    "--batch-size", default=2000, show_default=True, type=click.IntRange(1, 100_000),
    help="Records per transaction.",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
_progress_option = click.option(
    "--progress/--no-progress", default=True, help="Progress bar on stderr (only when it is a terminal)."
)


@ingest_group.command("jsonl")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@_batch_option
@_progress_option
@_json_option
def ingest_jsonl_cmd(file: Path, batch_size: int, progress: bool, as_json: bool) -> None:
    """Import FILE in our JSONL format (plain or .gz), one paper per line.

    Keys: id, title, abstract, authors (list), categories (list), published, updated
    (YYYY-MM-DD), as in ../shared/data/arxiv/papers.jsonl.gz.
    """
    from indexer.ingest.jsonl import ingest_jsonl

    _emit(ingest_jsonl(get_settings(), file, progress=progress, batch_size=batch_size), as_json)


@ingest_group.command("kaggle")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@_batch_option
@_progress_option
@_json_option
def ingest_kaggle_cmd(file: Path, batch_size: int, progress: bool, as_json: bool) -> None:
    """Import the Kaggle arXiv snapshot FILE (arxiv-metadata-oai-snapshot.json, plain or .gz).

    Streamed in constant memory with a progress bar (rate and ETA); safe to interrupt
    and re-run.
    """
    from indexer.ingest.kaggle import ingest_kaggle

    _emit(ingest_kaggle(get_settings(), file, progress=progress, batch_size=batch_size), as_json)


@ingest_group.command("ids")
@click.argument("ids", nargs=-1, required=True)
@_json_option
def ingest_ids_cmd(ids: tuple[str, ...], as_json: bool) -> None:
    """Fetch papers by arXiv id from the arXiv API (PAPERS_ARXIV_API_URL) and store them.

    IDS may carry versions or be abs/pdf URLs (2401.01234v2, arXiv:hep-th/9901001,
    https://arxiv.org/abs/2401.01234). Invalid ids and ids arXiv does not know are
    reported as skipped.
    """
    from indexer.ingest.arxiv_api import ingest_ids

    _emit(ingest_ids(get_settings(), list(ids)), as_json)


@ingest_group.command("oai")
@click.option("--set", "set_spec", default=None, help="OAI-PMH set, e.g. cs, math, physics:hep-th "
              "(default: PAPERS_OAI_SET; '' for all sets).")
@click.option("--from", "from_date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="First datestamp (YYYY-MM-DD); default: last harvested datestamp minus one day.")
@click.option("--until", "until_date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Last datestamp (YYYY-MM-DD); default: open-ended.")
@click.option("--format", "metadata_prefix", type=click.Choice(["arXiv", "arXivRaw"]), default="arXiv",
              show_default=True, help="OAI-PMH metadata format.")
@_json_option
def ingest_oai_cmd(
    set_spec: str | None, from_date: datetime | None, until_date: datetime | None, metadata_prefix: str,
    as_json: bool,
) -> None:
    """Harvest records from arXiv's OAI-PMH endpoint (PAPERS_ARXIV_OAI_URL).

    Polite (PAPERS_ARXIV_DELAY seconds between requests, honours Retry-After) and
    resumable: the resumption token is committed with every page, so re-running the
    same command after an interruption continues where it stopped. Deleted records mark
    papers withdrawn.
    """
    from indexer.ingest.oai import harvest_oai
    from indexer.ingest.store import open_database

    settings = get_settings()
    report = harvest_oai(
        settings, open_database(settings), set_spec, _day(from_date), _day(until_date),
        metadata_prefix=metadata_prefix,
    )
    _emit(report, as_json)


@click.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
def stats_cmd(as_json: bool) -> None:
    """Database statistics: papers, withdrawn, categories, newest dates, last ingest run,
    and the last embedding build's progress."""
    from indexer.embed_progress import describe, read_progress
    from indexer.ingest.store import database_stats, open_database

    settings = get_settings()
    stats = database_stats(open_database(settings))
    stats["embedding_build"] = read_progress(settings.index_dir)
    if as_json:
        click.echo(json.dumps(stats, default=str, sort_keys=True))
        return
    for key in ("papers", "withdrawn", "categories", "published_min", "published_max", "max_seq"):
        click.echo(f"{key:>14}: {stats.get(key)}")
    for cat, n in stats["top_categories"][:10]:
        click.echo(f"{'':>14}  {cat:<18} {n}")
    run = stats.get("last_ingest_run")
    if run:
        click.echo(f"{'last run':>14}: #{run['id']} {run['kind']} {run['status']} {run['started_at']} "
                   f"(+{run['inserted']} ~{run['updated']} ={run['unchanged']} !{run['skipped']})")
    build = stats["embedding_build"]
    if build:
        click.echo(f"{'embeddings':>14}: {build['state']}, {describe(build)}")


COMMANDS: list[click.Command] = [migrate_cmd, ingest_group, stats_cmd]
