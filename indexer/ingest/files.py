"""Streaming a line-per-record file (plain or gzip) into the store, in constant memory.

Shared by the JSONL and Kaggle sources: they differ only in how one line becomes a
:class:`PaperRecord`. Lines are read one at a time, parsed, validated and encoded into
rows (:func:`indexer.ingest.store.encode_record`), grouped into batches and upserted one
transaction per batch (:func:`indexer.ingest.store.upsert_rows`); a bad line is skipped and
counted by line number.

The pipeline: a forked parser process reads, decompresses, parses and encodes batch N+1
while this process writes batch N, so two cores work (the parser's share of the CPU time
is ~1/2 for JSONL, ~3/5 for Kaggle; SQLite's is most of the rest).
Batches go through a pipe (one in flight: memory stays constant whatever the file size)
and are written in file order, so the result is exactly that of a sequential run. The
parser exits when the pipe's reader goes away, including when this process is killed.
Small files, or where ``fork`` is unavailable, are parsed in this process instead.

The progress bar (tqdm, stderr) follows bytes of the file on disk, so its rate and ETA
are right for gzip too; it is off when ``progress=False`` or stderr is not a terminal.
"""

from __future__ import annotations

import gzip
import io
import itertools
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Generator, Iterator
from multiprocessing.connection import Connection as PipeEnd
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine
from tqdm import tqdm

from indexer.errors import InvalidInput
from indexer.ingest.records import InvalidRecord, PaperRecord
from indexer.ingest.runs import IngestReport, recorded_run
from indexer.ingest.store import (
    DEFAULT_BATCH,
    MAX_ERRORS,
    Row,
    bulk_connection,
    encode_record,
    open_database,
    upsert_rows,
)
from indexer.settings import Settings

try:  # orjson parses our lines ~3x faster; json is the fallback
    import orjson

    _loads: Callable[[bytes], object] = orjson.loads
    _JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)
except ImportError:  # pragma: no cover
    import json

    _loads = json.loads
    _JSON_ERRORS = (ValueError,)

LineParser = Callable[[dict], PaperRecord]
# (encoded rows, lines read, lines skipped, skip reasons, bytes of the file read so far)
Chunk = tuple[list[Row], int, int, list[str], int]

PARALLEL_MIN_BYTES = 1 << 20  # smaller files: a parser process is not worth starting
PARSE_AHEAD = 3  # chunks the parser process may have ready before the importer takes them
_UNREADABLE = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError
_PARSE_ERRORS = (InvalidRecord, KeyError, TypeError, ValueError, AttributeError)


def _open(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    """(raw file for progress, decompressed byte stream)."""
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    head = raw.read(2)
    raw.seek(0)
    if head == b"\x1f\x8b":
        return raw, io.BufferedReader(gzip.GzipFile(fileobj=raw), buffer_size=1 << 20)
    return raw, raw


def _progress_bar(total: int, desc: str, enabled: bool) -> Any:
    return tqdm(
        total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
        disable=not (enabled and sys.stderr.isatty()), mininterval=0.5, smoothing=0.1,
    )


def parse_chunks(
    path: Path, parse: LineParser, *, sqlite: bool, limit: int | None = None, batch_size: int = DEFAULT_BATCH
) -> Generator[Chunk, None, None]:
    """The file as chunks of up to ``batch_size`` encoded rows (the parser process's work).

    Each chunk also carries the lines read and skipped since the previous one, the skip
    reasons (by line number; the first MAX_ERRORS of the file) and the file position. A
    truncated or corrupt gzip stream ends the file: what was read is kept, the rest is
    reported as one skip.
    """
    raw, stream = _open(path)
    read = skipped = total = kept = 0
    errors: list[str] = []
    rows: list[Row] = []

    def skip(reason: str) -> None:
        nonlocal skipped, kept
        skipped += 1
        if kept < MAX_ERRORS:
            kept += 1
            errors.append(reason)

    with raw:
        lines: Iterator[bytes] = iter(stream)
        if limit is not None:
            lines = itertools.islice(lines, limit)
        try:
            for lineno, line in enumerate(lines, 1):
                if not line or line.isspace():
                    continue
                read += 1
                try:
                    obj = _loads(line)
                except _JSON_ERRORS as e:
                    skip(f"line {lineno}: invalid JSON ({str(e)[:80]})")
                    continue
                if not isinstance(obj, dict):
                    skip(f"line {lineno}: not a JSON object")
                    continue
                try:
                    rec = parse(obj)
                except _PARSE_ERRORS as e:
                    label = obj.get("id") if isinstance(obj.get("id"), str) else None
                    skip(f"line {lineno}{f' ({label})' if label else ''}: {type(e).__name__}: {str(e)[:120]}")
                    continue
                try:
                    rows.append(encode_record(rec.validate(), sqlite=sqlite))
                except InvalidRecord as e:
                    skip(f"line {lineno}: {e}")
                    continue
                except _PARSE_ERRORS as e:
                    skip(f"line {lineno} ({rec.id}): {type(e).__name__}: {str(e)[:120]}")
                    continue
                if len(rows) >= batch_size:
                    total += read
                    yield rows, read, skipped, errors, raw.tell()
                    rows, errors, read, skipped = [], [], 0, 0
        except _UNREADABLE as e:
            skip(f"after record {total + read}: unreadable file ({type(e).__name__}: {e})")
        yield rows, read, skipped, errors, raw.tell()


# -- the parser process ----------------------------------------------------------------------


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _fork_context() -> Any:
    """multiprocessing's fork context where forking is safe and cheap (Linux), else None."""
    if sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
        return None
    return multiprocessing.get_context("fork")


class _Sender(threading.Thread):
    """The parser process's pipe writer: pickled chunks from a bounded queue.

    Why: a chunk is ~3 MB and the pipe holds 64 KB, so a direct send blocks until the
    importer has read it all; with this thread (blocked in write() without the GIL) the
    parser runs up to PARSE_AHEAD chunks ahead, and a slow batch on either side does not
    stall the other. Once the importer is gone (EPIPE) it drains, and put() raises.
    """

    def __init__(self, out: PipeEnd) -> None:
        super().__init__(name="ingest-parser-sender", daemon=True)
        self.out = out
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=PARSE_AHEAD)
        self.gone = False

    def run(self) -> None:
        while (data := self.queue.get()) is not None:
            if not self.gone:
                try:
                    self.out.send_bytes(data)
                except OSError:
                    self.gone = True

    def put(self, data: bytes) -> None:
        if self.gone:
            raise BrokenPipeError("the importer stopped reading")
        self.queue.put(data)

    def finish(self) -> None:
        self.queue.put(None)
        self.join()
        if self.gone:
            raise BrokenPipeError("the importer stopped reading")


def _parser_main(out: PipeEnd, other_end: PipeEnd, path: Path, parse: LineParser, kwargs: dict) -> None:
    """Body of the parser process: ("chunk", chunk) messages into the pipe, then ("end", None)."""
    other_end.close()  # else a killed importer would leave a reader and this process blocked
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the importer's to handle
    dump, protocol = pickle.dumps, pickle.HIGHEST_PROTOCOL
    sender = _Sender(out)
    sender.start()
    try:
        for chunk in parse_chunks(path, parse, **kwargs):
            sender.put(dump(("chunk", chunk), protocol))
        sender.put(dump(("end", None), protocol))
        sender.finish()
    except BrokenPipeError:
        return  # the importer is gone: nobody to report to
    except BaseException as e:  # noqa: BLE001 - reported to the importer, which raises
        try:
            sender.put(dump(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"), protocol))
            sender.finish()
        except OSError:
            pass
    finally:
        out.close()


class _ParserProcess:
    """Chunks of ``parse_chunks`` made by a forked process, received in order."""

    def __init__(self, ctx: Any, path: Path, parse: LineParser, **kwargs: Any) -> None:
        self.reader, writer = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(
            target=_parser_main, args=(writer, self.reader, path, parse, kwargs),
            name="papers-ingest-parser", daemon=True,
        )
        try:
            self.proc.start()
        except BaseException:
            self.reader.close()
            raise
        finally:
            writer.close()  # only the child writes: its exit is our EOF

    def __iter__(self) -> Iterator[Chunk]:
        while True:
            try:
                kind, payload = pickle.loads(self.reader.recv_bytes())
            except EOFError:
                self.proc.join(timeout=5)
                raise RuntimeError(f"the ingest parser process died (exit code {self.proc.exitcode})") from None
            if kind == "end":
                return
            if kind == "error":
                raise RuntimeError(f"the ingest parser process failed: {payload}")
            yield payload

    def close(self) -> None:
        self.reader.close()  # a parser still running gets EPIPE and exits
        self.proc.join(timeout=10)
        if self.proc.is_alive():  # pragma: no cover - stuck on the input file
            self.proc.terminate()
            self.proc.join()


def ingest_file(
    settings: Settings,
    path: Path | str,
    parse: LineParser,
    *,
    kind: str,
    progress: bool = True,
    batch_size: int = DEFAULT_BATCH,
    db: Engine | None = None,
    limit: int | None = None,
    parallel: bool | None = None,
) -> IngestReport:
    """Stream ``path`` through ``parse`` into the database; one run row in ingest_runs.

    ``parallel``: parse in a separate process (see module doc); None = when the file is
    at least PARALLEL_MIN_BYTES, there are two CPUs and fork is available.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist or is not a file")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    db = db or open_database(settings)
    size = path.stat().st_size
    ctx = _fork_context()
    if parallel is None:
        parallel = size >= PARALLEL_MIN_BYTES and _cpus() > 1
    kwargs: dict[str, Any] = {"sqlite": db.dialect.name == "sqlite", "limit": limit, "batch_size": batch_size}
    report = IngestReport(kind=kind, source=str(path))
    t0 = time.perf_counter()
    with recorded_run(db, report):
        parser = None
        if parallel and ctx is not None:
            try:
                parser = _ParserProcess(ctx, path, parse, **kwargs)
            except OSError:  # pragma: no cover - cannot fork (limits): parse here instead
                parser = None
        local = None if parser is not None else parse_chunks(path, parse, **kwargs)
        chunks = iter(parser) if parser is not None else local
        assert chunks is not None
        try:
            with bulk_connection(db) as conn, _progress_bar(size, path.name, progress) as bar:
                last_pos = 0
                for rows, read, skipped, errors, pos in chunks:
                    report.records += read
                    report.skipped += skipped
                    report.errors.extend(errors[: max(0, MAX_ERRORS - len(report.errors))])
                    if rows:
                        with conn.begin():
                            counts = upsert_rows(conn, rows)
                        report.add(counts)
                    bar.update(pos - last_pos)
                    bar.set_postfix_str(f"{report.records:,} papers", refresh=False)
                    last_pos = pos
        finally:
            if parser is not None:
                parser.close()
            if local is not None:
                local.close()  # closes the file
        report.seconds = time.perf_counter() - t0
    return report
