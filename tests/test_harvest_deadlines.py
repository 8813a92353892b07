"""The harvest cannot be held forever by a slow upstream (issue 14: a server sending one
byte every 2 s held the run lock indefinitely).

A local server replays the REAL recorded OAI-PMH pages, optionally trickling a page out
in small pieces. Each response has a read deadline (``PAPERS_ARXIV_READ_DEADLINE``,
retried like a timeout), each harvest an overall deadline (``PAPERS_HARVEST_DEADLINE``);
either way the run stops with a clear error and leaves a resumable state that the next
run completes.
"""

from __future__ import annotations

import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from indexer.errors import HarvestDeadline, UpstreamError
from indexer.ingest.oai import harvest_oai, load_state, owed_window
from indexer.ingest.store import open_database
from tests.conftest import make_settings
from tests.test_ingest_oai import PAGE1, PAGE1_IDS, PAGE2, PAGE2_IDS, TOKEN, ids

WINDOW = (date(2014, 10, 1), date(2015, 1, 5))


class Trickle:
    """127.0.0.1 server: page 1 for a fresh request, page 2 for the token; pages named in
    ``slow`` ("first" / "token") are sent 64 bytes at a time, ``gap`` seconds apart."""

    def __init__(self, oai_dir, slow: set[str], gap: float = 0.05):
        self.pages = {"first": (oai_dir / PAGE1).read_bytes(), "token": (oai_dir / PAGE2).read_bytes()}
        self.slow, self.gap = set(slow), gap
        self.stop = threading.Event()
        trickle = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                kind = "token" if "resumptionToken=" in self.path else "first"
                body = trickle.pages[kind]
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                step = 64 if kind in trickle.slow else len(body)
                try:
                    for i in range(0, len(body), step):
                        if trickle.stop.is_set():
                            return
                        self.wfile.write(body[i : i + step])
                        self.wfile.flush()
                        if step < len(body):
                            time.sleep(trickle.gap)
                except OSError:
                    pass  # the client gave up on us

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/oai"

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def oai_dir(arxiv_fixtures):
    return arxiv_fixtures / "oai_pmh"


def _harvest(settings):
    return harvest_oai(settings, open_database(settings), "physics", *WINDOW, sleep=lambda s: None)


def test_a_trickling_response_hits_the_read_deadline_and_the_run_is_resumable(tmp_path, oai_dir):
    server = Trickle(oai_dir, slow={"token"})  # page 2 (~3 KB) would take seconds
    try:
        settings = make_settings(tmp_path, arxiv_oai_url=server.url, arxiv_retries=1, arxiv_read_deadline=0.5)
        t0 = time.monotonic()
        with pytest.raises(UpstreamError, match="too slow"):
            _harvest(settings)
        assert time.monotonic() - t0 < 30  # two attempts of 0.5 s, not the whole trickle
    finally:
        server.close()
    engine = open_database(settings)
    assert set(ids(settings)) == PAGE1_IDS
    assert load_state(engine, "oai:physics")["resumption_token"] == TOKEN  # resumable
    assert owed_window(engine, "oai:physics") == WINDOW

    fast = Trickle(oai_dir, slow=set())
    try:
        report = _harvest(settings.model_copy(update={"arxiv_oai_url": fast.url}))
    finally:
        fast.close()
    assert report.resumed and report.complete and set(ids(settings)) == PAGE1_IDS | PAGE2_IDS
    assert owed_window(engine, "oai:physics") is None


def test_the_overall_deadline_stops_the_harvest_with_its_progress_stored(tmp_path, oai_dir):
    server = Trickle(oai_dir, slow={"token"}, gap=0.2)
    try:
        settings = make_settings(tmp_path, arxiv_oai_url=server.url, arxiv_retries=5, arxiv_read_deadline=60,
                                 harvest_deadline=2.0)
        t0 = time.monotonic()
        with pytest.raises(HarvestDeadline, match="deadline"):
            _harvest(settings)
        assert time.monotonic() - t0 < 30
    finally:
        server.close()
    engine = open_database(settings)
    assert set(ids(settings)) == PAGE1_IDS
    assert load_state(engine, "oai:physics")["resumption_token"] == TOKEN
    assert owed_window(engine, "oai:physics") == WINDOW
