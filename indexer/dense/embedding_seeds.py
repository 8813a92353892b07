"""Bundled vectors of the bundled sample, so a fresh clone searches by meaning at once.

Why: embedding the 8,000 sample papers in both dense spaces takes minutes on a quiet
2-core machine (most of an hour on a busy one); until then hybrid search is BM25 only
and Chinese queries find nothing. ``indexer/data/sample-embeddings.npz`` holds their
vectors, keyed by content hash (:func:`indexer.ingest.store.content_hash`) and model, so a build
copies the vectors of every paper whose hash matches and embeds only the rest.

Format (``np.savez_compressed``, no pickles): ``hashes`` (raw sha1 digests, uint8 × 20),
``models`` (names), and per model ``i``: ``q<i>`` int8 rows with ``scale<i>`` (float32,
one per row; ``vector = q * scale``, then re-normalised). Quantised per row, a 384- or
512-dim unit vector keeps a cosine above 0.9999 to its float32 original (checked by
``tests/test_embedding_seeds.py``) at a quarter of the size.

Trust, but verify: before a model's seeds are used, a few seeded papers are embedded with
the installed model and compared. Another model version (or another embedding text)
gives other vectors, and then the seeds are ignored and everything is embedded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SEED_FILE = Path(__file__).parents[1] / "data" / "sample-embeddings.npz"
SPOT_CHECK = 4  # seeded papers re-embedded to confirm the installed model gives their vectors
MIN_AGREEMENT = 0.99  # int8 seeds agree above 0.9999; another model is far below


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and their scales: ``row ≈ q * scale`` with ``|q| ≤ 127``."""
    v = np.asarray(vectors, dtype=np.float32)
    scale = np.abs(v).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(v / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def dequantize(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    v = q.astype(np.float32) * np.asarray(scale, dtype=np.float32)[:, None]
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(v / norms, dtype=np.float32)


def write_seeds(path: Path, hashes: Sequence[str], spaces: Mapping[str, np.ndarray]) -> None:
    """Save ``spaces`` (model name → float32 rows, in ``hashes`` order) as a seed file."""
    payload: dict[str, Any] = {
        # raw digests as uint8 rows: numpy's bytes dtype would drop a digest's trailing zero bytes
        "hashes": np.frombuffer(b"".join(bytes.fromhex(h) for h in hashes), dtype=np.uint8).reshape(len(hashes), 20),
        "models": np.array(list(spaces), dtype=str),
    }
    for i, vectors in enumerate(spaces.values()):
        if len(vectors) != len(hashes):
            raise ValueError("every space needs one vector per hash")
        payload[f"q{i}"], payload[f"scale{i}"] = quantize(vectors)
    np.savez_compressed(path, **payload)


def load_seeds(model: str, path: Path | None = None) -> tuple[dict[str, int], np.ndarray] | None:
    """``(content hash → row, float32 vectors)`` of ``model``, or None when the file has
    no such model (or is missing or unreadable: seeds are an optimisation, never an error)."""
    path = SEED_FILE if path is None else path
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            models = [str(m) for m in z["models"]]
            if model not in models:
                return None
            i = models.index(model)
            vectors = dequantize(z[f"q{i}"], z[f"scale{i}"])
            rows = {h.tobytes().hex(): r for r, h in enumerate(z["hashes"])}
    except (OSError, ValueError, KeyError) as e:
        log.warning("embedding seeds %s unreadable (%s): embedding everything", path, e)
        return None
    return rows, vectors


def apply_seeds(store: Any, embedder: Callable[[], Any], todo: Sequence[str], hashes: Mapping[str, str],
                texts: Callable[[Sequence[str]], Iterable[tuple[str, str, str]]], path: Path | None = None) -> list[str]:
    """Add the seeded vectors of the ``todo`` papers (ids; ``hashes`` maps id → content
    hash) to ``store`` and return the ids still to embed. ``texts(ids)`` yields
    ``(id, hash, embedding text)``: a few seeded papers are embedded with ``embedder()``
    (called only when seeds match) first, and the seeds are used only if they agree."""
    seeds = load_seeds(store.model_name, path)
    if seeds is None:
        return list(todo)
    rows, vectors = seeds
    hit = [pid for pid in todo if hashes.get(pid) in rows]
    if not hit:
        return list(todo)
    probe = list(texts(hit[:SPOT_CHECK]))
    if probe:
        fresh = embedder().encode([t for _, _, t in probe])
        seeded = vectors[[rows[h] for _, h, _ in probe]]
        agreement = float(np.min(np.sum(fresh * seeded, axis=1)))
        if agreement < MIN_AGREEMENT:
            log.warning("%s: bundled seed vectors disagree with the installed model (cosine %.3f): ignored",
                        store.model_name, agreement)
            return list(todo)
    store.add(hit, [hashes[pid] for pid in hit], vectors[[rows[hashes[pid]] for pid in hit]])
    log.info("%s: %d vectors taken from the bundled seeds, %d to embed", store.model_name, len(hit), len(todo) - len(hit))
    taken = set(hit)
    return [pid for pid in todo if pid not in taken]
