"""Benchmark steps that run in their own interpreter so their peak memory is their own.

    python -m benchmarks.steps STEP '<json args>'

Each step prints one JSON object (its figures, including ``peak_rss_mb``) as the last
line of stdout. The harness (:mod:`benchmarks.harness`) calls them through
:func:`benchmarks.measure.run_step`.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from benchmarks.measure import peak_rss_mb

BATCH = 2000


def _settings(data_dir: str, **kw):
    from indexer.settings import Settings

    values = {"data_dir": Path(data_dir), "embedding_model": "fake", "multilingual_model": "", "online_fetch": False}
    values.update(kw)
    return Settings(**values)


def _records(path: str, start: int = 0, stop: int | None = None) -> Iterator[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i < start:
                continue
            if stop is not None and i >= stop:
                return
            yield json.loads(line)


def _count(path: str) -> int:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return sum(1 for _ in fh)


def _paper_record(r: dict):
    from indexer.ingest.records import PaperRecord

    return PaperRecord(
        id=r["id"], title=r["title"], abstract=r["abstract"], authors=list(r.get("authors") or []),
        categories=list(r.get("categories") or []), published=date.fromisoformat(r["published"]),
        updated=date.fromisoformat(r["updated"]) if r.get("updated") else None,
    )


def _du_mb(path: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += (Path(root) / f).stat().st_size
            except OSError:
                pass
    return round(total / 1e6, 1)


def step_ingest(a: dict) -> dict:
    """``papers ingest jsonl`` over records [0, stop): the shipped import (parser process
    + batched upserts), into the settings' database."""
    from indexer.ingest.jsonl import ingest_jsonl

    settings = _settings(a["data_dir"])
    t0 = time.perf_counter()
    report = ingest_jsonl(settings, a["corpus"], progress=False, limit=a.get("stop"))
    sec = time.perf_counter() - t0
    n = report.records
    db = Path(a["data_dir"]) / "papers.db"
    return {"rows": n, "inserted": report.inserted, "seconds": round(sec, 2), "rows_per_s": round(n / sec, 1),
            "db_mb": round(db.stat().st_size / 1e6, 1) if db.exists() else None, "peak_rss_mb": peak_rss_mb()}


def step_ingest_baseline(a: dict) -> dict:
    """Baseline: plain SQLAlchemy Core executemany INSERT of the same rows into a bare table."""
    import sqlalchemy as sa

    from indexer.ingest.store import batched

    path = Path(a["work"]) / "baseline.db"
    path.unlink(missing_ok=True)
    engine = sa.create_engine(f"sqlite:///{path}")
    md = sa.MetaData()
    t = sa.Table(
        "papers", md, sa.Column("id", sa.String, primary_key=True), sa.Column("title", sa.Text),
        sa.Column("abstract", sa.Text), sa.Column("authors", sa.JSON), sa.Column("categories", sa.JSON),
        sa.Column("published", sa.String),
    )
    md.create_all(engine)
    t0 = time.perf_counter()
    n = 0
    for batch in batched(_records(a["corpus"], 0, a.get("stop")), BATCH):
        rows = [{k: r[k] for k in ("id", "title", "abstract", "authors", "categories", "published")} for r in batch]
        with engine.begin() as conn:
            conn.execute(t.insert(), rows)
        n += len(rows)
    sec = time.perf_counter() - t0
    engine.dispose()
    path.unlink(missing_ok=True)
    return {"rows": n, "seconds": round(sec, 2), "rows_per_s": round(n / sec, 1), "peak_rss_mb": peak_rss_mb()}


# the shipped (main, multilingual) models and their dimensions: the synthetic stores
# carry their names (the defaults of PAPERS_EMBEDDING_MODEL / PAPERS_MULTILINGUAL_MODEL)
SHIPPED_MODELS = {"all-MiniLM-L6-v2": 384, "use-multilingual": 512}


def _synthetic_embedders() -> None:
    """Make the build embed with the deterministic fake embedder under the shipped
    models' names and dimensions (bench only, this process only).

    Why: embedding 1M texts with the real models takes most of a day on 2 cores, but
    the memory and latency of serving depend on the number and size of the vectors and
    the graph, not on their meaning. With stores named like the real ones, `papers
    serve` and the engine bench load the real models for the query and search 1M
    vectors of the real shapes: hybrid search and service memory measured end to end."""
    import indexer.dense.embeddings as emb

    real = emb.get_embedder

    def synthetic(name: str, device: str = "cpu", **options):
        if name not in SHIPPED_MODELS:
            return real(name, device=device, **options)
        e = emb.FakeEmbedder(dim=SHIPPED_MODELS[name])
        e.name = name
        return e

    emb.get_embedder = synthetic


def step_build(a: dict) -> dict:
    """indexer.pipeline.build.build over everything ingested (BM25 + keywords [+ embeddings]);
    ``synthetic``: the embeddings under the shipped models' names (see above)."""
    from indexer.pipeline.build import build

    if a.get("synthetic"):
        _synthetic_embedders()
        main, multi = SHIPPED_MODELS
        settings = _settings(a["data_dir"], embedding_model=main, multilingual_model=multi)
    else:
        settings = _settings(a["data_dir"])
    t0 = time.perf_counter()
    report = build(settings, embeddings=bool(a.get("embeddings")), progress=False)
    sec = time.perf_counter() - t0
    return {"seconds": round(sec, 2), "docs": report.docs, "indexed": report.indexed, "keywords": report.keywords,
            "embedded": report.embedded, "phases_s": report.phases, "index_mb": _du_mb(settings.index_dir),
            "peak_rss_mb": peak_rss_mb()}


def step_nightly(a: dict) -> dict:
    """A nightly increment without network: upsert records [start, stop) and build incrementally."""
    from indexer.db import open_database
    from indexer.ingest.store import upsert_papers
    from indexer.pipeline.build import build

    settings = _settings(a["data_dir"])
    engine = open_database(settings)
    t0 = time.perf_counter()
    recs = [_paper_record(r) for r in _records(a["corpus"], a["start"], a.get("stop"))]
    counts = upsert_papers(engine, recs, batch_size=BATCH)
    t1 = time.perf_counter()
    report = build(settings, embeddings=False, progress=False)
    t2 = time.perf_counter()
    return {"papers": len(recs), "inserted": counts.inserted, "upsert_s": round(t1 - t0, 2),
            "build_s": round(t2 - t1, 2), "total_s": round(t2 - t0, 2), "indexed": report.indexed,
            "keywords": report.keywords, "docs": report.docs, "peak_rss_mb": peak_rss_mb()}


def step_count(a: dict) -> dict:
    return {"records": _count(a["corpus"]), "peak_rss_mb": peak_rss_mb()}


STEPS = {name[len("step_"):].replace("_", "-"): fn for name, fn in globals().items() if name.startswith("step_")}


def main() -> None:
    step, raw = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "{}"
    result = STEPS[step](json.loads(raw))
    # CPU seconds (user + system, all threads) next to wall seconds: on a shared machine the
    # wall time says how long it took, the CPU time how much work it is
    # (the build's keyword and index workers and the import's parser are children: their
    # CPU and their largest peak are reported beside the step's own)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["cpu_s"] = round(ru.ru_utime + ru.ru_stime, 2)
    result["cpu_children_s"] = round(ch.ru_utime + ch.ru_stime, 2)
    result["cpu_total_s"] = round(result["cpu_s"] + result["cpu_children_s"], 2)
    result["peak_rss_child_mb"] = round(ch.ru_maxrss / 1024.0, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
