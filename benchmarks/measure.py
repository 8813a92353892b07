"""Small measuring helpers shared by the benchmarks: percentiles, timers, peak memory.

Why child processes for memory: ``ru_maxrss`` is a high-water mark for the whole
process, so a step measured inside the harness would inherit everything the harness
loaded before. Steps whose memory matters run in a fresh interpreter
(:func:`run_step`) and report their own peak.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank-with-interpolation percentile of ``values`` (p in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def latency_ms(fn: Callable[[object], object], items: Iterable[object], warmup: int = 2) -> dict:
    """Call ``fn`` on every item; return p50/p95/p99/mean in milliseconds and the count."""
    items = list(items)
    for it in items[:warmup]:
        fn(it)
    times = []
    for it in items:
        t0 = time.perf_counter()
        fn(it)
        times.append((time.perf_counter() - t0) * 1000.0)
    return summarize(times)


def summarize(times_ms: list[float]) -> dict:
    return {
        "n": len(times_ms),
        "p50_ms": round(percentile(times_ms, 50), 3),
        "p95_ms": round(percentile(times_ms, 95), 3),
        "p99_ms": round(percentile(times_ms, 99), 3),
        "mean_ms": round(sum(times_ms) / len(times_ms), 3) if times_ms else float("nan"),
    }


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB.

    VmHWM, not ``ru_maxrss``: Linux keeps ``ru_maxrss`` across ``execve``, so a step
    forked from a harness holding 1M records would report the harness's peak; VmHWM
    belongs to the new address space.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def vm_rss_mb(pid: int) -> float | None:
    """Current resident memory of ``pid`` from /proc (None when unavailable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        return None
    return None


def run_step(step: str, args: dict, timeout: float | None = None) -> dict:
    """Run ``benchmarks.steps.<step>`` in a fresh interpreter; return its JSON result.

    The child prints one JSON object on its last stdout line; its peak RSS is added by
    the child itself.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("HF_HUB_OFFLINE", "1")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.steps", step, json.dumps(args, default=str)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr or proc.stdout).strip().splitlines() or [""]
        tail = "\n".join(err[-25:])
        raise RuntimeError(f"step {step} failed (exit {proc.returncode}): {err[-1]}\n{tail}")
    return json.loads(lines[-1])
