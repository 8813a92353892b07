"""SIGKILL a real `papers nightly` process at several points; the next run finishes the work.

Points: during harvest (between two OAI pages, the stand-in holds page 2), during build
(right after the BM25 commit, and inside embedding), during publish (the new manifest
is written to its temp file but not yet renamed). After each kill:

* a reader that had the previous version keeps serving it (same version, same answers),
  and a freshly opened reader gets a consistent published version;
* the next run exits 0 and leaves exactly what a run that was never killed leaves: the
  same papers (id and content hash), no duplicate rows, an index whose document count
  equals the live papers and whose built_seq covers every row.

Also: a truncated embeddings file or manifest is detected by checksum and the previous
version keeps serving.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from indexer.search.engine import SearchEngine
from tests.arxiv_standin import ArxivStandin
from tests.nightly_support import (
    base_settings,
    cli_env,
    db_state,
    max_seq,
    published,
    recorded_oai_ids,
    run_papers,
    runs,
    sigkill_at_pause,
    titles,
)

BASE = 120
OLD = date(2014, 10, 1)
ARGS = ["nightly", "--from", OLD.isoformat(), "--set", "cs"]

# Runs `papers ARGS` after installing a pause at one point: the process writes its pid
# to MARKER and sleeps, so the test can SIGKILL it exactly there.
DRIVER = r"""
import os, sys, time
point, marker, args = sys.argv[1], sys.argv[2], sys.argv[3:]

def pause():
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(600)

if point == "bm25-commit":
    from indexer.lexical.bm25 import BM25Index
    real_commit = BM25Index.commit
    def commit(self, *a, **k):
        out = real_commit(self, *a, **k)
        pause()
        return out
    BM25Index.commit = commit
elif point == "embedding":
    from indexer.dense.embeddings import EmbeddingStore
    real_add = EmbeddingStore.add
    def add(self, *a, **k):
        out = real_add(self, *a, **k)
        pause()
        return out
    EmbeddingStore.add = add
elif point == "publish":
    real_replace = os.replace
    def replace(src, dst, *a, **k):
        if str(dst).endswith("manifest.json") and not str(dst).endswith("prev.json"):
            pause()
        return real_replace(src, dst, *a, **k)
    os.replace = replace
from service.cli import main
main(args)
"""


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """What an uninterrupted nightly leaves: the reference for every kill test."""
    with ArxivStandin(filter_records=False) as standin:
        settings = base_settings(tmp_path_factory.mktemp("clean") / "d", n=BASE)
        proc = run_papers(settings, *ARGS, standin=standin)
        assert proc.returncode == 0, proc.stderr
    state, docs = db_state(settings), published(settings).docs
    assert docs == len(state), "the clean run's index does not hold every paper once"
    return {"state": state, "docs": docs}


def _assert_finished_like_clean(settings, clean) -> None:
    state = db_state(settings)  # asserts no duplicate rows
    assert state == clean["state"], "papers lost or different after recovery"
    m = published(settings)
    assert m.built_seq == max_seq(settings), "rows left out of the published index"
    assert m.docs == clean["docs"]
    eng = SearchEngine.open(settings)
    assert eng.version == m.version
    for pid, title in titles(settings, recorded_oai_ids()).items():
        ids = [h.id for h in eng.search(title, mode="bm25", size=50).hits]
        assert ids.count(pid) == 1, f"{pid} found {ids.count(pid)} times by its own title"
    assert runs(settings)[-1][0] == "ok"


def _kill_at(point: str, tmp_path: Path, clean) -> None:
    hold = point == "harvest"
    with ArxivStandin(filter_records=False, hold_token=hold) as standin:
        settings = base_settings(tmp_path / "d", n=BASE)
        reader = SearchEngine.open(settings)
        v1 = reader.version
        probe = reader.search("neural network", mode="bm25", size=10)
        marker = tmp_path / "paused"
        proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER, point, str(marker), *ARGS],
            env=cli_env(settings, standin), cwd=str(tmp_path),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        sigkill_at_pause(proc, standin, marker, point, at_token=hold)
        assert proc.returncode == -signal.SIGKILL

        # the reader keeps serving the previous version
        reader.reload_if_changed()
        assert reader.version == v1
        again = reader.search("neural network", mode="bm25", size=10)
        assert [h.id for h in again.hits] == [h.id for h in probe.hits]
        m = published(settings)
        assert m is not None and m.version == v1  # nothing half-published
        assert SearchEngine.open(settings).version == v1

        # the next run finishes the work
        proc2 = run_papers(settings, *ARGS, standin=standin)
        assert proc2.returncode == 0, proc2.stderr
        assert "interrupted" in [r[0] for r in runs(settings)]
        _assert_finished_like_clean(settings, clean)
        assert reader.reload_if_changed() and reader.version == published(settings).version


@pytest.mark.parametrize("point", ["harvest", "bm25-commit", "embedding", "publish"])
def test_sigkill_then_rerun_finishes_the_work(point, tmp_path, clean_run):
    _kill_at(point, tmp_path, clean_run)


def _two_versions(tmp_path: Path):
    """Version 1 from the base corpus, version 2 after a nightly harvest."""
    with ArxivStandin(filter_records=False) as standin:
        settings = base_settings(tmp_path / "d", n=60)
        reader = SearchEngine.open(settings)
        proc = run_papers(settings, *ARGS, standin=standin)
        assert proc.returncode == 0, proc.stderr
    return settings, reader


def _truncate_vectors(settings) -> None:
    m = published(settings)
    assert m.version == 2 and m.embeddings, "the build recorded no embedding files"
    info = next(iter(m.embeddings.values()))
    files = [settings.index_dir / info["dir"] / name for name in info.get("files", {})]
    assert files, f"manifest lists no checksummed embedding files: {info}"
    vectors = max(files, key=lambda p: p.stat().st_size)
    vectors.write_bytes(vectors.read_bytes()[: vectors.stat().st_size // 2])


def test_truncated_embeddings_file_is_detected_and_loaded_version_kept(tmp_path, caplog):
    settings, reader = _two_versions(tmp_path)
    before = reader.search("neural network", mode="dense", size=5)
    _truncate_vectors(settings)
    with caplog.at_level("ERROR"):
        reader.reload_if_changed()  # must not raise
        fresh = SearchEngine.open(settings)
    assert any("checksum" in r.getMessage() for r in caplog.records), "no clear error logged"
    # the running reader keeps the vectors it had loaded
    again = reader.search("neural network", mode="dense", size=5)
    assert [h.id for h in again.hits] == [h.id for h in before.hits]
    # a fresh reader refuses the corrupt file and still answers (lexical)
    assert fresh.search("neural network", mode="hybrid", size=5).total > 0


def test_build_after_truncated_embeddings_file_repairs_it(tmp_path):
    """The documented recovery (docs/operations.md): `papers build` publishes a good version."""
    settings, _ = _two_versions(tmp_path)
    _truncate_vectors(settings)
    proc = run_papers(settings, "build")
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, f"build could not recover from a truncated embeddings file: {proc.stderr[-400:]}"
    m = published(settings)
    from indexer.manifest import sha256_file

    for model, inf in m.embeddings.items():
        for name, digest in inf.get("files", {}).items():
            assert sha256_file(settings.index_dir / inf["dir"] / name) == digest, (model, name)
    fresh = SearchEngine.open(settings)
    assert fresh.search("neural network", mode="dense", size=5).hits, "dense search still off after the repair"


def test_truncated_manifest_falls_back_and_next_run_repairs(tmp_path, caplog):
    settings, _ = _two_versions(tmp_path)
    manifest = settings.index_dir / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:50])
    with caplog.at_level("ERROR"):
        eng = SearchEngine.open(settings)
    assert eng.ready and eng.version == 1  # manifest.prev.json
    assert any("checksum" in r.getMessage() or "unreadable" in r.getMessage() for r in caplog.records)

    with ArxivStandin(filter_records=False) as standin:
        proc = run_papers(settings, *ARGS, standin=standin)
    assert proc.returncode == 0, proc.stderr
    m = published(settings)  # a valid manifest again
    assert m.version >= 2 and m.built_seq == max_seq(settings)
    assert SearchEngine.open(settings).version == m.version
