"""`papers serve`'s default worker count: one per core, fewer where the index and the
workers' own memory would not fit the memory this process may use (its cgroup limit or
the machine's RAM), read from real cgroup files and a real built index."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from indexer.pipeline.build import bm25_path
from service import sizing
from service.sizing import index_bytes, memory_limit_bytes, plan_workers

REPO = Path(__file__).resolve().parents[1]
GiB = 2**30
MiB = 2**20


def test_a_million_papers_with_both_spaces_get_one_worker_in_2_gb_and_two_in_4_gb():
    """The measured case (performance.md): 1M papers, BM25 418 MB + two 531 MB graphs;
    two workers in a hard 2 GB limit slowed hybrid search by more than half, one did not."""
    index = (418 + 2 * 531) * MiB
    small = plan_workers(cores=2, memory_limit=2 * GiB, index=index, papers=1_000_000)
    assert small.workers == 1
    assert "1 worker instead of 2" in small.reason and "--workers overrides" in small.reason
    assert plan_workers(cores=2, memory_limit=4 * GiB, index=index, papers=1_000_000).workers == 2
    assert plan_workers(cores=2, memory_limit=None, index=index, papers=1_000_000).workers == 2
    assert plan_workers(cores=8, memory_limit=64 * GiB, index=index, papers=1_000_000).workers == sizing.MAX_DEFAULT_WORKERS
    one_core = plan_workers(cores=1, memory_limit=GiB // 2, index=index, papers=1_000_000)
    assert one_core.workers == 1 and one_core.reason == ""  # never below one, and nothing to explain
    # the bundled sample fits two workers in 2 GB with room to spare
    assert plan_workers(cores=2, memory_limit=2 * GiB, index=3 * MiB, papers=8_000).workers == 2


def _fake_host(tmp_path: Path, cgroup_line: str, files: dict[str, str], mem_total_kb: int) -> tuple[Path, Path]:
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text(cgroup_line)
    (proc / "meminfo").write_text(f"MemTotal:       {mem_total_kb} kB\nMemFree:        1000 kB\n")
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return proc, root


def test_memory_limit_is_the_smallest_of_the_cgroup_its_ancestors_and_ram(tmp_path):
    # v1: the limit is set on the parent, the process's own group says "no limit"
    proc, root = _fake_host(tmp_path / "v1", "4:memory:/service/worker\n1:cpu:/\n", {
        "memory/service/worker/memory.limit_in_bytes": "9223372036854771712",
        "memory/service/memory.limit_in_bytes": str(2 * GiB),
        "memory/memory.limit_in_bytes": "9223372036854771712",
    }, mem_total_kb=24 * 1024 * 1024)
    assert memory_limit_bytes(proc, root) == 2 * GiB
    # v2: "max" everywhere but one ancestor
    proc, root = _fake_host(tmp_path / "v2", "0::/system.slice/papers.service\n", {
        "system.slice/papers.service/memory.max": "max",
        "system.slice/memory.max": str(3 * GiB),
    }, mem_total_kb=24 * 1024 * 1024)
    assert memory_limit_bytes(proc, root) == 3 * GiB
    # no cgroup limit at all: the machine's RAM
    proc, root = _fake_host(tmp_path / "none", "0::/\n", {"memory.max": "max"}, mem_total_kb=1024 * 1024)
    assert memory_limit_bytes(proc, root) == GiB
    # nothing readable (not Linux): no limit known
    assert memory_limit_bytes(tmp_path / "absent", tmp_path / "absent") is None
    # and this machine answers something positive
    here = memory_limit_bytes()
    assert here is None or here > 64 * MiB


def test_index_bytes_counts_the_published_bm25_index_and_graphs(built_settings, tmp_path):
    from tests.conftest import make_settings

    size, papers = index_bytes(built_settings)
    bm25 = sum(p.stat().st_size for p in bm25_path(built_settings).rglob("*") if p.is_file())
    assert papers == 8000 and size == bm25 > 0  # the sample is below the graph threshold: no ann files
    assert index_bytes(make_settings(tmp_path)) == (0, 0)  # before the first build


def test_serve_passes_the_planned_workers_to_uvicorn_and_says_why(built_settings, monkeypatch):
    import uvicorn

    from service.commands import serve

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    monkeypatch.setattr(serve, "get_settings", lambda: built_settings)
    monkeypatch.setattr(sizing, "usable_cores", lambda: 2)
    monkeypatch.setattr(sizing, "memory_limit_bytes", lambda: 300 * MiB)  # two sample workers need ~374 MB
    result = CliRunner().invoke(serve.serve_command, [])
    assert result.exit_code == 0, result.output
    assert calls[-1]["workers"] == 1 and "1 worker instead of 2" in result.output
    monkeypatch.setattr(sizing, "memory_limit_bytes", lambda: 4 * GiB)
    result = CliRunner().invoke(serve.serve_command, [])
    assert calls[-1]["workers"] == 2 and "instead of" not in result.output
    monkeypatch.setattr(sizing, "memory_limit_bytes", lambda: 300 * MiB)
    result = CliRunner().invoke(serve.serve_command, ["--workers", "2"])  # an explicit count is obeyed
    assert calls[-1]["workers"] == 2 and "instead of" not in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_inside_a_small_memory_cgroup_starts_one_worker(built_settings, tmp_path):
    """A real `papers serve` started in a 300 MB memory cgroup reads the limit itself."""
    from benchmarks.bench_memlimit import MemoryCgroup, available
    from benchmarks.bench_service import Served

    why = available()
    if why:
        pytest.skip(f"memory cgroups unavailable here: {why}")
    if sizing.usable_cores() < 2:
        pytest.skip("one core: the default is one worker whatever the memory")
    exe = Path(sys.executable).with_name("papers")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "service.cli"]
    env = dict(os.environ, PAPERS_DATA_DIR=str(built_settings.data_dir), PAPERS_EMBEDDING_MODEL="fake",
               PAPERS_MULTILINGUAL_MODEL="", PAPERS_LOG_LEVEL="WARNING")
    cg = MemoryCgroup(300)
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed by Served.stop
    proc = subprocess.Popen([*cg.wrapper(), *cmd, "serve", "--port", str(_free_port())], env=env, cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, seen = time.monotonic() + 60, ""
        while time.monotonic() < deadline and "worker" not in seen and proc.poll() is None:
            time.sleep(0.2)
            seen = (tmp_path / "serve.log").read_text()
        seen = (tmp_path / "serve.log").read_text()  # what it printed, even if it has stopped since
        assert "papers serve: 1 worker instead of 2" in seen, seen[-2000:]
    finally:
        Served.stop(proc, log)
        cg.remove()
