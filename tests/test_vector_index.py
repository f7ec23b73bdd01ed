from __future__ import annotations

import json
import os
from pathlib import Path

import faiss
import numpy as np
import pytest

from retrieval import vector_index
from retrieval.exact_index import ExactIndex
from retrieval.index_kinds import INDEX_BACKENDS, build_index, check_kind, kind_names, load_index
from retrieval.milvus_index import MilvusIndex
from retrieval.vector_index import FaissIndex, IndexFileError, VectorIndex, as_matrix


def random_vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


@pytest.fixture(params=["flat", "hnsw", "ivf"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def test_known_answer_the_item_itself_ranks_first(kind: str) -> None:
    vectors = random_vectors(2000)
    ids = np.arange(2000, dtype=np.int64) * 7 + 100  # external ids, not positions
    index = FaissIndex.build(vectors, ids, kind=kind)
    hits = index.search(vectors[[5, 1234]], k=3)
    assert hits.ids[:, 0].tolist() == [ids[5], ids[1234]]
    assert hits.scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert hits.scores[0, 0] >= hits.scores[0, 1] >= hits.scores[0, 2]


def test_filter_returns_only_allowed_ids(kind: str) -> None:
    vectors = random_vectors(2000)
    ids = np.arange(2000, dtype=np.int64) + 10_000
    index = FaissIndex.build(vectors, ids, kind=kind)
    allowed = ids[[3, 50, 999]]
    hits = index.search(vectors[0], k=10, allowed_ids=allowed)
    assert set(hits.row(0)[i][0] for i in range(3)) == set(allowed.tolist())
    assert hits.ids[0, 3:].tolist() == [-1] * 7 and np.isneginf(hits.scores[0, 3:]).all()
    assert index.search(vectors[0], k=5, allowed_ids=np.array([], dtype=np.int64)).row(0) == []
    assert index.search(vectors[0], k=5, allowed_ids=np.array([1, 2])).row(0) == []  # ids not in the index


def test_flat_filter_equals_brute_force() -> None:
    vectors = random_vectors(500)
    index = FaissIndex.build(vectors, np.arange(500), kind="flat")
    allowed = np.arange(0, 500, 3)
    query = random_vectors(1, seed=9)
    hits = index.search(query, k=5, allowed_ids=allowed)
    normed = as_matrix(vectors)
    expected = allowed[np.argsort(-(normed[allowed] @ as_matrix(query)[0]))[:5]]
    assert hits.ids[0].tolist() == expected.tolist()


def test_k_larger_than_index_pads_with_minus_one() -> None:
    index = FaissIndex.build(random_vectors(3), np.array([1, 2, 3]))
    hits = index.search(random_vectors(2, seed=1), k=5)
    assert hits.ids.shape == (2, 5) and (hits.ids[:, 3:] == -1).all() and sorted(hits.ids[0, :3]) == [1, 2, 3]


def test_bad_input_is_refused() -> None:
    index = FaissIndex.build(random_vectors(10), np.arange(10))
    with pytest.raises(ValueError, match=r"shape \(n, 32\)"):
        index.search(np.zeros((1, 16), dtype=np.float32), k=1)
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.full((1, 32), np.nan, dtype=np.float32), k=1)
    with pytest.raises(ValueError, match="unique"):
        FaissIndex.build(random_vectors(2), np.array([1, 1]))
    # float64 input is accepted (normalize_L2 alone would raise on it)
    assert index.search(random_vectors(1).astype(np.float64), k=1).ids.shape == (1, 1)


def test_save_load_detects_stale_corrupt_and_truncated(tmp_path: Path, kind: str) -> None:
    vectors = random_vectors(300)
    index = FaissIndex.build(vectors, np.arange(300), kind=kind)
    path = tmp_path / "i.faiss"
    index.save(path, {"catalog": "abc", "encoder": "e1"})
    loaded = FaissIndex.load(path, {"catalog": "abc", "encoder": "e1"})
    assert loaded.kind == kind and loaded.search(vectors[7], k=1).ids[0, 0] == 7
    with pytest.raises(IndexFileError, match="built for other data"):
        FaissIndex.load(path, {"catalog": "abc", "encoder": "e2"})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexFileError, match="truncated"):
        FaissIndex.load(path, {"catalog": "abc"})
    path.write_bytes(bytes(len(data)))
    with pytest.raises(IndexFileError, match="corrupt"):
        FaissIndex.load(path, {"catalog": "abc"})
    with pytest.raises(IndexFileError, match="sidecar"):
        FaissIndex.load(tmp_path / "missing.faiss", {})


# -- the contract every VectorIndex keeps --------------------------------------------------------
#
# A backend's test class names its builder in `make_index` and inherits every test below (the
# implicit RecommenderBaseTestMixin pattern). The data is synthetic with known answers: clustered
# vectors under shuffled, sparse ids (never 0..n-1, so a row/id mix-up shows), brute force as truth.

N, DIM, K = 1000, 24, 10


def clustered(n: int, dim: int = DIM, seed: int = 0, clusters: int = 20) -> np.ndarray:
    """Gaussian clusters: near neighbours are well defined, unlike in uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    return (centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, dim))).astype(np.float32)


def sparse_ids(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n).astype(np.int64) * 13 + 5


def brute_force(matrix: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int,
                allowed: np.ndarray | None = None) -> np.ndarray:
    """The true top-k ids (ties, which random data does not have, in any order)."""
    keep = np.ones(len(ids), dtype=bool) if allowed is None else np.isin(ids, allowed)
    scores = as_matrix(queries) @ as_matrix(matrix)[keep].T
    return ids[keep][np.argsort(-scores, axis=1, kind="stable")[:, :k]]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f != -1].tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth)]))


class VectorIndexContract:
    """What every VectorIndex guarantees. Subclasses provide `make_index`; `approximate` backends
    must find most true neighbours (recall), exact ones exactly the brute-force answer."""

    approximate = False

    def make_index(self, matrix: np.ndarray, ids: np.ndarray) -> VectorIndex:
        raise NotImplementedError

    @pytest.fixture
    def data(self) -> tuple[np.ndarray, np.ndarray]:
        return clustered(N), sparse_ids(N)

    @pytest.fixture
    def index(self, data) -> VectorIndex:
        return self.make_index(*data)

    def test_is_a_vector_index_with_its_shape(self, index: VectorIndex) -> None:
        assert isinstance(index, VectorIndex)
        assert (index.size, index.dim) == (N, DIM)
        assert index.kind in kind_names()

    def test_each_item_ranks_first_for_its_own_vector(self, index: VectorIndex, data) -> None:
        matrix, ids = data
        hits = index.search(matrix, k=3)
        assert hits.ids[:, 0].tolist() == ids.tolist()
        np.testing.assert_allclose(hits.scores[:, 0], 1.0, atol=1e-5)

    def test_top_k_is_the_brute_force_answer_with_true_scores(self, index: VectorIndex, data) -> None:
        matrix, ids = data
        queries = clustered(40, seed=7)
        hits = index.search(queries, k=K)
        truth = brute_force(matrix, ids, queries, K)
        if self.approximate:
            assert recall(hits.ids, truth) >= 0.9
        else:
            assert hits.ids.tolist() == truth.tolist()
        assert hits.ids.shape == hits.scores.shape == (40, K)
        assert hits.ids.dtype == np.int64 and hits.scores.dtype == np.float32
        # Scores are the returned items' true similarities, best first.
        found = index.vectors(hits.ids.reshape(-1)).reshape(40, K, DIM)
        expected = np.einsum("qd,qkd->qk", as_matrix(queries), found)
        np.testing.assert_allclose(hits.scores, expected, atol=1e-5)
        assert (np.diff(hits.scores, axis=1) <= 1e-6).all()

    @pytest.mark.parametrize("size", [1, 5, 300])
    def test_a_filter_never_leaks_and_ranks_within_it(self, index: VectorIndex, data, size: int) -> None:
        matrix, ids = data
        rng = np.random.default_rng(size)
        allowed = rng.choice(ids, size, replace=False)
        queries = clustered(10, seed=11)
        # Ids the index does not hold, and repeats, are allowed in a filter and change nothing.
        noisy = np.concatenate([allowed, [1, 2, 10**12], allowed[:3]])
        hits = index.search(queries, k=K, allowed_ids=noisy)
        for row in hits.ids:
            found = row[row != -1]
            assert set(found.tolist()) <= set(allowed.tolist())
            assert len(found) == len(set(found.tolist())) == min(K, size)
        # Exact for every kind: FAISS's ANN kinds scan small filtered sets exactly.
        assert hits.ids[:, :size].tolist() == brute_force(matrix, ids, queries, K, allowed).tolist()

    def test_a_large_filter_never_leaks(self) -> None:
        # Above 4096 allowed ids FAISS's ANN kinds search with an id selector instead of a scan.
        matrix, ids = clustered(6000, seed=3), sparse_ids(6000, seed=4)
        index = self.make_index(matrix, ids)
        allowed = ids[np.random.default_rng(5).random(6000) < 0.8]
        queries = clustered(10, seed=12)
        hits = index.search(queries, k=K, allowed_ids=allowed)
        assert set(hits.ids.reshape(-1).tolist()) <= set(allowed.tolist())
        truth = brute_force(matrix, ids, queries, K, allowed)
        assert recall(hits.ids, truth) >= (0.85 if self.approximate else 1.0)

    def test_an_empty_filter_or_one_of_unknown_ids_gives_no_hits(self, index: VectorIndex) -> None:
        queries = clustered(3, seed=8)
        for allowed in (np.array([], dtype=np.int64), np.array([1, 2, 3], dtype=np.int64)):
            hits = index.search(queries, k=4, allowed_ids=allowed)
            assert hits.ids.shape == (3, 4) and (hits.ids == -1).all() and np.isneginf(hits.scores).all()
            assert hits.row(0) == []

    def test_k_larger_than_the_candidates_pads_with_minus_one(self) -> None:
        matrix, ids = clustered(5, seed=9), np.array([40, 7, 1000, 3, 22], dtype=np.int64)
        index = self.make_index(matrix, ids)
        hits = index.search(matrix[:2], k=8)
        assert hits.ids.shape == (2, 8)
        assert sorted(hits.ids[0, :5].tolist()) == sorted(ids.tolist()) and hits.ids[0, 0] == 40
        assert (hits.ids[:, 5:] == -1).all() and np.isneginf(hits.scores[:, 5:]).all()
        assert np.isfinite(hits.scores[:, :5]).all()
        filtered = index.search(matrix[0], k=8, allowed_ids=np.array([3, 22]))
        assert sorted(filtered.ids[0, :2].tolist()) == [3, 22] and (filtered.ids[0, 2:] == -1).all()

    @pytest.mark.parametrize("filtered", [False, True])
    def test_a_batch_equals_one_query_at_a_time(self, index: VectorIndex, data, filtered: bool) -> None:
        _, ids = data
        allowed = ids[::3] if filtered else None
        queries = clustered(20, seed=10)  # >= 16: FAISS takes its BLAS path for the batch
        batch = index.search(queries, k=K, allowed_ids=allowed)
        for q in range(len(queries)):
            one = index.search(queries[q], k=K, allowed_ids=allowed)
            assert one.ids[0].tolist() == batch.ids[q].tolist()
            np.testing.assert_allclose(one.scores[0], batch.scores[q], atol=1e-5)

    def test_results_do_not_depend_on_call_or_filter_order(self, index: VectorIndex, data) -> None:
        _, ids = data
        allowed = ids[:200]
        queries = clustered(5, seed=13)
        first = index.search(queries, k=K, allowed_ids=allowed)
        again = index.search(queries, k=K, allowed_ids=np.concatenate([allowed[::-1], allowed[:10]]))
        assert first.ids.tolist() == again.ids.tolist()
        assert index.search(queries, k=K).ids.tolist() == index.search(queries, k=K).ids.tolist()

    def test_vectors_by_id_are_the_unit_vectors_stored(self, index: VectorIndex, data) -> None:
        matrix, ids = data
        got = index.vectors(ids[[7, 2, 7]])
        np.testing.assert_allclose(got, as_matrix(matrix)[[7, 2, 7]], atol=1e-6)
        assert index.vectors(np.array([], dtype=np.int64)).shape == (0, DIM)
        with pytest.raises(KeyError, match="not in the index"):
            index.vectors(np.array([ids[0], 4]))

    def test_bad_input_is_refused_the_same_way(self, index: VectorIndex, data) -> None:
        matrix, ids = data
        with pytest.raises(ValueError, match=rf"shape \(n, {DIM}\)"):
            index.search(np.zeros((1, DIM + 1), dtype=np.float32), k=1)
        with pytest.raises(ValueError, match="NaN"):
            index.search(np.full((1, DIM), np.nan, dtype=np.float32), k=1)
        with pytest.raises(ValueError, match="k must be positive"):
            index.search(matrix[0], k=0)
        with pytest.raises(ValueError, match="unique"):
            self.make_index(matrix[:2], np.array([1, 1]))
        with pytest.raises(ValueError, match="2 vectors but 3 ids"):
            self.make_index(matrix[:2], np.array([1, 2, 3]))
        assert index.search(matrix[0].astype(np.float64), k=1).ids[0, 0] == ids[0]  # 1-D, float64

    def test_save_and_load_give_the_same_index_back(self, index: VectorIndex, tmp_path: Path) -> None:
        path = tmp_path / "space.faiss"
        index.save(path, {"catalog": "c", "fingerprint": "f1"})
        loaded = load_index(path, {"catalog": "c", "fingerprint": "f1"})
        assert (type(loaded), loaded.kind, loaded.size, loaded.dim) == (type(index), index.kind, index.size, index.dim)
        queries = clustered(5, seed=14)
        assert loaded.search(queries, k=K).ids.tolist() == index.search(queries, k=K).ids.tolist()
        # Kinds rebuilt from their saved vectors normalise them again: equal to float rounding.
        np.testing.assert_allclose(loaded.vectors(index.ids), index.vectors(index.ids), atol=1e-6)
        with pytest.raises(IndexFileError, match="built for other data"):
            load_index(path, {"catalog": "c", "fingerprint": "f2"})


class TestFlat(VectorIndexContract):
    def make_index(self, matrix: np.ndarray, ids: np.ndarray) -> VectorIndex:
        return FaissIndex.build(matrix, ids, kind="flat")


class TestHNSW(VectorIndexContract):
    approximate = True

    def make_index(self, matrix: np.ndarray, ids: np.ndarray) -> VectorIndex:
        return FaissIndex.build(matrix, ids, kind="hnsw")


class TestIVF(VectorIndexContract):
    approximate = True

    def make_index(self, matrix: np.ndarray, ids: np.ndarray) -> VectorIndex:
        return FaissIndex.build(matrix, ids, kind="ivf")


class TestExact(VectorIndexContract):
    def make_index(self, matrix: np.ndarray, ids: np.ndarray) -> VectorIndex:
        return ExactIndex.build(matrix, ids)

    def test_ties_go_to_the_smaller_id_whatever_the_input_order(self) -> None:
        v = np.eye(4, dtype=np.float32)
        matrix = np.stack([v[0], v[1], v[0], v[0], v[1]])  # three copies of e0, two of e1
        index = ExactIndex.build(matrix, np.array([90, 80, 30, 60, 10]))
        hits = index.search(v[0], k=3)
        assert hits.ids[0].tolist() == [30, 60, 90]
        # ... also when the tie straddles the cut-off at k, and under a filter.
        assert index.search(v[0], k=2).ids[0].tolist() == [30, 60]
        assert index.search(v[1], k=1, allowed_ids=np.array([80, 10, 30])).ids[0].tolist() == [10]

    def test_an_empty_index_answers_with_no_hits(self) -> None:
        index = ExactIndex.build(np.zeros((0, 4), dtype=np.float32), np.array([], dtype=np.int64))
        assert index.size == 0 and index.dim == 4
        assert (index.search(np.ones(4, dtype=np.float32), k=2).ids == -1).all()


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One milvus-lite folder for the session: every index is its own collection in it, named
    after its content, so tests that build the same data share one collection."""
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):  # CI installs .[dev], which has them: missing there is a failure
            raise
        pytest.skip("pymilvus and milvus-lite are not installed (pip install '.[milvus]')")
    return str(tmp_path_factory.mktemp("milvus") / "vectors.db")


class TestMilvus(VectorIndexContract):
    """Milvus (here milvus-lite, the same client API as a cluster), FLAT: exact, as FAISS flat."""

    index_type = "FLAT"

    @pytest.fixture(autouse=True)
    def _uri(self, milvus_uri: str) -> None:
        self.uri = milvus_uri

    def make_index(self, matrix: np.ndarray, ids: np.ndarray) -> VectorIndex:
        return MilvusIndex.build(matrix, ids, self.uri, index_type=self.index_type)


class TestMilvusHNSW(TestMilvus):
    """Milvus's HNSW, as the `auto` rule picks from 200k items: small filters scan exactly."""

    approximate = True
    index_type = "HNSW"


def test_milvus_is_saved_as_a_pointer_and_a_lost_collection_is_refused(milvus_uri: str, tmp_path: Path) -> None:
    matrix, ids = clustered(50, seed=21), sparse_ids(50, seed=22)
    index = build_index(matrix, ids, f"milvus:{milvus_uri}")
    assert isinstance(index, MilvusIndex) and index.kind == "milvus" and index.index_type == "FLAT"
    again = build_index(matrix, ids, f"milvus:{milvus_uri}")
    assert again.collection == index.collection  # the same data finds its collection, no copy
    path = tmp_path / "text.faiss"
    index.save(path, {"catalog": "c"})
    sidecar = json.loads(path.with_name("text.faiss.json").read_text())
    assert (sidecar["uri"], sidecar["collection"], sidecar["size"]) == (milvus_uri, index.collection, 50)
    assert path.stat().st_size < 50 * DIM * 4  # ids only: the vectors stay in Milvus
    index.client.drop_collection(index.collection)
    with pytest.raises(IndexFileError, match="holds nothing"):
        load_index(path, {"catalog": "c"})
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(IndexFileError, match="truncated"):
        load_index(path, {"catalog": "c"})


def test_a_multimodal_index_on_milvus_saves_loads_and_ranks_as_exact(milvus_uri: str, tmp_path: Path) -> None:
    """The path the app takes (retrieval/multimodal.py): one collection per space, fused scores
    equal to the exact kind's, and a reload from the saved pointers."""
    from retrieval.multimodal import ItemVectors, MultimodalIndex, Query

    matrix, ids = clustered(80, seed=31), sparse_ids(80, seed=32)
    vectors = ItemVectors(ids, matrix, clustered(80, seed=33))
    on_milvus, exact = MultimodalIndex.build(vectors, f"milvus:{milvus_uri}"), MultimodalIndex.build(vectors, "exact")
    assert len({space.collection for space in on_milvus.spaces.values()}) == len(on_milvus.spaces) == 2
    on_milvus.save(tmp_path / "idx", {"catalog": "c"})
    loaded = MultimodalIndex.load(tmp_path / "idx", {"catalog": "c"}, visual=False)
    assert all(isinstance(space, MilvusIndex) for space in loaded.spaces.values())
    query = Query(text=matrix[3], liked=(int(ids[5]),))
    allowed = ids[::2]
    for index in (on_milvus, loaded):
        got = index.search(query, k=5, allowed_ids=allowed)
        want = exact.search(query, k=5, allowed_ids=allowed)
        assert [h.id for h in got] == [h.id for h in want]
        np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=1e-5)


@pytest.mark.parametrize(("spec", "message"), [
    ("milvus", "needs a URI: milvus:./vectors.db"),
    ("milvus:vectors", "must end in .db"),
    ("milvus:ftp://host/x", "unknown scheme"),
    ("milvus:http://user:secret@:19530", r"'http://\*\*\*@:19530' names no host"),
    ("flat:64", "index kind 'flat' takes no argument"),
])
def test_a_bad_index_setting_fails_before_anything_is_built(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        check_kind(spec)
    assert "secret" not in str(caught.value)


def test_a_milvus_setting_is_checked_without_contacting_anything(tmp_path: Path) -> None:
    assert check_kind("milvus:http://milvus.example:19530") == "milvus:http://milvus.example:19530"
    assert check_kind(f"milvus:{tmp_path}/v.db") == f"milvus:{tmp_path}/v.db"
    assert not (tmp_path / "v.db").exists()


# -- kinds by name ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "exact"])
def test_every_built_in_kind_builds_an_index_of_that_kind(kind: str) -> None:
    index = build_index(clustered(100), sparse_ids(100), kind)
    assert isinstance(index, VectorIndex) and index.kind == kind
    with pytest.raises(ValueError, match=f"index kind '{kind}' takes no argument"):
        build_index(clustered(100), sparse_ids(100), f"{kind}:64")


def test_auto_picks_flat_for_small_and_hnsw_for_large(monkeypatch: pytest.MonkeyPatch) -> None:
    assert build_index(clustered(50), sparse_ids(50)).kind == "flat"
    monkeypatch.setattr(vector_index, "AUTO_HNSW_FROM", 40)
    assert build_index(clustered(50), sparse_ids(50), "auto").kind == "hnsw"


def test_an_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown index kind 'annoy'; choose one of auto, flat, hnsw, ivf, exact"):
        build_index(clustered(10), sparse_ids(10), "annoy")
    assert check_kind("exact") == "exact" and check_kind("auto") == "auto"
    assert kind_names() == ["auto", *INDEX_BACKENDS.names()]


def test_a_new_backend_is_one_class_and_one_registry_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A backend that writes only `search` gets `vectors`, `save` and loading from the base and
    the registry, and serves a multimodal index."""
    from retrieval.multimodal import ItemVectors, MultimodalIndex, Query

    class ScanIndex(VectorIndex):  # everything through the base's exact scan
        def __init__(self, matrix: np.ndarray, ids: np.ndarray) -> None:
            super().__init__("scan", matrix.shape[1], ids, lambda rows: matrix[rows])

        def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> vector_index.Hits:
            return self._scan(self._queries(queries, k), k, self.ids if allowed_ids is None else allowed_ids)

    monkeypatch.setattr(INDEX_BACKENDS, "_entries", dict(INDEX_BACKENDS._entries))
    INDEX_BACKENDS.register("scan", lambda arg, *, vectors, ids, **_: ScanIndex(as_matrix(vectors), ids))
    matrix, ids = clustered(60), sparse_ids(60)
    vectors = ItemVectors(ids, matrix, clustered(60, seed=2))
    scan, exact = MultimodalIndex.build(vectors, "scan"), MultimodalIndex.build(vectors, "exact")
    scan.save(tmp_path / "idx", {"catalog": "c"})
    loaded = MultimodalIndex.load(tmp_path / "idx", {"catalog": "c"}, visual=False)
    query = Query(text=matrix[3], liked=(int(ids[5]),))
    want = [h.id for h in exact.search(query, k=5)]
    assert len(want) == 5
    assert [h.id for h in scan.search(query, k=5)] == [h.id for h in loaded.search(query, k=5)] == want
    assert isinstance(loaded.spaces["text"], ScanIndex)


def test_files_of_other_kinds_are_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "i.faiss"
    ExactIndex.build(clustered(20), sparse_ids(20)).save(path, {"catalog": "c"})
    with pytest.raises(IndexFileError, match="not one of FAISS's"):
        FaissIndex.load(path, {"catalog": "c"})
    sidecar = path.with_name(path.name + ".json")
    sidecar.write_text(sidecar.read_text().replace('"exact"', '"annoy"'))
    with pytest.raises(IndexFileError, match="unknown index kind 'annoy'"):
        load_index(path, {"catalog": "c"})


def test_the_faiss_file_and_sidecar_format_is_unchanged(tmp_path: Path) -> None:
    """The demo's cached index must stay loadable: same file, same sidecar keys as before."""
    index = FaissIndex.build(clustered(30), sparse_ids(30), kind="flat")
    path = tmp_path / "text.faiss"
    index.save(path, {"catalog": "demo", "format": 1, "space": "text"})
    sidecar = json.loads(path.with_name("text.faiss.json").read_text())
    assert sidecar == {"bytes": path.stat().st_size, "catalog": "demo", "dim": DIM, "format": 1, "kind": "flat",
                       "size": 30, "space": "text"}
    assert path.read_bytes() == faiss.serialize_index(index.index).tobytes()


def test_a_cached_milvus_index_is_reused_only_at_the_same_uri(milvus_uri: str, shapes_catalog, tmp_path: Path) -> None:
    from crs.search import CatalogSearch

    store, catalog = shapes_catalog
    first = CatalogSearch.open(store, catalog, "fake", kind=f"milvus:{milvus_uri}").status
    again = CatalogSearch.open(store, catalog, "fake", kind=f"milvus:{milvus_uri}").status
    assert first.built and not again.built
    other = tmp_path / "other.db"
    moved = CatalogSearch.open(store, catalog, "fake", kind=f"milvus:{other}").status
    assert moved.built and "another URI" in moved.short_reason
    assert str(tmp_path) not in moved.short_reason  # /health shows the reason: no server path
