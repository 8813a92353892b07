"""The one write path (indexer.ingest.store.upsert_papers) on real papers from the bundled sample.

Covers: insert, idempotency (unchanged rows keep their seq), newer versions update,
older versions are ignored, missing optional fields keep stored values, deletion notices
mark papers withdrawn, invalid records are skipped and counted, paper_categories stays in
sync, seq is strictly increasing, a failing batch leaves nothing behind, stats, and the
same upsert on a real PostgreSQL server when one can be started.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from indexer.ingest.records import PaperRecord
from indexer.ingest.store import content_hash, database_stats, open_database, upsert_papers
from indexer.models import Paper, PaperCategory
from tests.conftest import make_settings, sample_records


@pytest.fixture()
def engine(tmp_path):
    return open_database(make_settings(tmp_path))


def rows(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r.id: r._asdict() for r in conn.execute(select(*Paper.__table__.columns))}


def categories(engine) -> set[tuple[str, str]]:
    with engine.connect() as conn:
        return {(r.paper_id, r.category) for r in conn.execute(select(PaperCategory))}


def test_insert_then_same_input_changes_nothing(engine):
    recs = sample_records(300)
    first = upsert_papers(engine, copy.deepcopy(recs), batch_size=64)
    assert (first.inserted, first.updated, first.unchanged, first.skipped) == (300, 0, 0, 0)
    before = rows(engine)
    assert sorted(r["seq"] for r in before.values()) == list(range(1, 301))
    again = upsert_papers(engine, copy.deepcopy(recs), batch_size=64)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 300)
    assert rows(engine) == before  # same seq, same ingested_at: nothing was written


def test_stored_fields_and_content_hash(engine):
    rec = sample_records(1)[0]
    upsert_papers(engine, [copy.deepcopy(rec)])
    row = rows(engine)[rec.id]
    assert row["title"] == rec.title and row["abstract"] == rec.abstract
    assert row["authors"] == rec.authors and row["categories"] == rec.categories
    assert row["primary_category"] == rec.categories[0]
    assert row["published"] == rec.published and row["withdrawn"] is False
    expected = hashlib.sha1(f"{rec.title}\x1f{rec.abstract}\x1f{' '.join(rec.categories)}".encode()).hexdigest()
    assert row["content_hash"] == expected == content_hash(rec.title, rec.abstract, rec.categories)
    assert categories(engine) == {(rec.id, c) for c in rec.categories}


def test_newer_version_updates_fields_categories_and_seq(engine):
    recs = sample_records(20)
    upsert_papers(engine, copy.deepcopy(recs))
    before = rows(engine)
    target = copy.deepcopy(recs[5])
    target.title = target.title + " (revised)"
    target.categories = ["math.CO", *target.categories[:1]]
    target.updated = date(2026, 9, 1)
    target.versions = 2
    target.doi = "10.1000/xyz123"
    counts = upsert_papers(engine, [target])
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 1, 0)
    after = rows(engine)
    row = after[target.id]
    assert row["title"].endswith("(revised)") and row["versions"] == 2 and row["updated"] == date(2026, 9, 1)
    assert row["categories"] == target.categories and row["primary_category"] == "math.CO"
    assert row["doi"] == "10.1000/xyz123"
    assert row["seq"] == max(r["seq"] for r in before.values()) + 1
    assert row["content_hash"] != before[target.id]["content_hash"]
    assert {c for p, c in categories(engine) if p == target.id} == set(target.categories)
    others = {k: v for k, v in after.items() if k != target.id}
    assert others == {k: v for k, v in before.items() if k != target.id}


def test_missing_optional_fields_keep_stored_values_and_old_versions_are_ignored(engine):
    rec = sample_records(1)[0]
    rich = copy.deepcopy(rec)
    rich.versions, rich.doi, rich.journal_ref, rich.datestamp = 3, "10.1/abc", "J. Test 1 (2026)", date(2026, 8, 1)
    upsert_papers(engine, [rich])
    # same content from a source without doi/journal-ref/datestamp: nothing to change
    plain = copy.deepcopy(rec)
    plain.versions = 3
    assert upsert_papers(engine, [plain]).unchanged == 1
    # an older version (v1) arriving later must not overwrite v3
    old = copy.deepcopy(rec)
    old.title = "An outdated title"
    assert upsert_papers(engine, [old]).unchanged == 1
    # an older datestamp of the same version count is stale too
    stale = copy.deepcopy(rich)
    stale.title, stale.datestamp = "Stale metadata", date(2020, 1, 1)
    assert upsert_papers(engine, [stale]).unchanged == 1
    row = rows(engine)[rec.id]
    assert row["title"] == rec.title and row["doi"] == "10.1/abc" and row["journal_ref"] == "J. Test 1 (2026)"


def test_deletion_notice_marks_withdrawn_and_keeps_the_row(engine):
    recs = sample_records(3)
    upsert_papers(engine, copy.deepcopy(recs))
    seq_before = rows(engine)[recs[1].id]["seq"]
    notice = PaperRecord(id=recs[1].id, title="", abstract="", authors=[], categories=[],
                         published=date(2026, 9, 2), datestamp=date(2026, 9, 2), withdrawn=True)
    unknown = PaperRecord(id="2609.99999", title="", abstract="", authors=[], categories=[],
                          published=date(2026, 9, 2), withdrawn=True)
    counts = upsert_papers(engine, [notice, unknown])
    assert counts.updated == 1 and counts.withdrawn == 1 and counts.inserted == 0
    row = rows(engine)[recs[1].id]
    assert row["withdrawn"] is True and row["title"] == recs[1].title and row["seq"] > seq_before
    assert "2609.99999" not in rows(engine)
    assert upsert_papers(engine, [copy.deepcopy(notice)]).unchanged == 1  # already withdrawn
    assert database_stats(engine)["withdrawn"] == 1


def test_invalid_records_are_skipped_with_their_id(engine):
    recs = sample_records(4)
    no_title = copy.deepcopy(recs[1])
    no_title.title = "   "
    bad_id = copy.deepcopy(recs[2])
    bad_id.id = "not-an-id"
    counts = upsert_papers(engine, [recs[0], no_title, bad_id, recs[3]])
    assert (counts.inserted, counts.skipped) == (2, 2)
    assert any(recs[1].id in e and "title" in e for e in counts.errors)
    assert any("not-an-id" in e for e in counts.errors)
    assert set(rows(engine)) == {recs[0].id, recs[3].id}


def test_versions_and_urls_are_normalised_to_one_row(engine):
    rec = sample_records(1)[0]
    a, b = copy.deepcopy(rec), copy.deepcopy(rec)
    a.id = f"arXiv:{rec.id}v1"
    b.id = f"https://arxiv.org/abs/{rec.id}v2"
    b.title = rec.title + " v2"
    b.versions = 2
    counts = upsert_papers(engine, [a, b])  # same batch: insert then update
    assert (counts.inserted, counts.updated) == (1, 1)
    assert list(rows(engine)) == [rec.id] and rows(engine)[rec.id]["title"].endswith(" v2")


def test_rows_cover_every_paper_column():
    from indexer.ingest.store import _WRITE_COLUMNS, ROW_COLUMNS

    assert set(_WRITE_COLUMNS) == {c.name for c in Paper.__table__.columns}
    assert _WRITE_COLUMNS[: len(ROW_COLUMNS)] == ROW_COLUMNS


def test_json_stored_by_another_serializer_is_not_a_change(engine):
    """Rows whose JSON text was written with other spacing (json.dumps) stay unchanged."""
    rec = sample_records(1)[0]
    rec.authors = ["Zoë Ångström", "B. Author"]
    upsert_papers(engine, [copy.deepcopy(rec)])
    before = rows(engine)[rec.id]
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE papers SET authors = ?, categories = ? WHERE id = ?",
            (json.dumps(rec.authors), json.dumps(rec.categories), rec.id),
        )
    assert upsert_papers(engine, [copy.deepcopy(rec)]).unchanged == 1
    assert rows(engine)[rec.id] == before


def test_bulk_settings_are_put_back(engine):
    upsert_papers(engine, sample_records(5))
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw.execute("PRAGMA cache_size").fetchone()[0] == -2000
        assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000


def test_rows_must_be_encoded_for_the_dialect(engine):
    from indexer.ingest.store import encode_record, upsert_rows

    rec = sample_records(1)[0].validate()
    with engine.begin() as conn, pytest.raises(TypeError):
        upsert_rows(conn, [encode_record(rec, sqlite=False)])
    with engine.begin() as conn:
        assert upsert_rows(conn, [encode_record(rec, sqlite=True)]).inserted == 1


def test_a_failing_batch_is_not_half_written(engine, monkeypatch):
    import indexer.ingest.store as store

    recs = sample_records(30)
    upsert_papers(engine, copy.deepcopy(recs[:10]))
    calls = {"n": 0}
    real = store._sync_categories

    def fail_second(conn, changes, inserted):
        calls["n"] += 1
        real(conn, changes, inserted)  # the papers rows are already written in this transaction
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "_sync_categories", fail_second)
    with pytest.raises(RuntimeError):
        upsert_papers(engine, copy.deepcopy(recs[10:]), batch_size=10)
    stored = rows(engine)
    assert set(stored) == {r.id for r in recs[:20]}  # batch 1 committed, batch 2 rolled back
    assert {p for p, _ in categories(engine)} == set(stored)


def test_seq_is_strictly_increasing_across_batches_and_updates(engine):
    recs = sample_records(50)
    upsert_papers(engine, copy.deepcopy(recs[:25]), batch_size=7)
    changed = copy.deepcopy(recs[:5])
    for r in changed:
        r.abstract += " Extended."
    upsert_papers(engine, changed + copy.deepcopy(recs[25:]), batch_size=7)
    seqs = [r["seq"] for r in rows(engine).values()]
    assert len(seqs) == len(set(seqs)) == 50 and max(seqs) == 55


def test_database_stats(engine):
    recs = sample_records(100)
    upsert_papers(engine, copy.deepcopy(recs))
    stats = database_stats(engine)
    assert stats["papers"] == 100 and stats["withdrawn"] == 0 and stats["max_seq"] == 100
    assert stats["categories"] == len({c for r in recs for c in r.categories})
    assert stats["published_max"] == max(r.published for r in recs).isoformat()
    json.dumps(stats)


def test_same_upsert_on_postgresql(tmp_path):
    import shutil
    import subprocess
    import tempfile

    from tests.pg_server import start_server

    base = Path(tempfile.mkdtemp(prefix="papers-pg-"))  # outside pytest's 0700 tmp: initdb runs as postgres
    base.chmod(0o755)
    try:
        server = start_server(base / "pg")
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"no PostgreSQL server available: {e}")
    try:
        settings = make_settings(tmp_path / "d", database_url=server.create_database("store_test"))
        engine = open_database(settings)
        recs = sample_records(120)
        assert upsert_papers(engine, copy.deepcopy(recs), batch_size=50).inserted == 120
        assert upsert_papers(engine, copy.deepcopy(recs), batch_size=50).unchanged == 120
        changed = copy.deepcopy(recs[3])
        changed.title += " (PG)"
        changed.categories = ["cs.DB"]
        assert upsert_papers(engine, [changed]).updated == 1
        stored = rows(engine)
        assert stored[changed.id]["title"].endswith("(PG)") and stored[changed.id]["seq"] == 121
        assert {c for p, c in categories(engine) if p == changed.id} == {"cs.DB"}
        notice = PaperRecord(id=recs[5].id, title="", abstract="", authors=[], categories=[],
                             published=date(2026, 9, 2), datestamp=date(2026, 9, 2), withdrawn=True)
        v2 = copy.deepcopy(recs[6])
        v2.title, v2.versions = v2.title + " v2", 2
        older = copy.deepcopy(recs[6])
        older.title = "stale"
        counts = upsert_papers(engine, [v2, notice, older, copy.deepcopy(recs[7])])
        assert (counts.updated, counts.withdrawn, counts.unchanged) == (2, 1, 2)
        stored = rows(engine)
        assert stored[recs[5].id]["withdrawn"] is True and stored[recs[5].id]["title"] == recs[5].title
        assert stored[recs[5].id]["seq"] == 123 and stored[recs[6].id]["title"] == v2.title
        assert database_stats(engine)["papers"] == 120
        engine.dispose()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)



def test_concurrent_writers_never_share_a_seq(tmp_path):
    import threading

    settings = make_settings(tmp_path)
    recs = sample_records(400)
    engines = [open_database(settings), open_database(settings).execution_options()]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            upsert_papers(engines[i], copy.deepcopy(recs[i::2]), batch_size=10)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    seqs = sorted(r["seq"] for r in rows(open_database(settings)).values())
    assert seqs == list(range(1, 401))
