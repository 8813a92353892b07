"""Render a benchmark report (the dict written to report.json) as Markdown.

Why a fixed layout: docs/performance.md pastes these tables, and runs at different
corpus sizes are compared side by side, so the same figure is always in the same place.
"""

from __future__ import annotations

from typing import Any

SHAPE_NAMES = {"1w": "1 word", "3w": "3 words", "10w": "10 words", "60t": "60 tokens"}


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 100 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _latency_table(title: str, rows: dict[str, dict]) -> list[str]:
    out = [f"**{title}**", "", "| query | n | p50 ms | p95 ms | p99 ms | top-10 overlap |", "|---|---|---|---|---|---|"]
    for shape, name in SHAPE_NAMES.items():
        s = rows.get(shape)
        if isinstance(s, dict) and "p50_ms" in s:
            out.append(f"| {name} | {s['n']} | {_fmt(s['p50_ms'])} | {_fmt(s['p95_ms'])} | {_fmt(s['p99_ms'])} | {_fmt(s.get('top10_overlap'))} |")
    return [*out, ""]


def _flat(d: dict, prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for k, v in d.items():
        if k in ("trace", "files"):
            continue
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            items.extend(_flat(v, key + "."))
        else:
            items.append((key, v))
    return items


def to_markdown(report: dict) -> str:
    m = report.get("machine", {})
    r = report.get("results", {})
    lines = [
        f"# Benchmark report: corpus `{report['corpus']}` ({report['records']:,} papers{', quick' if report.get('quick') else ''})",
        "",
        f"- run: {report['started']} → {report['finished']}",
        f"- machine: {m.get('nproc')} cores, {m.get('ram_gb')} GB RAM, {m.get('cpu')}, Python {m.get('python')}; GPU: {m.get('gpu')}",
        f"- load average at the end: {', '.join(f'{x:.2f}' for x in m.get('load_avg', ()))} (the machine is shared; ratios are more stable than absolutes)",
        f"- initial build over {report.get('base_papers', 0):,} papers; the rest are the nightly increment",
        "",
        "## Targets",
        "",
        "| target | value | limit | result | how |",
        "|---|---|---|---|---|",
    ]
    for t in report.get("targets", []):
        res = "n/a" if t["pass"] is None else ("PASS" if t["pass"] else "FAIL")
        lines.append(f"| {t['target']} | {_fmt(t['value'])} {t['unit']} | {t['op']} {_fmt(t['limit'])} | {res} | {t['how']} |")
    lines.append("")
    if isinstance(r.get("search"), dict) and "error" not in r["search"]:
        lines += ["## Search latency", ""]
        lines += _latency_table(f"BM25 index component (parse + top 10), {_fmt(r['search'].get('docs'))} docs", r["search"])
    if isinstance(r.get("rank-bm25"), dict) and "error" not in r["rank-bm25"]:
        lines += _latency_table(
            f"Baseline rank-bm25 BM25Okapi, same tokens (build {_fmt(r['rank-bm25'].get('build_s'))} s, peak {_fmt(r['rank-bm25'].get('peak_rss_mb'))} MB)",
            r["rank-bm25"],
        )
    eng = r.get("engine")
    if isinstance(eng, dict) and "error" not in eng:
        for mode in ("bm25", "dense", "hybrid"):
            if mode in eng:
                lines += _latency_table(f"SearchEngine.search mode={mode} (size 10, rows + highlights)", eng[mode])
        if eng.get("note"):
            lines += [f"_{eng['note']}_", ""]
    lines += ["## All figures", ""]
    for name, res in r.items():
        lines += [f"### {name}", ""]
        if not isinstance(res, dict):
            lines += [f"{res}", ""]
            continue
        if "error" in res:
            lines += [f"not measured: `{res['error'].splitlines()[0][:300]}`", ""]
            continue
        lines += ["| figure | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in _flat(res)]
        lines.append("")
    return "\n".join(lines)
