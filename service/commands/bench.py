"""`papers bench`: the benchmark suite (benchmarks/harness.py) from the command line.

``benchmarks`` is a package of the distribution, installed with a source checkout
(`pip install -e .`), and imported here like any other: no ``sys.path`` editing. Where it
is not installed (the Docker image copies only indexer/ and service/) this command says
so instead of failing obscurely. The import goes one way: benchmarks never import
``service``; what the service bench needs from it (how many workers `papers serve` starts
by itself) is passed in as ``serve_workers``.
"""

from __future__ import annotations

from pathlib import Path

import click

from indexer.errors import InvalidInput
from service.commands import get_settings

CHOICES = ("sample", "10k", "100k", "1m")


def _harness():
    try:
        from benchmarks import harness
    except ModuleNotFoundError as e:
        if e.name not in ("benchmarks", "benchmarks.harness"):
            raise
        raise InvalidInput("benchmarks/ not found: run `papers bench` from a source checkout") from e
    return harness


def serve_workers(data_dir: Path) -> int:
    """What `papers serve` runs without --workers on this machine over ``data_dir``'s index
    (service/sizing.py)."""
    from indexer.settings import Settings
    from service.sizing import default_workers

    return default_workers(Settings(data_dir=Path(data_dir))).workers


@click.command("bench")
@click.option("--corpus", type=click.Choice(CHOICES), default="sample", show_default=True,
              help="sample = bundled 8k; 10k/100k = ../shared real papers; 1m = 100k real + 900k recombined")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where report.md and report.json go [default: <work>/reports/<corpus>]")
@click.option("--work", "work_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Scratch space for corpora, databases and indexes [default: $PAPERS_DATA_DIR/bench]")
@click.option("--quick", is_flag=True, help="Small query and document counts: the whole suite in a minute or two")
@click.option("--only", multiple=True, metavar="NAME", help="Run only these benches (repeatable), e.g. --only tokenizer")
def bench_command(corpus: str, out_dir: Path | None, work_dir: Path | None, quick: bool, only: tuple[str, ...]) -> None:
    """Measure speed and memory; write report.md and report.json.

    Benches: tokenizer, ingest, ingest-files, build, search, rank-bm25, engine, related, keywords,
    embeddings, vectors, service, nightly. Each speed figure sits beside a baseline
    measured in the same run; targets are listed PASS/FAIL at the top of report.md.
    """
    harness = _harness()
    bad = [n for n in only if n not in harness.BENCHES]
    if bad:
        raise click.BadParameter(f"unknown bench {', '.join(bad)}; choose from {', '.join(harness.BENCHES)}", param_hint="--only")
    work = work_dir or (get_settings().data_dir / "bench")
    out = out_dir or (work / "reports" / corpus)
    try:
        report = harness.run_suite(corpus, out, work, quick=quick, only=only, log=lambda s: click.echo(s, err=True),
                                   serve_workers=serve_workers)
    except FileNotFoundError as e:
        raise InvalidInput(str(e)) from e
    for t in report["targets"]:
        res = "n/a " if t["pass"] is None else ("PASS" if t["pass"] else "FAIL")
        click.echo(f"{res}  {t['target']}: {t['value']} {t['unit']} ({t['op']} {t['limit']})")
    click.echo(f"wrote {out / 'report.md'} and {out / 'report.json'}")


COMMANDS: list[click.Command] = [bench_command]
