"""`papers nightly` against the arXiv stand-in (real recorded OAI-PMH responses).

Covers: first run with --from, nothing-new rerun (exit 0), the harvest window from
harvest state (minus one day), first run without --from (yesterday), --dry-run writes
nothing, one run at a time (exit 75), 503 + Retry-After, upstream failure recorded,
the run shown by /api/stats, and `papers build` / `backfill kaggle` through the CLI.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from indexer.errors import AlreadyRunning, UpstreamError
from indexer.pipeline.locks import run_lock
from indexer.pipeline.nightly import harvest_window, last_datestamp, nightly
from tests.arxiv_standin import ArxivStandin
from tests.nightly_support import (
    base_settings,
    cli_env,
    db_state,
    fresh_settings,
    max_seq,
    papers_cmd,
    published,
    recorded_oai_ids,
    run_papers,
    runs,
    titles,
)


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:
        return True


needs_store = pytest.mark.skipif(_missing("indexer.ingest.store"), reason="indexer.ingest.store (upsert_papers, issue #3) not there yet")
needs_ingest = pytest.mark.skipif(
    _missing("indexer.ingest.oai") or _missing("indexer.ingest.store"),
    reason="indexer.ingest.oai (harvest_oai) / indexer.ingest.store (upsert_papers) from issue #3 not there yet",
)
OLD = date(2014, 10, 1)  # the recorded pages hold datestamps 2014-11-18 .. 2015-01-03


class Sleeps(list):
    """Injected sleep: records what the harvester asked for, never waits."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture()
def standin():
    with ArxivStandin(filter_records=False) as s:
        yield s


def _settings_for(standin, settings):
    return settings.model_copy(update={"arxiv_oai_url": standin.oai_url, "arxiv_api_url": standin.api_url})


@needs_ingest
def test_first_run_harvests_builds_and_publishes(tmp_path, standin):
    settings = _settings_for(standin, base_settings(tmp_path / "d", n=200))
    before = db_state(settings)
    v_before = published(settings).version

    report = nightly(settings, from_date=OLD, set_spec="cs", sleep=Sleeps())

    after = db_state(settings)
    harvested = recorded_oai_ids()
    assert harvested <= set(after), "a recorded paper was not stored"
    assert set(after) == set(before) | harvested  # nothing lost, nothing extra
    assert report.inserted == len(harvested - set(before))
    assert report.status == "ok" and report.built
    m = published(settings)
    assert m.version == report.version == v_before + 1
    assert m.built_seq == max_seq(settings)
    assert standin.count("ListRecords") == 2  # followed the resumption token
    assert runs(settings)[-1][0] == "ok"

    from indexer.search.engine import SearchEngine

    eng = SearchEngine.open(settings)
    for pid, title in titles(settings, harvested).items():
        assert pid in [h.id for h in eng.search(title, mode="bm25", size=20).hits], f"{pid} not searchable"
    assert "harvested" in report.summary() and f"version {m.version}" in report.summary()


@needs_ingest
def test_rerun_with_nothing_new_exits_zero_and_keeps_version(tmp_path, standin):
    settings = _settings_for(standin, base_settings(tmp_path / "d", n=50))
    nightly(settings, from_date=OLD, set_spec="cs", sleep=Sleeps())
    version = published(settings).version
    state = db_state(settings)

    proc = run_papers(settings, "nightly", "--from", OLD.isoformat(), "--set", "cs", standin=standin)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and "nothing new" in lines[0], proc.stdout
    assert "event=nightly_done" in proc.stderr and "status=nothing_new" in proc.stderr
    assert published(settings).version == version
    assert db_state(settings) == state
    assert [r[0] for r in runs(settings)] == ["ok", "ok"]


@needs_ingest
def test_window_starts_one_day_before_last_datestamp(tmp_path):
    with ArxivStandin(filter_records=True) as standin:
        settings = _settings_for(standin, base_settings(tmp_path / "d", n=20))
        nightly(settings, from_date=OLD, set_spec="cs", sleep=Sleeps())
        from indexer.db import open_database

        last = last_datestamp(open_database(settings), "cs")
        assert last is not None
        start, until = harvest_window(settings, open_database(settings), "cs", None)
        assert start == last - timedelta(days=1)
        assert until == datetime.now(UTC).date()

        # the next run really asks arXiv for that window; the recorded records are all
        # older, so the stand-in answers noRecordsMatch: exit 0, nothing new
        standin.requests.clear()
        proc = run_papers(settings, "nightly", "--set", "cs", standin=standin)
        assert proc.returncode == 0, proc.stderr
        asked = [q for _, q in standin.requests if q.get("verb") == "ListRecords" and "from" in q]
        assert asked and asked[0]["from"] == start.isoformat()
        assert "nothing new" in proc.stdout


@needs_ingest
def test_first_run_without_from_harvests_from_yesterday(tmp_path):
    with ArxivStandin(filter_records=True) as standin:
        settings = _settings_for(standin, fresh_settings(tmp_path / "d"))
        report = nightly(settings, set_spec="cs", sleep=Sleeps())
        today = datetime.now(UTC).date()
        assert (report.from_date, report.until_date) == (today - timedelta(days=1), today)
        asked = [q for _, q in standin.requests if q.get("verb") == "ListRecords"]
        assert asked[0]["from"] == (today - timedelta(days=1)).isoformat()
        assert report.inserted == 0 and report.status in ("ok", "nothing_new")


@needs_ingest
def test_dry_run_writes_nothing(tmp_path, standin):
    settings = _settings_for(standin, fresh_settings(tmp_path / "d"))
    proc = run_papers(settings, "nightly", "--dry-run", "--from", "2024-01-02", "--set", "cs", standin=standin)
    assert proc.returncode == 0, proc.stderr
    assert "dry run" in proc.stdout and "cs 2024-01-02.." in proc.stdout
    assert not settings.data_dir.exists() or not any(settings.data_dir.iterdir())
    assert standin.requests == []

    # on an existing data dir: the window comes from harvest state, nothing changes
    nightly(settings, from_date=OLD, set_spec="cs", sleep=Sleeps())
    state, version = db_state(settings), published(settings).version
    n_runs = len(runs(settings))
    report = nightly(settings, dry_run=True, set_spec="cs")
    assert report.dry_run and report.pending_before == 0
    assert db_state(settings) == state and published(settings).version == version
    assert len(runs(settings)) == n_runs


@needs_ingest
def test_second_run_exits_75_while_first_holds_the_lock(tmp_path):
    """Two real processes: the first blocks mid-harvest, the second exits 75 at once."""
    with ArxivStandin(filter_records=False, hold_token=True) as standin:
        settings = base_settings(tmp_path / "d", n=20)
        first = subprocess.Popen(
            papers_cmd("nightly", "--from", OLD.isoformat(), "--set", "cs", "--no-embeddings"),
            env=cli_env(settings, standin), cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert standin.token_requested.wait(120), "first run never reached page 2"
            t0 = time.monotonic()
            second = run_papers(settings, "nightly", "--set", "cs", standin=standin, timeout=120)
            assert second.returncode == 75, second.stderr
            assert "error: another index run holds" in second.stderr
            assert time.monotonic() - t0 < 120  # bounded: it did not wait for the first
            build = run_papers(settings, "build", "--no-embeddings", timeout=120)
            assert build.returncode == 75, build.stderr
        finally:
            standin.release()
            out, err = first.communicate(timeout=180)
        assert first.returncode == 0, err
        assert recorded_oai_ids() <= set(db_state(settings))


def test_lock_is_exclusive_in_process_and_released(tmp_path):
    settings = fresh_settings(tmp_path / "d")
    with run_lock(settings):
        with pytest.raises(AlreadyRunning) as e:
            nightly(settings, from_date=OLD, set_spec="cs")
        assert e.value.exit_code == 75 and "pid=" in e.value.message
    with run_lock(settings):  # released after the block
        pass


@needs_ingest
def test_503_retry_after_is_honoured(tmp_path):
    with ArxivStandin(filter_records=False, unavailable=1) as standin:
        settings = _settings_for(standin, base_settings(tmp_path / "d", n=20, build_index=False))
        sleeps = Sleeps()
        report = nightly(settings, from_date=OLD, set_spec="cs", sleep=sleeps)
        assert any(s >= 10 for s in sleeps), sleeps  # the recorded Retry-After: 10
        assert recorded_oai_ids() <= set(db_state(settings))
        assert report.built and published(settings).version >= 1


@needs_ingest
def test_upstream_failure_is_recorded_and_index_kept(tmp_path):
    with ArxivStandin(filter_records=False, unavailable=100) as standin:
        settings = _settings_for(standin, base_settings(tmp_path / "d", n=20))
        version, state = published(settings).version, db_state(settings)
        with pytest.raises(UpstreamError):
            nightly(settings, from_date=OLD, set_spec="cs", sleep=Sleeps())
        assert runs(settings)[-1][0] == "failed"
        assert published(settings).version == version and db_state(settings) == state

        proc = run_papers(settings, "nightly", "--from", OLD.isoformat(), "--set", "cs", standin=standin)
        assert proc.returncode == 5, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
        assert "Traceback" not in proc.stderr


@needs_ingest
def test_api_stats_shows_the_nightly_run(tmp_path, standin):
    from fastapi.testclient import TestClient

    from service import app as app_mod

    settings = _settings_for(standin, base_settings(tmp_path / "d", n=30))
    nightly(settings, from_date=OLD, set_spec="cs", sleep=Sleeps())
    with TestClient(app_mod.create_app(settings)) as client:
        stats = client.get("/api/stats").json()
    last = stats["last_nightly"]
    assert last["status"] == "ok" and last["inserted"] == len(recorded_oai_ids())


@needs_store
def test_build_cli_prints_one_summary_line(tmp_path):
    settings = base_settings(tmp_path / "d", n=40, build_index=False)
    proc = run_papers(settings, "build", "--no-embeddings")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 1 and "version 1" in proc.stdout
    assert published(settings).version == 1


@needs_store
def test_backfill_kaggle_ingests_then_builds(tmp_path, arxiv_fixtures):
    settings = fresh_settings(tmp_path / "d")
    snapshot = str(arxiv_fixtures / "kaggle_sample.jsonl")
    proc = run_papers(settings, "backfill", "kaggle", snapshot, "--no-embeddings", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["inserted"] + report["skipped"] == 200 and report["inserted"] >= 190
    assert report["version"] == 1 and published(settings).docs == report["inserted"]
    assert len(db_state(settings)) == report["inserted"]
    again = run_papers(settings, "backfill", "kaggle", snapshot, "--no-embeddings")  # idempotent
    assert again.returncode == 0 and " 0 new" in again.stdout, again.stdout + again.stderr
    assert len(db_state(settings)) == report["inserted"]

    missing = run_papers(settings, "backfill", "kaggle", str(tmp_path / "nope.json"))
    assert missing.returncode != 0 and "Traceback" not in missing.stderr


def test_standin_replays_recorded_oai_pages_and_errors():
    """The stand-in itself: token paging, window/set filtering, 503, OAI errors, API feeds."""
    import httpx

    with ArxivStandin(filter_records=False, unavailable=1) as s:
        r = httpx.get(s.oai_url, params={"verb": "ListRecords", "metadataPrefix": "arXivRaw"})
        assert r.status_code == 503 and r.headers["retry-after"] == "10"
        page1 = httpx.get(s.oai_url, params={"verb": "ListRecords", "metadataPrefix": "arXivRaw"}).text
        assert page1.count("<record>") == 6 and "726959|1001" in page1
        page2 = httpx.get(s.oai_url, params={"verb": "ListRecords", "resumptionToken": "726959|1001"}).text
        assert page2.count("<record>") == 2 and "<resumptionToken" not in page2
        bad = httpx.get(s.oai_url, params={"verb": "ListRecords", "resumptionToken": "nope"}).text
        assert 'code="badResumptionToken"' in bad
        assert 'code="noRecordsMatch"' in httpx.get(s.oai_url, params={"verb": "ListRecords", "set": "moo"}).text
        assert httpx.get(s.api_url, params={"search_query": "", "id_list": "abc", "start": 0, "max_results": 100}).status_code == 400
        assert httpx.get(s.api_url, params={"id_list": "1605.08386"}).text.count("<entry>") == 1
    with ArxivStandin(filter_records=True) as s:
        today = datetime.now(UTC).date().isoformat()
        none = httpx.get(s.oai_url, params={"verb": "ListRecords", "from": today, "set": "cs"}).text
        assert 'code="noRecordsMatch"' in none
        cs = httpx.get(s.oai_url, params={"verb": "ListRecords", "from": "2014-01-01", "set": "cs"}).text
        assert 0 < cs.count("<record>") < 8 and "<setSpec>cs</setSpec>" in cs
