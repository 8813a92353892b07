"""`papers bench`: run the benchmark suite on one corpus and write report.md + report.json.

Why one harness: every figure in docs/performance.md comes from one command, and every
speed figure sits beside a baseline measured in the same run (regex tokenizer, plain
Core inserts, rank-bm25, exact numpy cosine), so ratios stay meaningful on a loaded
2-core machine. A bench whose component is missing or broken is reported as an error
and the rest still run.

Order matters: ingest → build → (search, engine, related, service) → nightly, because
later benches read what earlier ones built under ``<work>/<corpus>/data``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import corpus as corpora
from benchmarks.measure import run_step

BENCHES = ("tokenizer", "ingest", "ingest-files", "build", "search", "rank-bm25", "engine", "related", "keywords",
           "embeddings", "vectors", "service", "nightly")
# at 1M the headline figures (build, BM25 latency, rank-bm25) come first, so a run stopped
# for time keeps them; the file-import bench (the same code at 200k rows) comes last
ORDER_1M = ("tokenizer", "ingest", "build", "search", "rank-bm25", "keywords", "embeddings", "vectors",
            "engine", "related", "service", "nightly", "ingest-files")
NIGHTLY_PAPERS = 3000


@dataclass
class Plan:
    """How much work each bench does: --quick keeps the whole suite to a minute or two."""

    tokenizer_mb: float
    ingest_limit: int | None
    queries: int
    rank_bm25: dict[str, int]
    related: int
    keywords: int
    embed_docs: int
    vectors: int | None
    http_per_client: int
    nightly: int
    # dense stores under the shipped models' names (synthetic vectors, real query models):
    # hybrid and service memory end to end; off for --quick (no model loading in tests)
    synthetic_models: bool = False

    @classmethod
    def for_run(cls, name: str, quick: bool) -> Plan:
        if quick:
            return cls(1.0, None, 10, {"1w": 5, "3w": 5, "10w": 5, "60t": 2}, 10, 100, 16, 5000, 5, 300)
        synthetic = name in ("100k", "1m")
        if name == "1m":
            return cls(20.0, None, 100, {"1w": 3, "3w": 5, "10w": 2, "60t": 1}, 100, 2000, 200, None, 50, NIGHTLY_PAPERS,
                       synthetic)
        return cls(20.0, None, 100, {"1w": 20, "3w": 20, "10w": 10, "60t": 5}, 100, 2000, 300, None, 50, NIGHTLY_PAPERS,
                   synthetic)


@dataclass
class Run:
    corpus: str
    work: Path
    quick: bool
    plan: Plan
    results: dict = field(default_factory=dict)
    _records: list[dict] | None = None
    path: Path | None = None
    n: int = 0
    #: how many workers `papers serve` starts by itself over a data directory; given by
    #: the caller (`papers bench` passes service/sizing.py's plan), so benchmarks/ never
    #: imports ``service``
    serve_workers: Callable[[Path], int] | None = None

    @property
    def data_dir(self) -> Path:
        return self.work / self.corpus / "data"

    @property
    def base_n(self) -> int:
        """Papers in the initial build; the rest are the nightly increment."""
        return max(0, self.n - self.plan.nightly)

    def records(self) -> list[dict]:
        if self._records is None:
            self._records = corpora.read_jsonl(self.path)
        return self._records

    @property
    def models(self) -> tuple[str, str]:
        """(main, multilingual) embedding models the engine and the server run with."""
        from benchmarks.steps import SHIPPED_MODELS

        main, multi = SHIPPED_MODELS
        return (main, multi) if self.plan.synthetic_models else ("fake", "")

    def settings(self):
        from indexer.settings import Settings

        main, multi = self.models
        return Settings(data_dir=self.data_dir, embedding_model=main, multilingual_model=multi, online_fetch=False)


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        ram_gb = round(int(mem.split()[1]) / 1024 / 1024, 1)
    except (OSError, StopIteration):
        ram_gb = None
    return {"nproc": os.cpu_count(), "ram_gb": ram_gb, "cpu": cpu, "python": platform.python_version(),
            "gpu": "none (no GPU was lent to this task)", "load_avg": os.getloadavg()}


# -- benches -----------------------------------------------------------------------------

def b_tokenizer(run: Run) -> dict:
    from benchmarks.bench_text import bench_tokenizer

    return bench_tokenizer(run.records(), run.plan.tokenizer_mb)


def b_ingest(run: Run) -> dict:
    run.data_dir.mkdir(parents=True, exist_ok=True)
    for f in run.data_dir.glob("papers.db*"):
        f.unlink()
    shutil.rmtree(run.data_dir / "index", ignore_errors=True)
    stop = run.base_n
    ours = run_step("ingest", {"corpus": str(run.path), "data_dir": str(run.data_dir), "stop": stop})
    # the baseline's rate is flat in size (plain appends); 200k rows bound its cost at 1M
    base = run_step("ingest-baseline", {"corpus": str(run.path), "work": str(run.work), "stop": min(stop, 200_000)})
    out = {"import": ours, "baseline_core_insert": base,
           "ratio_vs_baseline": round(ours["rows_per_s"] / base["rows_per_s"], 3)}
    return out


def b_ingest_files(run: Run) -> dict:
    """The ingestion engineer's file-import bench (JSONL, Kaggle, idempotent re-run, baseline)."""
    from benchmarks.bench_ingest import bench_ingest

    limit = 200_000 if run.corpus == "1m" else None
    work = run.work / run.corpus / "ingest-files"
    work.mkdir(parents=True, exist_ok=True)
    return {"source": "benchmarks/bench_ingest.py", **bench_ingest(corpus=run.path, limit=limit, work=work)}


def b_build(run: Run) -> dict:
    """The shipped build, as `papers build` runs it: first without embeddings (the target's
    figure: BM25 + every paper's keywords, phases timed), then the embeddings with the
    deterministic fake embedder, so dense and hybrid search have a real vector store (and
    an HNSW graph from 300k papers) behind them at every size. At 100k and 1M the fake
    vectors are stored under the shipped models' names and dimensions (steps.py,
    ``_synthetic_embedders``), so the engine and the server load the real models for
    queries. A real model's cost per document is the embeddings bench's."""
    synthetic = run.plan.synthetic_models
    return {
        "full_build_excl_embeddings": run_step("build", {"data_dir": str(run.data_dir), "embeddings": False,
                                                         "synthetic": synthetic}),
        "fake_embeddings_build": run_step("build", {"data_dir": str(run.data_dir), "embeddings": True,
                                                    "synthetic": synthetic}),
    }


def _queries(run: Run) -> dict[str, list[str]]:
    from benchmarks.queries import make_queries

    return make_queries(run.records(), run.plan.queries)


def b_search(run: Run) -> dict:
    from benchmarks.bench_search import bench_bm25, open_bm25
    from indexer.pipeline.build import bm25_path

    index = open_bm25(bm25_path(run.settings()))
    return bench_bm25(index, _queries(run))


def b_rank_bm25(run: Run) -> dict:
    from benchmarks.bench_search import bench_rank_bm25, open_bm25
    from indexer.pipeline.build import bm25_path

    try:
        index = open_bm25(bm25_path(run.settings()))
    except Exception:  # noqa: BLE001 - agreement is optional
        index = None
    recs = run.records()[: run.base_n]
    return bench_rank_bm25(recs, _queries(run), run.plan.rank_bm25, index=index, plain_tokens=run.corpus == "1m")


def _engine(run: Run):
    from indexer.search.engine import SearchEngine

    return SearchEngine.open(run.settings())


def b_engine(run: Run) -> dict:
    from benchmarks.bench_search import bench_engine

    engine = _engine(run)
    engine.warm_up()  # load the query models first, as `papers serve` does at start-up
    out = bench_engine(engine, _queries(run))
    out["query_models"] = list(run.models)
    if run.plan.synthetic_models:
        out["note"] = ("dense/hybrid end to end: the real MiniLM and USE models encode each query; the documents' "
                       "vectors are synthetic (fake embedder under those models' names and dimensions), searched "
                       "exactly below 300k papers and by HNSW above")
    else:
        out["note"] = ("dense/hybrid use the deterministic 'fake' embedder for queries and documents: vector search "
                       "and fusion without model inference; the hybrid target adds the real models' query encoding "
                       "from the embeddings bench")
    return out


def b_related(run: Run) -> dict:
    from benchmarks.bench_search import bench_related

    ids = [r["id"] for r in run.records()[: run.base_n]]
    return bench_related(_engine(run), ids, run.plan.related)


def b_keywords(run: Run) -> dict:
    from benchmarks.bench_text import bench_keywords

    return bench_keywords(run.records(), run.plan.keywords)


def b_embeddings(run: Run) -> dict:
    from benchmarks.bench_dense import bench_embedders

    # a few hundred real abstracts: read just those (at 1M the whole corpus is ~3.5 GB of objects)
    recs = corpora.read_jsonl(run.path, limit=run.plan.embed_docs + 40)
    out, base = bench_embedders(recs, run.plan.embed_docs, device=run.settings().embedding_device)
    run.results["_base_vectors"] = base
    return out


def b_vectors(run: Run) -> dict:
    import numpy as np

    from benchmarks.bench_dense import bench_vectors

    base = run.results.get("_base_vectors")
    if base is None:
        raise RuntimeError("needs the embeddings bench (real MiniLM vectors as the base)")
    n = run.plan.vectors or run.n
    return bench_vectors(np.asarray(base), n)


def b_service(run: Run) -> dict:
    from benchmarks.bench_service import bench_service

    qs = _queries(run)
    mixed = [q for shape in ("1w", "3w", "10w") for q in qs[shape]]
    also = ("hybrid",) if run.plan.synthetic_models else ()
    if run.serve_workers is None:
        raise RuntimeError("needs the service's worker plan (run_suite(serve_workers=...)): run it through `papers bench`")
    return bench_service(run.data_dir, mixed, run.plan.http_per_client, run.serve_workers, models=run.models, also=also)


def b_nightly(run: Run) -> dict:
    return run_step("nightly", {"corpus": str(run.path), "data_dir": str(run.data_dir), "start": run.base_n})


RUNNERS: dict[str, Callable[[Run], dict]] = {
    "tokenizer": b_tokenizer, "ingest": b_ingest, "ingest-files": b_ingest_files, "build": b_build, "search": b_search, "rank-bm25": b_rank_bm25,
    "engine": b_engine, "related": b_related, "keywords": b_keywords, "embeddings": b_embeddings,
    "vectors": b_vectors, "service": b_service, "nightly": b_nightly,
}


def run_suite(corpus: str, out: Path, work: Path, quick: bool = False, only: tuple[str, ...] = (), log=print,
              serve_workers: Callable[[Path], int] | None = None) -> dict:
    """Run the suite (or ``only`` some benches) and write ``out``/report.{md,json}.

    ``serve_workers``: how many workers `papers serve` starts by itself over a data
    directory (the service bench times that count and one worker)."""
    unknown = [n for n in only if n not in RUNNERS]
    if unknown:
        raise ValueError(f"unknown bench {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    order = ORDER_1M if corpus == "1m" else BENCHES
    selected = list(dict.fromkeys(only)) if only else list(order)  # --only keeps the given order
    if "vectors" in selected and "embeddings" not in selected:
        selected.insert(selected.index("vectors"), "embeddings")
    run = Run(corpus=corpus, work=work, quick=quick, plan=Plan.for_run(corpus, quick), serve_workers=serve_workers)
    run.path = corpora.materialize(corpus, work)
    run.n = run_step("count", {"corpus": str(run.path)})["records"]
    started = datetime.now(UTC)

    def report() -> dict:
        from benchmarks.targets import evaluate

        rep = {
            "corpus": corpus, "records": run.n, "base_papers": run.base_n, "quick": quick,
            "started": started.isoformat(timespec="seconds"), "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(), "results": {k: v for k, v in run.results.items() if not k.startswith("_")},
        }
        rep["targets"] = evaluate(rep)
        return rep

    for name in selected:
        log(f"[bench] {name} ...")
        t0 = time.perf_counter()
        try:
            res = RUNNERS[name](run)
            res["bench_seconds"] = round(time.perf_counter() - t0, 1)
            res["ran_at"] = datetime.now(UTC).isoformat(timespec="seconds")  # merged reports mix runs (summarize)
        except Exception as e:  # noqa: BLE001 - one broken component must not hide the others
            res = {"error": f"{type(e).__name__}: {e}"[:1500], "trace": traceback.format_exc()[-1500:]}
        run.results[name] = res
        log(f"[bench] {name} done in {time.perf_counter() - t0:.1f}s{' (error)' if 'error' in res else ''}")
        write_reports(report(), out)  # after every bench: a long run that is stopped keeps what it measured
    final = report()
    write_reports(final, out)
    return final


def write_reports(report: dict, out: Path) -> tuple[Path, Path]:
    from benchmarks.report import to_markdown

    out.mkdir(parents=True, exist_ok=True)
    js = out / "report.json"
    md = out / "report.md"
    js.write_text(json.dumps(report, indent=2, default=str))
    md.write_text(to_markdown(report))
    return md, js
