"""Vector search: exact numpy search is the reference; the usearch HNSW path (used above
the ANN threshold) must agree with it (recall@10 ≥ 0.95) on clustered unit vectors."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.dense.vectors import ExactIndex, HNSWIndex, build_index, top_k


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _clustered(n: int, dim: int = 48, centres: int = 200, sigma: float = 0.08, seed: int = 3) -> np.ndarray:
    """Topic-like data: noisy copies of random centres (the shape of real embeddings)."""
    rng = np.random.default_rng(seed)
    base = _unit(rng.standard_normal((centres, dim)))
    return _unit(base[rng.integers(0, centres, n)] + rng.normal(0, sigma, (n, dim)))


def test_top_k_orders_and_handles_edges():
    s = np.array([0.1, 0.9, 0.5, 0.7], dtype=np.float32)
    assert top_k(s, 2).tolist() == [1, 3]
    assert top_k(s, 10).tolist() == [1, 3, 2, 0]
    assert top_k(s, 0).tolist() == []


def test_exact_search_matches_brute_force_and_excludes():
    m = _clustered(2000)
    idx = ExactIndex(m)
    q = m[17]
    hits = idx.search(q, 5)
    assert hits[0][0] == 17 and abs(hits[0][1] - 1.0) < 1e-5
    brute = np.argsort(-(m @ q))[:5].tolist()
    assert [r for r, _ in hits] == brute
    hits = idx.search(q, 5, exclude_rows={17})
    assert 17 not in [r for r, _ in hits] and len(hits) == 5
    assert [r for r, _ in hits] == np.argsort(-(m @ q))[1:6].tolist()
    many = idx.search_many(m[:3], 4)
    for i in range(3):
        single = idx.search(m[i], 4)
        assert [r for r, _ in many[i]] == [r for r, _ in single]
        assert np.allclose([s for _, s in many[i]], [s for _, s in single], atol=1e-5)


def test_hnsw_recall_against_exact(tmp_path):
    m = _clustered(20000)
    rng = np.random.default_rng(11)
    queries = _unit(m[rng.integers(0, len(m), 200)] + rng.normal(0, 0.05, (200, m.shape[1])))
    exact = ExactIndex(m)
    ann = HNSWIndex.build(m)
    recall = np.mean([
        len({r for r, _ in ann.search(q, 10)} & {r for r, _ in exact.search(q, 10)}) / 10 for q in queries
    ])
    assert recall >= 0.95, recall
    # scores are cosines like the exact path
    r0, s0 = ann.search(m[5], 1)[0]
    assert r0 == 5 and abs(s0 - 1.0) < 1e-4
    # persisted and restored, it answers the same
    ann.save(tmp_path / "ann.usearch")
    again = HNSWIndex.load(tmp_path / "ann.usearch", m)
    assert [r for r, _ in again.search(queries[0], 10)] == [r for r, _ in ann.search(queries[0], 10)]
    assert 5 not in [r for r, _ in ann.search(m[5], 10, exclude_rows={5})]


def test_build_index_switches_at_threshold():
    m = _clustered(500)
    assert isinstance(build_index(m, ann_threshold=1000), ExactIndex)
    assert isinstance(build_index(m, ann_threshold=100), HNSWIndex)


def test_hnsw_rescoring_gives_exact_cosines_and_params(tmp_path):
    m = _clustered(3000)
    ann = HNSWIndex.build(m, connectivity=8, expansion_add=64, expansion_search=48, dtype="f16")
    assert ann.params == {"connectivity": 8, "expansion_add": 64, "expansion_search": 48, "dtype": "f16",
                          "rerank": ann.params["rerank"], "graph_dims": 48}
    q = _unit(m[:1] + 0.05)[0]
    hits = ann.search(q, 10)
    # the graph stores half precision; the returned scores are the float32 dot products
    assert np.allclose([s for _, s in hits], m[[r for r, _ in hits]] @ q, atol=1e-6)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    exact = ExactIndex(m).search(q, 10)
    assert len({r for r, _ in hits} & {r for r, _ in exact}) >= 9
    # batch search answers like single search; exclusions hold after re-scoring
    many = ann.search_many(m[:5], 3)
    assert [[r for r, _ in h] for h in many] == [[r for r, _ in ann.search(v, 3)] for v in m[:5]]
    top = {r for r, _ in hits[:3]}
    assert not top & {r for r, _ in ann.search(q, 10, exclude_rows=top)}
    # the search expansion is not stored in the file: a loaded index uses the configured one
    ann.save(tmp_path / "a.usearch")
    again = HNSWIndex.load(tmp_path / "a.usearch", m)
    assert again.params["connectivity"] == 8 and again.params["dtype"] == "f16"


def test_projected_graph_nominates_candidates_that_rescore_exactly(tmp_path):
    """A graph over PCA-projected vectors (fewer bytes per paper) still returns exact
    cosines, finds nearly the exact top 10, updates with the same projection, and refuses
    to load without the projection it was built with."""
    from indexer.dense.vectors import Projection

    m = _clustered(3000, dim=48)
    ann = HNSWIndex.build(m, graph_dims=16)
    assert ann.projection is not None and ann.params["graph_dims"] == 16 and ann.index.ndim == 16
    assert ann.params["rerank"] > 32  # a projected graph re-scores more candidates
    queries = _unit(m[:40] + np.random.default_rng(9).normal(0, 0.05, (40, 48)))
    exact = ExactIndex(m)
    overlap = [len({r for r, _ in ann.search(q, 10)} & {r for r, _ in exact.search(q, 10)}) for q in queries]
    assert np.mean(overlap) >= 9.5
    hits = ann.search(queries[0], 10)
    assert np.allclose([s for _, s in hits], m[[r for r, _ in hits]] @ queries[0], atol=1e-6)
    assert [[r for r, _ in h] for h in ann.search_many(queries[:4], 5)] == [[r for r, _ in ann.search(q, 5)] for q in queries[:4]]
    # appended rows go through the same projection
    grown = np.vstack([m, _unit(m[:5] + 0.01)])
    ann.update(np.arange(3000, 3005), grown)
    assert ann.search(grown[3002], 1)[0][0] in (2, 3002)
    ann.save(tmp_path / "p.usearch")
    ann.projection.save(tmp_path / "p.npy")
    proj = Projection.load(tmp_path / "p.npy")
    assert np.array_equal(proj.basis, ann.projection.basis) and np.array_equal(proj.offset, ann.projection.offset)
    again = HNSWIndex.load(tmp_path / "p.usearch", grown, projection=proj)
    assert again.search(queries[1], 10) == ann.search(queries[1], 10)
    with pytest.raises(ValueError, match="dims"):
        HNSWIndex.load(tmp_path / "p.usearch", grown)  # the projection is missing
    assert HNSWIndex.build(m, graph_dims=0).projection is None  # 0 keeps the full vectors
    assert HNSWIndex.build(m[:20], graph_dims=16).projection is None  # too few rows to fit one


def test_exact_search_limits_blas_threads_only_for_the_query():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    m = _clustered(1000)
    assert ExactIndex(m).search(m[3], 1)[0][0] == 3
    assert blas_threads() == before  # restored after the query


def test_row_file_reads_the_rows_of_a_saved_matrix(tmp_path):
    """What a served store with a graph re-scores from: the same numbers as the array,
    row by row or by a list of rows, and clear errors past the end or on a cut file."""
    from indexer.dense.vectors import RowFile

    m = np.random.default_rng(3).standard_normal((50, 12)).astype(np.float32)
    np.save(tmp_path / "v.npy", m)
    rf = RowFile(tmp_path / "v.npy")
    assert rf.shape == (50, 12) and len(rf) == 50
    assert np.array_equal(rf[7], m[7])
    rows = np.array([49, 0, 7, 7])
    assert np.array_equal(rf[rows], m[rows])
    assert np.array_equal(rf.read_all(), m)
    with pytest.raises(IndexError):
        rf[50]
    np.save(tmp_path / "d.npy", m.astype(np.float64))
    with pytest.raises(ValueError, match="float32"):
        RowFile(tmp_path / "d.npy")
    data = (tmp_path / "v.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) - 100])
    with pytest.raises(OSError, match="short read"):
        RowFile(tmp_path / "cut.npy")[49]


def test_id_table_maps_rows_and_ids_both_ways_like_a_list_and_dict():
    """The served stores' compact id table answers exactly what the builder's list and dict
    answer, on real arXiv ids of both styles, and refuses duplicate ids."""
    from indexer.dense.idtable import IdTable

    ids = ["2401.00007", "hep-th/9901001", "0704.0001", "math/0612345", "2312.17765", "1501.0001"]
    table = IdTable(ids)
    row_of = {pid: r for r, pid in enumerate(ids)}
    assert len(table) == len(ids) and list(table) == ids and table == ids
    assert [table[r] for r in range(len(ids))] == ids
    assert all(table.get(pid) == row_of[pid] for pid in ids)
    for absent in ["2401.0000", "2401.000077", "hep-th/99010011", "", "论文", "z" * 40]:
        assert table.get(absent) is None and absent not in table
    assert table.rows(["0704.0001", "nope", "math/0612345"]) == {2, 3}
    assert IdTable(["é1", "a"]).get("é1") == 0 and IdTable([]).get("x") is None
    with pytest.raises(ValueError, match="unique"):
        IdTable(["a", "b", "a"])


def test_id_table_saved_and_mapped_answers_the_same(tmp_path):
    """What the service maps (no ids parsed, pages shared) equals the table it was saved
    from; a file whose halves disagree, or that is not a table, is refused."""
    from indexer.dense.idtable import IdTable

    ids = ["2401.00007", "hep-th/9901001", "0704.0001", "math/0612345", "2312.17765", "1501.0001"]
    IdTable(ids).save(tmp_path / "t.npy")
    mapped = IdTable.load(tmp_path / "t.npy")
    assert mapped == ids and [mapped.get(p) for p in ids] == list(range(len(ids))) and mapped.get("0704.0002") is None
    assert isinstance(mapped._ids.base, np.memmap) or isinstance(mapped._ids, np.memmap)
    IdTable([]).save(tmp_path / "empty.npy")
    assert len(IdTable.load(tmp_path / "empty.npy")) == 0
    both = np.load(tmp_path / "t.npy")
    both[1, [0, 1]] = both[1, [1, 0]]  # sorted half out of order
    np.save(tmp_path / "bad.npy", both)
    with pytest.raises(ValueError, match="do not match"):
        IdTable.load(tmp_path / "bad.npy")
    np.save(tmp_path / "flat.npy", np.array(ids, dtype=np.bytes_))
    with pytest.raises(ValueError, match="not an id table"):
        IdTable.load(tmp_path / "flat.npy")
