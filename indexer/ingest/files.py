"""Streaming a line-per-record file (plain or gzip) into the store, in constant memory.

Shared by the JSONL and Kaggle sources: they differ only in how one line becomes a
:class:`PaperRecord`. Lines are read one at a time, parsed, grouped into batches and
upserted one transaction per batch; a bad line is skipped and counted by line number.
The progress bar (tqdm, stderr) follows bytes of the file on disk, so its rate and ETA
are right for gzip too; it is off when ``progress=False`` or stderr is not a terminal.
"""

from __future__ import annotations

import gzip
import io
import itertools
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from sqlalchemy import Engine

from indexer.errors import InvalidInput
from indexer.ingest.runs import IngestReport, recorded_run
from indexer.records import InvalidRecord, PaperRecord
from indexer.settings import Settings
from indexer.store import DEFAULT_BATCH, UpsertCounts, open_database, upsert_batch

try:  # orjson parses our lines ~3x faster; json is the fallback
    import orjson

    _loads: Callable[[bytes], object] = orjson.loads
    _JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)
except ImportError:  # pragma: no cover
    import json

    _loads = json.loads
    _JSON_ERRORS = (ValueError,)

LineParser = Callable[[dict], PaperRecord]


def _open(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    """(raw file for progress, decompressed byte stream)."""
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    head = raw.read(2)
    raw.seek(0)
    if head == b"\x1f\x8b":
        return raw, io.BufferedReader(gzip.GzipFile(fileobj=raw), buffer_size=1 << 20)
    return raw, raw


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
        disable=not (enabled and sys.stderr.isatty()), mininterval=0.5, smoothing=0.1,
    )


def iter_records(
    lines: Iterator[bytes], parse: LineParser, report: IngestReport
) -> Iterator[PaperRecord]:
    """Parse lines into records; bad ones are counted on ``report`` by line number."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        report.records += 1
        try:
            obj = _loads(line)
        except _JSON_ERRORS as e:
            report.skip(f"line {lineno}: invalid JSON ({str(e)[:80]})")
            continue
        if not isinstance(obj, dict):
            report.skip(f"line {lineno}: not a JSON object")
            continue
        try:
            rec = parse(obj)
        except (InvalidRecord, KeyError, TypeError, ValueError, AttributeError) as e:
            label = obj.get("id") if isinstance(obj.get("id"), str) else None
            report.skip(f"line {lineno}{f' ({label})' if label else ''}: {type(e).__name__}: {str(e)[:120]}")
            continue
        try:
            rec.validate()
        except InvalidRecord as e:
            report.skip(f"line {lineno}: {e}")
            continue
        yield rec


class _Writer(threading.Thread):
    """Upserts batches from a bounded queue, one transaction each.

    Why a thread: SQLite and zlib release the GIL, so writing batch N overlaps parsing
    batch N+1 on a second core. The queue is bounded (memory stays constant) and the
    batches are written in order, so the result is exactly that of a sequential run.
    """

    def __init__(self, engine: Engine, on_written: Callable[[UpsertCounts], None]):
        super().__init__(name="ingest-writer", daemon=True)
        self.engine = engine
        self.on_written = on_written
        self.queue: queue.Queue[list[PaperRecord] | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None

    def run(self) -> None:
        while (batch := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain after a failure so the producer never blocks
            try:
                with self.engine.begin() as conn:
                    counts = upsert_batch(conn, batch, validated=True)
                self.on_written(counts)
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                self.error = e

    def put(self, batch: list[PaperRecord]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(batch)

    def finish(self) -> None:
        self.queue.put(None)
        self.join()
        if self.error is not None:
            raise self.error


def _local_batches(
    path: Path, parse: LineParser, report: IngestReport, limit: int | None, batch_size: int
) -> Iterator[tuple[list[PaperRecord], int]]:
    """(validated records, bytes of the file read so far), parsed in this process."""
    raw, stream = _open(path)
    with raw:
        lines: Iterator[bytes] = iter(stream)
        if limit is not None:
            lines = itertools.islice(lines, limit)
        batch: list[PaperRecord] = []
        try:
            for rec in iter_records(lines, parse, report):
                batch.append(rec)
                if len(batch) >= batch_size:
                    yield batch, raw.tell()
                    batch = []
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            # a truncated / corrupt gzip stream: keep what was read, report the rest
            report.skip(f"after record {report.records}: unreadable file ({type(e).__name__}: {e})")
        yield batch, raw.tell()


def ingest_file(
    settings: Settings,
    path: Path | str,
    parse: LineParser,
    *,
    kind: str,
    progress: bool = True,
    batch_size: int = DEFAULT_BATCH,
    engine: Engine | None = None,
    limit: int | None = None,
) -> IngestReport:
    """Stream ``path`` through ``parse`` into the database; one run row in ingest_runs."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist or is not a file")
    engine = engine or open_database(settings)
    size = path.stat().st_size
    report = IngestReport(kind=kind, source=str(path))
    written = UpsertCounts()  # the writer thread's counts, merged into report at the end
    t0 = time.perf_counter()
    with recorded_run(engine, report):
        batches = _local_batches(path, parse, report, limit, batch_size)
        with _progress_bar(size, path.name, progress) as bar:
            writer = _Writer(engine, written.add)
            writer.start()
            last_pos = 0
            try:
                for batch, pos in batches:
                    if batch:
                        writer.put(batch)
                    bar.update(pos - last_pos)
                    bar.set_postfix_str(f"{report.records:,} papers", refresh=False)
                    last_pos = pos
            finally:
                batches.close()
                writer.finish()
                report.add(written)
        report.seconds = time.perf_counter() - t0
    return report
