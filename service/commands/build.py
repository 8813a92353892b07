"""`papers build`, `papers nightly`, `papers backfill kaggle`: the index-writing commands.

Thin wrappers: the work is in :mod:`indexer.pipeline.build` and :mod:`indexer.pipeline.nightly`. Each
prints one summary line on stdout (cron mails or logs it); progress and structured
``event=...`` log lines go to stderr. Exit codes: 0 done (also when there was nothing
new), 75 another run holds the lock, 5 arXiv failed after retries, 6 storage problem
(see docs/operations.md).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from service.commands import get_settings


def _echo_report(report, as_json: bool) -> None:
    if as_json:
        data = report.as_dict() if hasattr(report, "as_dict") else dict(vars(report))
        click.echo(json.dumps(data, default=str, sort_keys=True))
    else:
        click.echo(report.summary())


@click.command("build")
@click.option("--no-embeddings", is_flag=True, help="Skip embedding new/changed papers (the slow part).")
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default=None,
    help="Device for embedding (default: PAPERS_EMBEDDING_DEVICE).",
)
@click.option("--full", is_flag=True, help="Reprocess every paper, not only those changed since the last build, "
              "and rebuild the vector graphs (vectors of unchanged papers are kept).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def build_cmd(no_embeddings: bool, device: str | None, full: bool, as_json: bool) -> None:
    """Index what changed in the database and publish a new index version.

    Incremental: only papers added or changed since the last published version are
    indexed, embedded and given keywords. Takes the index lock (exit 75 if another
    build or nightly holds it).
    """
    from indexer.pipeline.build import build
    from indexer.storage_errors import storage_errors

    settings = get_settings()
    with storage_errors("build"):
        report = build(settings, embeddings=not no_embeddings, progress=True, device=device, full=full)
    _echo_report(report, as_json)


@click.command("nightly")
@click.option("--dry-run", is_flag=True, help="Print the harvest window and backlog; write nothing.")
@click.option(
    "--from",
    "from_date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Harvest from this date (YYYY-MM-DD) instead of the last harvest minus one day. "
    "Without it, a first run harvests from yesterday.",
)
@click.option("--no-embeddings", is_flag=True, help="Skip embedding new/changed papers.")
@click.option("--set", "set_spec", default=None, help="OAI-PMH set (default: PAPERS_OAI_SET, e.g. cs).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def nightly_cmd(
    dry_run: bool, from_date: datetime | None, no_embeddings: bool, set_spec: str | None, as_json: bool
) -> None:
    """Harvest new and changed papers from arXiv, index them and publish (for cron).

    Exit 0 when done or when there was nothing new; 75 when another run holds the lock.
    Safe to kill: the next run finishes the work.
    """
    from indexer.pipeline.nightly import nightly

    settings = get_settings()
    report = nightly(
        settings,
        from_date=from_date.date() if from_date else None,
        dry_run=dry_run,
        embeddings=not no_embeddings,
        set_spec=set_spec,
    )
    _echo_report(report, as_json)


@click.group("backfill")
def backfill_group() -> None:
    """Load a bulk source, then build (first install, or after a long outage)."""


@backfill_group.command("kaggle")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-embeddings", is_flag=True, help="Skip embedding (run `papers build` later).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def backfill_kaggle_cmd(file: Path, no_embeddings: bool, as_json: bool) -> None:
    """Ingest the Kaggle arxiv-metadata-oai-snapshot.json FILE, then build the index.

    Holds the index lock for the whole run, so a nightly started meanwhile exits 75.
    """
    from indexer.pipeline.nightly import backfill_kaggle

    settings = get_settings()
    report = backfill_kaggle(settings, file, embeddings=not no_embeddings, progress=True)
    _echo_report(report, as_json)


COMMANDS: list[click.Command] = [build_cmd, nightly_cmd, backfill_group]
