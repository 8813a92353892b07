"""An interrupted nightly is finished by the next *ordinary* nightly, whatever its window.

A `papers nightly --from 2014-10-01` (set physics: 6 recorded papers on two OAI pages) is
SIGKILLed at one of three points: between the two harvest pages (a token is stored),
inside the first page's upsert transaction (nothing committed: only the started window
says that work is owed), and right after the BM25 commit of the build. The next day (the
clock of the subprocess is moved one day on) a plain `papers nightly`, with no ``--from``,
computes a window of its own in which the stand-in has no records at all, so the papers
only arrive when that run finishes the interrupted window first. Afterwards every paper
of the interrupted window is in the database once and in the published index once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from indexer.search.engine import SearchEngine
from tests.arxiv_standin import ARXIV, ArxivStandin
from tests.nightly_support import (
    base_settings,
    cli_env,
    db_state,
    max_seq,
    published,
    runs,
    sigkill_at_pause,
    titles,
)

BASE = 40
SET = "physics"
DAY1 = date(2025, 3, 10)
DAY2 = DAY1 + timedelta(days=1)

# `papers ARGS` with the UTC day set to TODAY, and (unless POINT is "none") a pause at
# POINT: the process writes its pid to MARKER and sleeps, so the test kills it there.
DRIVER = r"""
import os, sys, time
from datetime import date
point, marker, today, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]

def pause():
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(600)

import indexer.pipeline.nightly
indexer.pipeline.nightly._today = lambda: date.fromisoformat(today)
if point == "upsert":
    import indexer.ingest.oai as oai
    real_upsert = oai.upsert_batch
    def upsert_batch(conn, records, **k):
        out = real_upsert(conn, records, **k)
        pause()  # inside the page's transaction: killed, it commits nothing
        return out
    oai.upsert_batch = upsert_batch
elif point == "build":
    from indexer.lexical.bm25 import BM25Index
    real_commit = BM25Index.commit
    def commit(self, *a, **k):
        out = real_commit(self, *a, **k)
        pause()
        return out
    BM25Index.commit = commit
from service.cli import main
main(args)
"""


def _physics_ids() -> set[str]:
    """The recorded papers in set physics: what the interrupted window must bring in."""
    import re

    ids: set[str] = set()
    for name in ("mikesaelim_ListRecordsResponse.xml", "paperhive_ListRecords_arXiv_2015-01-01_2015-01-03.xml"):
        text = (ARXIV / "oai_pmh" / name).read_text(encoding="utf-8")
        for rec in re.findall(r"<record>.*?</record>", text, re.S):
            if re.search(r"<setSpec>physics(:[^<]*)?</setSpec>", rec):
                ids.add(re.search(r"<identifier>oai:arXiv\.org:([^<]+)</identifier>", rec).group(1))
    return ids


def _driver(settings, standin, point: str, marker: Path, today: date, *args: str) -> subprocess.Popen:
    env = cli_env(settings, standin, PAPERS_OAI_SET=SET)
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, point, str(marker), today.isoformat(), *args],
        env=env, cwd=str(settings.data_dir.parent), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.parametrize("point", ["harvest", "upsert", "build"])
def test_next_ordinary_nightly_finishes_an_interrupted_window(point, tmp_path):
    expected_new = _physics_ids()
    assert len(expected_new) == 6
    with ArxivStandin(filter_records=True, hold_token=point == "harvest") as standin:
        settings = base_settings(tmp_path / "d", n=BASE, oai_set=SET)
        before = db_state(settings)
        assert not expected_new & set(before)
        marker = tmp_path / "paused"
        proc = _driver(settings, standin, point, marker, DAY1, "nightly", "--from", "2014-10-01")
        sigkill_at_pause(proc, standin, marker, point, at_token=point == "harvest")
        assert proc.returncode == -signal.SIGKILL
        if point != "build":
            assert not expected_new <= set(db_state(settings)), "the kill came too late to test anything"

        # the next day, a plain nightly: its own window holds no records at all
        proc2 = _driver(settings, standin, "none", marker, DAY2, "nightly", "--json")
        out, err = proc2.communicate(timeout=240)
        assert proc2.returncode == 0, err[-3000:]
        import json

        report = json.loads(out.strip().splitlines()[-1])
        assert report["until"] == DAY2.isoformat()
        if point != "build":
            assert report["owed_window"] == f"2014-10-01..{DAY1.isoformat()}"

    state = db_state(settings)  # asserts 0 duplicate rows
    assert set(state) == set(before) | expected_new, "papers of the interrupted window were never fetched"
    m = published(settings)
    assert m.docs == len(state) and m.built_seq == max_seq(settings)
    eng = SearchEngine.open(settings)
    for pid, title in titles(settings, expected_new).items():
        hits = [h.id for h in eng.search(title, mode="bm25", size=50).hits]
        assert hits.count(pid) == 1, f"{pid} found {hits.count(pid)} times by its own title"
    assert runs(settings)[-1][0] == "ok"
    # a third run owes nothing
    from indexer.db import open_database
    from indexer.ingest.oai import owed_window

    assert owed_window(open_database(settings), f"oai:{SET}") is None
