from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.vector_index import FaissIndex, IndexFileError, as_matrix


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
