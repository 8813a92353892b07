"""File sources: our JSONL (the bundled 8k sample, plain and gzip) and real Kaggle
snapshot lines (tests/fixtures/arxiv/kaggle_sample.jsonl), including bad lines,
truncated files, re-ingest idempotency and the ingest_runs record."""

from __future__ import annotations

import gzip
import itertools
import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from indexer.errors import InvalidInput
from indexer.ingest.jsonl import ingest_jsonl
from indexer.ingest.kaggle import ingest_kaggle
from indexer.ingest.store import open_database
from indexer.models import IngestRun, Paper, PaperCategory
from tests.conftest import SAMPLE, make_settings


def sample_lines(n: int) -> list[bytes]:
    with gzip.open(SAMPLE, "rb") as f:
        return list(itertools.islice(f, n))


def db_rows(settings) -> dict[str, dict]:
    with open_database(settings).connect() as conn:
        return {r.id: r._asdict() for r in conn.execute(select(*Paper.__table__.columns))}


def runs(settings) -> list[dict]:
    with open_database(settings).connect() as conn:
        return [dict(r) for r in conn.execute(select(IngestRun).order_by(IngestRun.id)).mappings()]


def test_bundled_sample_round_trip_and_idempotent(tmp_path):
    settings = make_settings(tmp_path)
    report = ingest_jsonl(settings, SAMPLE, progress=False, batch_size=1500)
    assert (report.inserted, report.skipped, report.records) == (8000, 0, 8000)
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        first = [json.loads(line) for line in itertools.islice(f, 50)]
    stored = db_rows(settings)
    assert len(stored) == 8000
    for src in first:
        row = stored[src["id"]]
        assert row["title"] == src["title"] and row["abstract"] == src["abstract"]
        assert row["authors"] == src["authors"] and row["categories"] == src["categories"]
        assert row["published"] == date.fromisoformat(src["published"])
        assert row["updated"] == (date.fromisoformat(src["updated"]) if src["updated"] else None)
    with open_database(settings).connect() as conn:
        pairs = conn.execute(select(func.count()).select_from(PaperCategory)).scalar_one()
    assert pairs == sum(len(set(r["categories"])) for r in stored.values())
    again = ingest_jsonl(settings, SAMPLE, progress=False)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 8000)
    assert db_rows(settings) == stored
    recorded = runs(settings)
    assert [(r["kind"], r["status"], r["inserted"], r["unchanged"]) for r in recorded] == [
        ("jsonl", "ok", 8000, 0), ("jsonl", "ok", 0, 8000)
    ]
    assert all(r["finished_at"] >= r["started_at"] for r in recorded)


def test_plain_and_gzip_files_give_the_same_rows(tmp_path):
    lines = sample_lines(300)
    plain = tmp_path / "p.jsonl"
    plain.write_bytes(b"".join(lines))
    packed = tmp_path / "p.jsonl.gz"
    packed.write_bytes(gzip.compress(b"".join(lines)))
    a, b = make_settings(tmp_path / "a"), make_settings(tmp_path / "b")
    ingest_jsonl(a, plain, progress=False)
    ingest_jsonl(b, packed, progress=False)
    strip = lambda rows: {k: {f: v for f, v in r.items() if f != "ingested_at"} for k, r in rows.items()}  # noqa: E731
    assert strip(db_rows(a)) == strip(db_rows(b)) and len(db_rows(a)) == 300


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "parser-process"])
def test_bad_lines_are_skipped_counted_and_recorded(tmp_path, parallel):
    good = sample_lines(6)
    no_title = json.loads(good[2])
    no_title["title"] = ""
    bad_id = json.loads(good[3])
    bad_id["id"] = "12345"
    lines = [
        good[0],
        b'{"id": "2401.00001", "title": "broken\n',  # invalid JSON (line 2)
        b"\xff\xfe\x00garbage\n",  # undecodable bytes (line 3)
        json.dumps(no_title).encode() + b"\n",  # line 4
        json.dumps(bad_id).encode() + b"\n",  # line 5
        b"[1, 2, 3]\n",  # not an object (line 6)
        b"\n",  # blank lines are not records
        good[1],
        b'{"id": "2401.00002", "title": "x", "published": "yesterday"}\n',  # bad date (line 9)
        good[4],
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"".join(lines))
    settings = make_settings(tmp_path / "d")
    report = ingest_jsonl(settings, path, progress=False, parallel=parallel, batch_size=2)
    assert (report.inserted, report.skipped, report.records) == (3, 6, 9)
    text = "\n".join(report.errors)
    for lineno in (2, 3, 4, 5, 6, 9):
        assert f"line {lineno}" in text
    assert no_title["id"] in text and "12345" in text
    assert set(db_rows(settings)) == {json.loads(good[i])["id"] for i in (0, 1, 4)}
    run = runs(settings)[-1]
    assert run["status"] == "ok" and run["skipped"] == 6 and len(run["errors"]) == 6
    assert "6 skipped" in report.summary()


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "parser-process"])
def test_error_list_is_capped_but_every_skip_counted(tmp_path, parallel):
    path = tmp_path / "junk.jsonl"
    path.write_bytes(b"not json\n" * 250 + sample_lines(1)[0])
    settings = make_settings(tmp_path / "d")
    report = ingest_jsonl(settings, path, progress=False, parallel=parallel, batch_size=7)
    assert report.skipped == 250 and report.inserted == 1 and len(report.errors) == 100
    assert len(runs(settings)[-1]["errors"]) == 100


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "parser-process"])
def test_truncated_gzip_keeps_what_was_readable(tmp_path, parallel):
    data = gzip.compress(b"".join(sample_lines(2000)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    settings = make_settings(tmp_path / "d")
    report = ingest_jsonl(settings, path, progress=False, batch_size=100, parallel=parallel)
    assert 500 < report.inserted < 2000
    assert any("unreadable file" in e for e in report.errors)
    assert len(db_rows(settings)) == report.inserted


def test_parser_process_and_in_process_give_the_same_database(tmp_path):
    """The pipeline (parser process + writer) is exactly a sequential run, re-run included."""
    lines = sample_lines(3000)
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"".join(lines[:1500]) + b"{broken\n" + b"".join(lines[1500:]))
    a, b = make_settings(tmp_path / "a"), make_settings(tmp_path / "b")
    ra = ingest_jsonl(a, path, progress=False, parallel=False, batch_size=256)
    rb = ingest_jsonl(b, path, progress=False, parallel=True, batch_size=256)
    assert ra.as_dict() | {"run_id": 0, "seconds": 0} == rb.as_dict() | {"run_id": 0, "seconds": 0}
    assert (rb.inserted, rb.skipped, rb.records) == (3000, 1, 3001) and "line 1501" in rb.errors[0]
    strip = lambda rows: {k: {f: v for f, v in r.items() if f != "ingested_at"} for k, r in rows.items()}  # noqa: E731
    assert strip(db_rows(a)) == strip(db_rows(b))
    with open_database(a).connect() as ca, open_database(b).connect() as cb:
        pairs = [set(c.execute(select(PaperCategory.paper_id, PaperCategory.category)).all()) for c in (ca, cb)]
    assert pairs[0] == pairs[1] and len(pairs[0]) >= 3000
    before = db_rows(b)
    again = ingest_jsonl(b, path, progress=False, parallel=True, batch_size=256)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3000)
    assert db_rows(b) == before  # same seq, same ingested_at


def test_a_failing_parser_fails_the_run(tmp_path):
    from indexer.ingest.files import ingest_file
    from indexer.ingest.jsonl import parse_jsonl_object

    calls = {"n": 0}

    def explode_later(obj):
        calls["n"] += 1  # counted in the parser process (forked: its own copy)
        if calls["n"] > 250:
            raise RuntimeError("parser bug")
        return parse_jsonl_object(obj)

    path = tmp_path / "p.jsonl"
    path.write_bytes(b"".join(sample_lines(400)))
    settings = make_settings(tmp_path / "d")
    with pytest.raises(RuntimeError, match="parser bug"):
        ingest_file(settings, path, explode_later, kind="jsonl", progress=False, batch_size=100, parallel=True)
    assert runs(settings)[-1]["status"] == "failed"
    assert len(db_rows(settings)) == 200  # the batches before the failure, whole
    assert calls["n"] == 0  # nothing parsed in this process


def test_a_failing_writer_stops_the_parser_process(tmp_path, monkeypatch):
    import multiprocessing

    import indexer.ingest.files as files

    real, calls = files.upsert_rows, {"n": 0}

    def fail_third(conn, rows, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")
        return real(conn, rows, *args)

    monkeypatch.setattr(files, "upsert_rows", fail_third)
    settings = make_settings(tmp_path / "d")
    with pytest.raises(RuntimeError, match="disk on fire"):
        ingest_jsonl(settings, SAMPLE, progress=False, batch_size=100, parallel=True)
    assert not multiprocessing.active_children()  # the parser was told to stop and reaped
    assert len(db_rows(settings)) == 200 and runs(settings)[-1]["status"] == "failed"


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(InvalidInput):
        ingest_jsonl(make_settings(tmp_path), tmp_path / "nope.jsonl", progress=False)
    with pytest.raises(InvalidInput):
        ingest_kaggle(make_settings(tmp_path), tmp_path, progress=False)


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path, capsys):
    ingest_jsonl(make_settings(tmp_path), SAMPLE, progress=True, batch_size=4000)
    assert capsys.readouterr().err == ""


# -- Kaggle ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kaggle_file(arxiv_fixtures) -> Path:
    return arxiv_fixtures / "kaggle_sample.jsonl"


def test_kaggle_sample_fields(tmp_path, kaggle_file):
    settings = make_settings(tmp_path)
    report = ingest_kaggle(settings, kaggle_file, progress=False)
    assert (report.inserted, report.skipped) == (200, 0)
    src = {json.loads(line)["id"]: json.loads(line) for line in kaggle_file.read_text().splitlines()}
    stored = db_rows(settings)
    assert set(stored) == set(src)
    first = stored["0704.0001"]
    assert first["title"].startswith("Calculation of prompt diphoton production cross sections")
    assert first["authors"][:2] == ["C. Balázs", "E. L. Berger"]
    assert first["categories"] == ["hep-ph"] and first["versions"] == 2
    assert first["published"] == date(2007, 4, 2) and first["updated"] == date(2007, 7, 24)
    assert first["doi"] == "10.1103/PhysRevD.76.013009"
    assert first["journal_ref"] == "Phys.Rev.D76:013009,2007"
    assert first["datestamp"] == date.fromisoformat(src["0704.0001"]["update_date"])
    assert "\n" not in first["abstract"] and first["abstract"] == " ".join(src["0704.0001"]["abstract"].split())
    for pid, obj in src.items():
        row = stored[pid]
        assert row["versions"] == len(obj["versions"])
        assert row["categories"] == obj["categories"].split()
        assert row["license"] == (obj["license"] or None)
        assert len(row["authors"]) == len(obj["authors_parsed"])


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "parser-process"])
def test_kaggle_gzip_and_reingest(tmp_path, kaggle_file, parallel):
    packed = tmp_path / "snap.json.gz"
    packed.write_bytes(gzip.compress(kaggle_file.read_bytes()))
    settings = make_settings(tmp_path / "d")
    assert ingest_kaggle(settings, packed, progress=False, batch_size=33, parallel=parallel).inserted == 200
    again = ingest_kaggle(settings, kaggle_file, progress=False, parallel=parallel)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 200)


def test_kaggle_newer_snapshot_updates_older_is_ignored(tmp_path, kaggle_file):
    lines = kaggle_file.read_text().splitlines()[:3]
    settings = make_settings(tmp_path / "d")
    path = tmp_path / "k.jsonl"
    path.write_text("\n".join(lines) + "\n")
    ingest_kaggle(settings, path, progress=False)
    newer = json.loads(lines[0])
    newer["title"] = newer["title"] + " (v3)"
    newer["versions"].append({"version": "v3", "created": "Mon, 1 Jun 2026 10:00:00 GMT"})
    newer["update_date"] = "2026-06-02"
    path.write_text(json.dumps(newer) + "\n")
    report = ingest_kaggle(settings, path, progress=False)
    assert report.updated == 1
    row = db_rows(settings)[newer["id"]]
    assert row["versions"] == 3 and row["updated"] == date(2026, 6, 1) and row["title"].endswith("(v3)")
    path.write_text(lines[0] + "\n")  # the old snapshot line again: stale, ignored
    assert ingest_kaggle(settings, path, progress=False).unchanged == 1
    assert db_rows(settings)[newer["id"]]["versions"] == 3
