"""Every `papers` command turns a storage failure into ``error: …`` and exit 6, no traceback.

The faults are injected into a real `papers` subprocess by a small driver (no tmpfs or
root needed, and root ignores permissions anyway):

* ``sqlite-full``: SQLite's own "database or disk is full" (``PRAGMA max_page_count`` at
  the database's current size), what a full disk gives every write;
* ``enospc`` / ``erofs`` / ``eacces``: ``os.fsync`` / ``os.replace`` / ``os.open`` raise the
  real ``OSError`` (disk full, read-only file system, permission denied) for paths in the
  data directory, as the kernel would.

The database must come out intact (the same papers as before the failed command).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.nightly_support import SAMPLE, base_settings, cli_env, db_state

DRIVER = r"""
import errno, os, sys
fault, data_dir, args = sys.argv[1], sys.argv[2], sys.argv[3:]

def ours(path):
    try:
        return os.fspath(path).startswith(data_dir)
    except TypeError:
        return False

if fault == "sqlite-full":
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    @event.listens_for(Engine, "connect")
    def _full(dbapi_conn, record):
        cur = dbapi_conn.cursor()
        n = cur.execute("PRAGMA page_count").fetchone()[0]
        cur.execute(f"PRAGMA max_page_count={max(n, 1)}")
        cur.close()
elif fault == "enospc":
    real_fsync = os.fsync
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    os.fsync = fsync
elif fault == "erofs":
    real_replace = os.replace
    def replace(src, dst, *a, **k):
        if ours(dst):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(dst))
        return real_replace(src, dst, *a, **k)
    os.replace = replace
elif fault == "eacces":
    real_open = os.open
    def open_(path, flags, *a, **k):
        if ours(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_open(path, flags, *a, **k)
    os.open = open_
from service.cli import main
main(args)
"""

CASES = [
    ("sqlite-full", ["ingest", "jsonl", str(SAMPLE)]),
    ("sqlite-full", ["ingest", "kaggle", "{kaggle}"]),
    ("sqlite-full", ["nightly", "--from", "2014-10-01", "--set", "physics"]),
    ("sqlite-full", ["backfill", "kaggle", "{kaggle}"]),
    ("enospc", ["build", "--full"]),
    ("erofs", ["build", "--full"]),
    ("eacces", ["build"]),
    ("eacces", ["nightly", "--set", "physics"]),
    ("sqlite-full", ["migrate", "{fresh}"]),
]


@pytest.fixture(scope="module")
def kaggle_file(tmp_path_factory):
    """The first 400 bundled sample papers in the Kaggle snapshot format."""
    path = tmp_path_factory.mktemp("kaggle") / "snapshot.json"
    import gzip
    import json

    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f, path.open("w") as out:
        for i, line in enumerate(f):
            if i >= 400:
                break
            p = json.loads(line)
            out.write(json.dumps({
                "id": p["id"], "title": p["title"], "abstract": p["abstract"],
                "authors": ", ".join(p["authors"]), "categories": " ".join(p["categories"]),
                "versions": [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}],
                "update_date": p.get("updated") or p["published"],
            }) + "\n")
    return path


@pytest.mark.parametrize("fault,args", CASES, ids=[f"{f}-{'-'.join(a[:2])}" for f, a in CASES])
def test_storage_failure_is_exit_6_without_traceback(fault, args, tmp_path, kaggle_file):
    fresh = "{fresh}" in args
    args = [a for a in args if a != "{fresh}"]
    settings = base_settings(tmp_path / "d", n=0 if fresh else 40, build_index=not fresh)
    before = {} if fresh else db_state(settings)
    args = [a.replace("{kaggle}", str(kaggle_file)) for a in args]
    env = cli_env(settings)
    if "nightly" in args:
        from tests.arxiv_standin import ArxivStandin

        standin = ArxivStandin().start()
        env.update(standin.env())
    else:
        standin = None
    try:
        proc = subprocess.run([sys.executable, "-c", DRIVER, fault, str(settings.data_dir), *args], env=env,
                              cwd=str(tmp_path), capture_output=True, text=True, timeout=240)
    finally:
        if standin is not None:
            standin.stop()
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 6, (proc.returncode, proc.stderr[-2000:])
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), proc.stderr[-2000:]
    if not fresh:
        assert db_state(settings).keys() >= before.keys()  # nothing lost
