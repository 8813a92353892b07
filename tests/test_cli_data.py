"""`papers migrate | ingest jsonl|kaggle|ids|oai | stats` as a user runs them: real
subprocesses on tmp data dirs, the arXiv stand-in (tests/arxiv_standin.py, replaying
recorded responses on 127.0.0.1) for the network commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, SAMPLE

COMMANDS = [
    ("migrate",), ("ingest",), ("ingest", "jsonl"), ("ingest", "kaggle"), ("ingest", "ids"), ("ingest", "oai"), ("stats",),
]


def papers(data_dir, *args: str, extra_env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERS_")}
    env.update({"PAPERS_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO), "PAPERS_LOG_LEVEL": "WARNING",
                "PAPERS_ARXIV_DELAY": "0"})
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], env=env, cwd=data_dir.parent, capture_output=True, text=True,
        timeout=timeout,
    )


@pytest.fixture()
def cli_run(monkeypatch):
    """Run `papers ARGS` in-process (CliRunner) with PAPERS_* env for this test only."""
    from click.testing import CliRunner

    from indexer.settings import get_settings
    from service.cli import cli

    def run(data_dir, *args: str, extra_env: dict | None = None):
        for k in [k for k in os.environ if k.startswith("PAPERS_")]:
            monkeypatch.delenv(k)
        env = {"PAPERS_DATA_DIR": str(data_dir), "PAPERS_ARXIV_DELAY": "0", "PAPERS_LOG_LEVEL": "WARNING", **(extra_env or {})}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.chdir(data_dir.parent)
        get_settings.cache_clear()
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    yield run
    get_settings.cache_clear()


def test_every_data_command_explains_itself(tmp_path):
    from click.testing import CliRunner

    from service.cli import cli

    runner = CliRunner()
    top = runner.invoke(cli, ["--help"]).output
    for name in ("migrate", "ingest", "stats"):
        assert name in top
    for path in COMMANDS:
        res = runner.invoke(cli, [*path, "--help"])
        assert res.exit_code == 0 and "Usage: " in res.output
        doc = res.output.split("\n\n", 2)[1].strip()
        assert len(doc) > 30, f"{' '.join(path)} --help says too little: {doc!r}"


def test_ingest_jsonl_then_stats(tmp_path, cli_run):
    d = tmp_path / "data"
    res = cli_run(d, "ingest", "jsonl", str(SAMPLE))
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1 and "8000 inserted, 0 updated, 0 unchanged, 0 skipped" in lines[0]
    again = cli_run(d, "ingest", "jsonl", str(SAMPLE), "--json")
    report = json.loads(again.stdout)
    assert report["unchanged"] == 8000 and report["inserted"] == 0 and report["status"] == "ok"
    stats = cli_run(d, "stats", "--json")
    assert stats.exit_code == 0, stats.output
    data = json.loads(stats.stdout)
    assert data["papers"] == 8000 and data["withdrawn"] == 0 and data["categories"] > 50
    assert data["published_max"] >= data["published_min"]
    assert data["last_ingest_run"]["kind"] == "jsonl" and data["last_ingest_run"]["unchanged"] == 8000
    human = cli_run(d, "stats")
    assert "papers: 8000" in human.stdout


def test_stats_on_a_fresh_data_dir(tmp_path, cli_run):
    (tmp_path / "fresh").mkdir()
    res = cli_run(tmp_path / "fresh", "stats", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["papers"] == 0


def test_bad_input_is_an_error_line_not_a_traceback(tmp_path, cli_run):
    d = tmp_path / "data"
    missing = papers(d, "ingest", "jsonl", str(tmp_path / "missing.jsonl"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and "Traceback" not in missing.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "2401.00001"\nnot json\n')
    d.mkdir(exist_ok=True)
    res = cli_run(d, "ingest", "jsonl", str(bad))
    assert res.exit_code == 0 and "2 skipped" in res.stdout
    assert "line 1" in res.stderr and "line 2" in res.stderr
    date_err = cli_run(d, "ingest", "oai", "--from", "yesterday")
    assert date_err.exit_code == 2 and "Invalid value for '--from'" in date_err.output


def test_ingest_kaggle(tmp_path, arxiv_fixtures, cli_run):
    (tmp_path / "data").mkdir()
    res = cli_run(tmp_path / "data", "ingest", "kaggle", str(arxiv_fixtures / "kaggle_sample.jsonl"))
    assert res.exit_code == 0, res.output
    assert "200 inserted" in res.stdout


@pytest.fixture()
def standin():
    from tests.arxiv_standin import ArxivStandin

    with ArxivStandin() as s:
        yield s


def test_ingest_ids_and_oai_against_the_standin(tmp_path, standin, cli_run):
    d = tmp_path / "data"
    d.mkdir()
    env = standin.env()
    ids = cli_run(d, "ingest", "ids", "1605.08386", "abc", extra_env=env)
    assert ids.exit_code == 0, ids.output
    assert "1 inserted" in ids.stdout and "1 skipped" in ids.stdout and "abc" in ids.stderr
    more = cli_run(d, "ingest", "ids", "https://arxiv.org/abs/1707.08567v1", extra_env=env)
    assert more.exit_code == 0 and "1 inserted, 0 updated, 0 unchanged, 0 skipped" in more.stdout
    oai = cli_run(d, "ingest", "oai", "--set", "", "--from", "2014-10-01", "--until", "2015-01-05", "--json", extra_env=env)
    assert oai.exit_code == 0, oai.output
    report = json.loads(oai.stdout)
    assert report["complete"] and report["pages"] == 2 and report["inserted"] == 8
    stats = json.loads(cli_run(d, "stats", "--json").stdout)
    assert stats["papers"] == 10 and stats["last_ingest_run"]["kind"] == "oai"


def test_upstream_failure_exit_code(tmp_path):
    from tests.arxiv_standin import ArxivStandin

    with ArxivStandin(unavailable=10) as s:
        res = papers(tmp_path / "data", "ingest", "oai", "--from", "2015-01-01", extra_env={**s.env(), "PAPERS_ARXIV_RETRIES": "0"})
    assert res.returncode == 5 and res.stderr.strip().splitlines()[-1].startswith("error: ")
