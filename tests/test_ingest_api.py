"""arXiv API (Atom) by id, replayed from REAL recorded responses
(tests/fixtures/arxiv/api_atom, current and legacy backends) through httpx.MockTransport:
single and multi-id lookups, zero results, the API's error entry, old-style ids, retries
on 503 / timeouts, and `ingest_ids` writing through the one upsert path."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from indexer.errors import InvalidInput, UpstreamError
from indexer.ingest.arxiv_api import fetch_by_ids, ingest_ids, parse_feed
from indexer.ingest.store import open_database
from indexer.models import IngestRun, Paper
from tests.conftest import make_settings

KEYS = ("search_query", "id_list", "start", "max_results")


@pytest.fixture(scope="module")
def atom_dir(arxiv_fixtures) -> Path:
    return arxiv_fixtures / "api_atom"


class ApiReplay:
    """Answers a request with the recording whose original request had the same params."""

    def __init__(self, atom_dir: Path, fail_first: list[str] | None = None):
        self.dir = atom_dir
        self.recorded: dict[tuple, tuple[int, bytes]] = {}
        self.by_id: dict[str, bytes] = {}
        for line in (atom_dir / "MANIFEST.jsonl").read_text().splitlines():
            rec = json.loads(line)
            q = {k: v[-1] for k, v in parse_qs(urlsplit(rec["request_url"]).query, keep_blank_values=True).items()}
            body = (atom_dir / rec["file"]).read_bytes()
            self.recorded[tuple(q.get(k, "") for k in KEYS)] = (rec["status"], body)
            ids = q.get("id_list", "")
            if ids and "," not in ids and rec["status"] == 200:  # single-id recordings, by unversioned id
                self.by_id[re.sub(r"v\d+$", "", ids)] = body
        self.empty = self.recorded[("", "0000.0000", "0", "100")][1]
        self.fail_first = list(fail_first or [])
        self.requests: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        self.requests.append(params)
        if self.fail_first:
            action = self.fail_first.pop(0)
            if action == "timeout":
                raise httpx.ConnectTimeout("timed out", request=request)
            return httpx.Response(int(action), headers={"Retry-After": "4"}, content=b"busy")
        key = tuple(params.get(k, "") for k in KEYS)
        if key in self.recorded:
            status, body = self.recorded[key]
        else:  # like arXiv: one feed holding the recorded entry of each requested id
            status, body = 200, self.merged(params.get("id_list", "").split(","))
        return httpx.Response(status, content=body, headers={"content-type": "application/atom+xml"})

    def merged(self, ids: list[str]) -> bytes:
        entries = b"".join(
            m.group(0) for i in ids if i in self.by_id for m in re.finditer(rb"<entry>.*?</entry>", self.by_id[i], re.S)
        )
        return self.empty.replace(b"</feed>", entries + b"</feed>")

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def test_fetch_one_paper(tmp_path, atom_dir):
    replay = ApiReplay(atom_dir)
    (rec,) = fetch_by_ids(make_settings(tmp_path), ["arXiv:1605.08386v1"], client=replay.client())
    assert rec.id == "1605.08386" and rec.title == "Heat-bath random walks with Markov bases"
    assert rec.authors == ["Caprice Stanley", "Tobias Windisch"]
    assert rec.categories == ["math.CO", "math.ST"] and rec.published == date(2016, 5, 26) and rec.updated is None
    assert rec.comments == "20 pages, 3 figures" and rec.versions == 1
    assert replay.requests == [{"search_query": "", "id_list": "1605.08386", "start": "0", "max_results": "100"}]


def test_multi_id_zero_results_and_old_style_ids(tmp_path, atom_dir):
    settings = make_settings(tmp_path)
    recs = fetch_by_ids(settings, ["0808.05394", "1707.08567"], client=ApiReplay(atom_dir).client())
    assert [r.id for r in recs] == ["1707.08567"]  # 0808.05394 does not exist
    assert fetch_by_ids(settings, ["0000.0000"], client=ApiReplay(atom_dir).client()) == []
    (old,) = fetch_by_ids(settings, ["astro-ph/0601001"], client=ApiReplay(atom_dir).client())
    assert old.id == "astro-ph/0601001" and old.journal_ref == "ActaAstron.56:1-50,2006"
    (q,) = fetch_by_ids(settings, ["quant-ph/0201082v1"], client=ApiReplay(atom_dir).client())
    assert q.id == "quant-ph/0201082" and q.categories[0] == "quant-ph"


def test_invalid_id_never_reaches_arxiv_and_api_error_entry(tmp_path, atom_dir):
    replay = ApiReplay(atom_dir)
    with pytest.raises(InvalidInput, match="abc"):
        fetch_by_ids(make_settings(tmp_path), ["abc"], client=replay.client())
    assert replay.requests == []
    # the recorded HTTP 400 error feed ("incorrect id format for abc") is a clear user error
    with pytest.raises(InvalidInput, match="incorrect id format for abc"):
        parse_feed((atom_dir / "id_abc_s0_m100_b79c8dcf6bc3.xml").read_bytes())

    def answer_400(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=(atom_dir / "id_abc_s0_m100_b79c8dcf6bc3.xml").read_bytes())

    with pytest.raises(InvalidInput, match="incorrect id format"):
        fetch_by_ids(make_settings(tmp_path), ["1605.08386"], client=httpx.Client(transport=httpx.MockTransport(answer_400)))


def test_legacy_backend_feeds(atom_dir):
    recs, problems = parse_feed((atom_dir / "legacy" / "rsxiv_query.xml").read_bytes())
    assert len(recs) == 10 and not problems and recs[0].id == "astro-ph/9904306"
    assert recs[0].title == "Improved scenario of baryogenesis" and recs[0].abstract.startswith("It is assumed")
    missing, _ = parse_feed((atom_dir / "legacy" / "rsxiv_query_missing_id.xml").read_bytes())
    assert [r.id for r in missing][0] == "2201.13452"  # the id-less placeholder entry is skipped
    assert all(c != "35" for r in missing for c in r.categories)  # MSC codes are not arXiv categories
    assert parse_feed((atom_dir / "legacy" / "rsxiv_query_empty.xml").read_bytes()) == ([], [])


def test_versions_and_updated_dates_from_search_feed(atom_dir):
    recs, _ = parse_feed((atom_dir / "q_testing_s10_m10_34e56e15aaac.xml").read_bytes())
    v2 = next(r for r in recs if r.id == "2403.16981")
    assert v2.versions == 2 and v2.published == date(2024, 3, 25) and v2.updated == date(2025, 5, 24)


def test_retries_503_and_timeouts_then_gives_up(tmp_path, atom_dir):
    sleeps: list[float] = []
    settings = make_settings(tmp_path, arxiv_delay=0.0, arxiv_retries=2)
    recs = fetch_by_ids(settings, ["1605.08386"], client=ApiReplay(atom_dir, ["503", "timeout"]).client(), sleep=sleeps.append)
    assert len(recs) == 1 and sleeps[0] == 4.0 and len(sleeps) == 2
    with pytest.raises(UpstreamError):
        fetch_by_ids(settings, ["1605.08386"], client=ApiReplay(atom_dir, ["500", "502", "503"]).client(), sleep=sleeps.append)


def test_ingest_ids_writes_and_reports(tmp_path, atom_dir):
    settings = make_settings(tmp_path)
    report = ingest_ids(settings, ["1605.08386", "0000.0000", "abc", "1605.08386v1"], client=ApiReplay(atom_dir).client())
    assert (report.inserted, report.skipped) == (1, 2)
    assert any("abc" in e for e in report.errors) and any("0000.0000" in e and "not found" in e for e in report.errors)
    with open_database(settings).connect() as conn:
        assert conn.execute(select(Paper.id)).scalars().all() == ["1605.08386"]
        run = conn.execute(select(IngestRun)).mappings().one()
    assert run["kind"] == "api" and run["status"] == "ok" and run["inserted"] == 1 and run["skipped"] == 2
    again = ingest_ids(settings, ["1605.08386"], client=ApiReplay(atom_dir).client())
    assert again.unchanged == 1
