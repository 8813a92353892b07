"""Regenerate ``indexer/data/sample-embeddings.npz`` from a data directory where the
bundled sample was built with the real models (see indexer.dense.embedding_seeds).

    PAPERS_DATA_DIR=/tmp/seed papers migrate
    PAPERS_DATA_DIR=/tmp/seed papers ingest jsonl indexer/data/sample-papers.jsonl.gz
    PAPERS_EMBED_PRECISION=fp32 PAPERS_DATA_DIR=/tmp/seed papers build
    PAPERS_DATA_DIR=/tmp/seed python -m benchmarks.make_embedding_seeds

Run it again whenever the sample, the embedding text or a model changes (a build that
meets stale seeds notices and embeds instead, but then the first minutes are BM25 only).
"""

from __future__ import annotations

import sys

import numpy as np

from indexer.dense.embedding_seeds import SEED_FILE, load_seeds, write_seeds
from indexer.dense.embeddings import EmbeddingStore
from indexer.pipeline.build import current_manifest, dense_models, embeddings_path
from indexer.settings import get_settings


def main() -> int:
    settings = get_settings()
    manifest = current_manifest(settings)
    spaces: dict[str, dict[str, np.ndarray]] = {}
    for model in dense_models(settings):
        info = manifest.embeddings.get(model)
        if not info:
            print(f"error: {model} has no published vectors in {settings.index_dir}", file=sys.stderr)
            return 1
        store = EmbeddingStore(embeddings_path(settings, model), model).load(info)
        matrix = np.asarray(store.matrix, dtype=np.float32)
        spaces[model] = {h: matrix[r] for r, h in enumerate(store.hashes)}
    hashes = sorted(set.intersection(*(set(by_hash) for by_hash in spaces.values())))
    write_seeds(SEED_FILE, hashes, {m: np.stack([by_hash[h] for h in hashes]) for m, by_hash in spaces.items()})
    for model, by_hash in spaces.items():
        loaded = load_seeds(model)
        assert loaded is not None
        rows, vectors = loaded
        exact = np.stack([by_hash[h] for h in hashes])
        cos = np.sum(exact * vectors[[rows[h] for h in hashes]], axis=1)
        print(f"{model}: {len(hashes)} vectors, cosine to float32 min {cos.min():.6f} mean {cos.mean():.6f}")
    print(f"{SEED_FILE}: {SEED_FILE.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
