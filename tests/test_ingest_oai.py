"""OAI-PMH harvesting replayed from REAL recorded arXiv responses
(tests/fixtures/arxiv/oai_pmh) through httpx.MockTransport: resumption tokens, the
recorded 503 + Retry-After, timeouts, truncated bodies, OAI errors, deleted records,
politeness delay (injected sleep, never waits) and resuming after an interrupted run."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from indexer.errors import InvalidInput, UpstreamError
from indexer.ingest.oai import harvest_oai, load_state, parse_page
from indexer.ingest.store import open_database
from indexer.models import IngestRun, Paper
from tests.conftest import make_settings

OAI_URL = "http://oai.test/oai"
PAGE1 = "mikesaelim_ListRecordsResponse.xml"  # arXivRaw, 6 records + token 726959|1001
PAGE2 = "paperhive_ListRecords_arXiv_2015-01-01_2015-01-03.xml"  # arXiv, 2 records, no token
TOKEN = "726959|1001"
PAGE1_IDS = {"0704.0471", "0704.0716", "0704.0874", "0704.1109", "0704.1114", "0704.1586"}
PAGE2_IDS = {"1412.8544", "hep-th/9504118"}


@pytest.fixture(scope="module")
def oai_dir(arxiv_fixtures) -> Path:
    return arxiv_fixtures / "oai_pmh"


class Replay:
    """A scripted arXiv: answers from recorded files, logs every request's params."""

    def __init__(self, oai_dir: Path, script: dict[str, list] | None = None):
        self.dir = oai_dir
        self.requests: list[dict[str, str]] = []
        # per request kind ("first" / "token"), a queue of overrides tried before the recording
        self.script = script or {}

    def body(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()

    def recorded_503(self) -> httpx.Response:
        rec = json.loads((self.dir / "paperhive_ListRecords_503_RetryAfter.json").read_text())
        headers = {k: v for k, v in rec["headers"].items() if k.lower() in ("retry-after", "content-type")}
        return httpx.Response(rec["status"], headers=headers, content=rec["body"].encode())

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        self.requests.append(params)
        kind = "token" if "resumptionToken" in params else "first"
        queue = self.script.get(kind) or []
        if queue:
            action = queue.pop(0)
            if action == "503":
                return self.recorded_503()
            if action == "timeout":
                raise httpx.ReadTimeout("timed out", request=request)
            if isinstance(action, bytes):
                return httpx.Response(200, content=action, headers={"content-type": "text/xml"})
            if isinstance(action, str):
                return httpx.Response(200, content=self.body(action), headers={"content-type": "text/xml"})
        if kind == "token":
            if params["resumptionToken"] != TOKEN:
                return httpx.Response(200, content=self.body("mikesaelim_ErrorResponseBadResumptionToken.xml"))
            return httpx.Response(200, content=self.body(PAGE2), headers={"content-type": "text/xml"})
        return httpx.Response(200, content=self.body(PAGE1), headers={"content-type": "text/xml"})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def ids(settings) -> dict[str, dict]:
    with open_database(settings).connect() as conn:
        return {r.id: r._asdict() for r in conn.execute(select(*Paper.__table__.columns))}


def harvest(settings, replay, sleeps=None, **kw):
    return harvest_oai(
        settings, open_database(settings), kw.pop("set_spec", "physics"), kw.pop("from_date", date(2014, 10, 1)),
        kw.pop("until_date", date(2015, 1, 5)), client=replay.client(), sleep=sleeps if sleeps is not None else Sleeps(),
        **kw,
    )


def test_follows_token_and_stores_both_formats(tmp_path, oai_dir):
    settings = make_settings(tmp_path, arxiv_delay=3.0)
    replay, sleeps = Replay(oai_dir), Sleeps()
    report = harvest(settings, replay, sleeps)
    assert report.complete and report.pages == 2 and report.records == 8
    assert (report.inserted, report.skipped) == (8, 0)
    assert replay.requests[0] == {
        "verb": "ListRecords", "metadataPrefix": "arXiv", "from": "2014-10-01", "until": "2015-01-05", "set": "physics",
    }
    assert replay.requests[1] == {"verb": "ListRecords", "resumptionToken": TOKEN}  # the token goes alone
    assert sleeps and min(sleeps) > 2.9  # politeness: the second request waited ~3 s (injected sleep)
    rows = ids(settings)
    assert set(rows) == PAGE1_IDS | PAGE2_IDS
    raw = rows["0704.0716"]  # arXivRaw: 4 <version>s
    assert raw["versions"] == 4 and raw["published"] == date(2007, 4, 5) and raw["updated"] == date(2008, 11, 14)
    assert raw["categories"] == ["math-ph", "math.MP"] and raw["datestamp"] == date(2014, 12, 22)
    assert rows["0704.0471"]["authors"] == ["D.V. Shetty", "S.J. Yennello", "G.A. Souliotis"]
    arx = rows["1412.8544"]  # arXiv format: structured authors, licence, doi
    assert arx["authors"] == ["Sander Uijlen", "Bas Westerbaan"] and arx["categories"] == ["cs.DM"]
    assert arx["doi"] == "10.4204/EPTCS.172.11" and arx["license"].startswith("http://arxiv.org/licenses/")
    assert arx["published"] == date(2014, 12, 29) and "\n" not in arx["abstract"]
    state = load_state(open_database(settings), "oai:physics")
    assert state["resumption_token"] is None and state["last_datestamp"] == date(2015, 1, 5)
    with open_database(settings).connect() as conn:
        run = conn.execute(select(IngestRun).where(IngestRun.id == report.run_id)).mappings().one()
    assert run["kind"] == "oai" and run["status"] == "ok" and run["inserted"] == 8
    again = harvest(settings, Replay(oai_dir))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 8)


def test_503_retry_after_is_honoured(tmp_path, oai_dir):
    settings = make_settings(tmp_path, arxiv_delay=0.0, arxiv_retries=3)
    replay, sleeps = Replay(oai_dir, {"first": ["503"]}), Sleeps()
    report = harvest(settings, replay, sleeps)
    assert report.complete and report.inserted == 8 and report.retries == 1
    assert 10.0 in sleeps  # the recorded Retry-After: 10
    assert len(replay.requests) == 3 and replay.requests[0] == replay.requests[1]


def test_timeout_and_truncated_body_are_retried(tmp_path, oai_dir):
    settings = make_settings(tmp_path, arxiv_delay=0.0, arxiv_retries=3)
    truncated = (oai_dir / PAGE2).read_bytes()[:1500]
    replay = Replay(oai_dir, {"first": ["timeout"], "token": [truncated]})
    sleeps = Sleeps()
    report = harvest(settings, replay, sleeps)
    assert report.complete and report.inserted == 8 and report.retries == 2
    assert len(sleeps) == 2 and all(s >= 1.0 for s in sleeps)  # backoff, never 0


def test_retries_exhausted_is_an_upstream_error_and_resumable(tmp_path, oai_dir):
    settings = make_settings(tmp_path, arxiv_delay=0.0, arxiv_retries=2)
    replay = Replay(oai_dir, {"token": ["503", "503", "503"]})
    with pytest.raises(UpstreamError):
        harvest(settings, replay)
    engine = open_database(settings)
    assert set(ids(settings)) == PAGE1_IDS  # page 1 committed with its token
    state = load_state(engine, "oai:physics")
    assert state["resumption_token"] == TOKEN and state["window_from"] == date(2014, 10, 1)
    with engine.connect() as conn:
        assert conn.execute(select(IngestRun.status)).scalars().all() == ["failed"]
    replay2 = Replay(oai_dir)
    report = harvest(settings, replay2)
    assert report.resumed and report.complete and report.inserted == 2
    assert replay2.requests == [{"verb": "ListRecords", "resumptionToken": TOKEN}]
    assert set(ids(settings)) == PAGE1_IDS | PAGE2_IDS


def test_interrupted_run_resumes_to_the_same_database(tmp_path, oai_dir):
    clean = make_settings(tmp_path / "clean")
    harvest(clean, Replay(oai_dir))
    killed = make_settings(tmp_path / "killed")
    first = harvest(killed, Replay(oai_dir), max_pages=1)  # stops after page 1, like a kill between pages
    assert not first.complete and load_state(open_database(killed), "oai:physics")["resumption_token"] == TOKEN
    second = harvest(killed, Replay(oai_dir))
    assert second.resumed and second.complete
    strip = lambda rows: {k: {f: v for f, v in r.items() if f not in ("seq", "ingested_at")} for k, r in rows.items()}  # noqa: E731
    assert strip(ids(killed)) == strip(ids(clean))
    assert load_state(open_database(killed), "oai:physics")["last_datestamp"] == date(2015, 1, 5)


def test_no_records_match_is_nothing_new(tmp_path, oai_dir):
    settings = make_settings(tmp_path)
    replay = Replay(oai_dir, {"first": ["mikesaelim_ErrorResponseNoRecordsMatch.xml"]})
    report = harvest(settings, replay)
    assert report.nothing_new and report.complete and report.records == 0 and report.status == "ok"
    assert load_state(open_database(settings), "oai:physics")["last_datestamp"] == date(2015, 1, 5)


def test_bad_resumption_token_is_a_clear_error(tmp_path, oai_dir):
    settings = make_settings(tmp_path)
    bad = (oai_dir / "mikesaelim_ErrorResponseBadResumptionToken.xml").read_bytes()
    replay = Replay(oai_dir, {"token": [bad]})
    with pytest.raises(UpstreamError, match="badResumptionToken"):
        harvest(settings, replay)


def test_stale_stored_token_restarts_the_window(tmp_path, oai_dir):
    settings = make_settings(tmp_path)
    harvest(settings, Replay(oai_dir), max_pages=1)
    bad = (oai_dir / "mikesaelim_ErrorResponseBadResumptionToken.xml").read_bytes()
    replay = Replay(oai_dir, {"token": [bad]})  # the stored token expired on the server
    report = harvest(settings, replay)
    assert report.complete and not report.resumed
    assert [("resumptionToken" in r) for r in replay.requests] == [True, False, True]
    assert set(ids(settings)) == PAGE1_IDS | PAGE2_IDS


def test_deleted_record_marks_withdrawn(tmp_path, oai_dir):
    settings = make_settings(tmp_path)
    harvest(settings, Replay(oai_dir))
    page = (oai_dir / PAGE2).read_text()
    # the recorded page with its first record turned into a deletion notice (OAI-PMH form)
    start, end = page.index("<record>"), page.index("</record>") + len("</record>")
    deleted = (
        '<record><header status="deleted"><identifier>oai:arXiv.org:1412.8544</identifier>'
        "<datestamp>2015-02-01</datestamp><setSpec>cs</setSpec></header></record>"
    )
    body = (page[:start] + deleted + page[end:]).encode()
    report = harvest(settings, Replay(oai_dir, {"token": [body]}))
    assert report.withdrawn == 1 and report.updated == 1
    row = ids(settings)["1412.8544"]
    assert row["withdrawn"] is True and row["title"].startswith("A Kochen-Specker system")
    assert row["datestamp"] == date(2015, 2, 1)


def test_bad_records_in_a_page_are_skipped_with_their_id(tmp_path, oai_dir):
    settings = make_settings(tmp_path)
    page = (oai_dir / PAGE1).read_text()
    page = page.replace("<title>Limit distributions and scaling functions</title>", "<title> </title>")
    page = page.replace("<id>0704.0874</id>", "<id>not/an/id</id>")
    report = harvest(settings, Replay(oai_dir, {"first": [page.encode()]}))
    assert report.complete and report.skipped == 2 and report.inserted == 6
    assert any("0704.0716" in e and "title" in e for e in report.errors)
    assert any("not/an/id" in e for e in report.errors)


def test_persistently_malformed_page_is_salvaged(tmp_path, oai_dir):
    settings = make_settings(tmp_path, arxiv_retries=1)
    page = (oai_dir / PAGE1).read_text()
    broken = page.replace("<title>Limit distributions", "<title><b>Limit distributions").encode()
    report = harvest(settings, Replay(oai_dir, {"first": [broken, broken]}))
    assert report.complete and report.inserted == 7 and report.skipped == 1
    assert any("0704.0716" in e for e in report.errors)


def test_truncated_page_without_token_keeps_records_and_fails_clearly(tmp_path, oai_dir):
    settings = make_settings(tmp_path, arxiv_retries=1)
    body = (oai_dir / PAGE1).read_bytes()
    cut = body[: body.index(b"<identifier>oai:arXiv.org:0704.1109")]
    with pytest.raises(UpstreamError, match="malformed"):
        harvest(settings, Replay(oai_dir, {"first": [cut, cut]}))
    assert set(ids(settings)) == {"0704.0471", "0704.0716", "0704.0874"}
    state = load_state(open_database(settings), "oai:physics")
    # no token to resume from (a rerun restarts the window), but the window is recorded as owed
    assert state["resumption_token"] is None and state["window_done"] is False


def test_arxivraw_prefix_and_bad_arguments(tmp_path, oai_dir):
    settings = make_settings(tmp_path)
    replay = Replay(oai_dir)
    harvest(settings, replay, metadata_prefix="arXivRaw")
    assert replay.requests[0]["metadataPrefix"] == "arXivRaw"
    with pytest.raises(InvalidInput):
        harvest(settings, Replay(oai_dir), metadata_prefix="oai_dc")
    with pytest.raises(InvalidInput):
        harvest(settings, Replay(oai_dir), from_date=date(2015, 2, 1), until_date=date(2015, 1, 1))


def test_default_window_starts_one_day_before_last_datestamp(tmp_path, oai_dir):
    settings = make_settings(tmp_path)
    harvest(settings, Replay(oai_dir))
    replay = Replay(oai_dir, {"first": ["mikesaelim_ErrorResponseNoRecordsMatch.xml"]})
    report = harvest(settings, replay, from_date=None, until_date=None)
    assert replay.requests[0]["from"] == "2015-01-04" and "until" not in replay.requests[0]
    assert report.nothing_new


def test_parse_page_recorded_files(oai_dir):
    page = parse_page((oai_dir / PAGE1).read_bytes())
    assert [r.id for r in page.records] == sorted(PAGE1_IDS) and page.token == TOKEN and page.cursor == 0
    assert page.complete_list_size == 58011
    err = parse_page((oai_dir / "mikesaelim_ErrorResponseIdDoesNotExist.xml").read_bytes())
    assert err.error_code == "idDoesNotExist" and not err.records
