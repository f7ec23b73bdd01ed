"""Nearest-neighbour search over one vector space, behind a one-method interface.

`VectorIndex.search` is all the rest of the system calls, so a distributed vector engine can
replace FAISS later. The FAISS implementation keeps the caller's integer ids (IndexIDMap2) and
filters by id *before* ranking (an IDSelector), so a filter never returns items outside it.
Inner product on L2-normalised vectors = cosine similarity.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

IndexKind = Literal["auto", "flat", "hnsw", "ivf"]
# Above this many vectors "auto" picks HNSW: exact search stops being cheap per query.
AUTO_HNSW_FROM = 200_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
# benchmarks/index_scaling.py at 1M clustered vectors: efSearch 96 gave recall@10 0.9385, 128
# gave 0.958 at 0.83 ms p50 (target >= 0.95 under 2 ms).
HNSW_EF_SEARCH = 128
IVF_NPROBE = 16
# faiss switches exact search to BLAS above `distance_compute_blas_threshold`. Its default
# (128000 in 1.15) keeps batches of 100-200 queries on the slow path (RESEARCH.md: ~4x), but a
# low value puts single queries on BLAS, ~6x slower (12k x 384: 3.6 ms vs 0.6 ms). So the value
# is chosen per call, by the number of queries.
BLAS_BATCH_FROM = 16
_BLAS_DEFAULT = faiss.cvar.distance_compute_blas_threshold


class IndexFileError(RuntimeError):
    """An index file is missing, corrupt or does not match what it should contain."""


@dataclass(frozen=True)
class Hits:
    """Results for a batch of queries: row i holds query i's ids and scores, best first; id -1 = none."""

    ids: np.ndarray  # int64 (n_queries, k)
    scores: np.ndarray  # float32 (n_queries, k)

    def row(self, i: int) -> list[tuple[int, float]]:
        return [(int(a), float(s)) for a, s in zip(self.ids[i], self.scores[i]) if a != -1]


class VectorIndex(ABC):
    dim: int
    size: int

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> Hits:
        """Top-k ids per query; with `allowed_ids`, only those ids can be returned (empty -> no hits)."""


def as_matrix(vectors: np.ndarray, dim: int | None = None) -> np.ndarray:
    """float32, C-contiguous, 2-D, L2-normalised: what FAISS inner-product search needs."""
    matrix = np.ascontiguousarray(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))
    if matrix.ndim != 2 or (dim is not None and matrix.shape[1] != dim):
        raise ValueError(f"expected vectors of shape (n, {dim}), got {np.asarray(vectors).shape}")
    if not np.isfinite(matrix).all():
        raise ValueError("vectors contain NaN or infinity")
    matrix = matrix.copy()
    faiss.normalize_L2(matrix)
    return matrix


class FaissIndex(VectorIndex):
    def __init__(self, index: faiss.Index, kind: str) -> None:
        self.index = index
        self.kind = kind
        self.dim = index.d
        self.size = index.ntotal
        self._sorted_ids: tuple[np.ndarray, np.ndarray] | None = None  # (ids sorted, their rows), built lazily
        if kind == "ivf":  # reconstructing rows of an IVF index needs its direct map
            faiss.extract_index_ivf(index.index).make_direct_map()

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, kind: IndexKind = "auto") -> FaissIndex:
        matrix = as_matrix(vectors)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) != len(matrix):
            raise ValueError(f"{len(matrix)} vectors but {len(ids)} ids")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("ids must be unique")
        if kind == "auto":
            kind = "hnsw" if len(matrix) >= AUTO_HNSW_FROM else "flat"
        dim = matrix.shape[1]
        if kind == "flat":
            inner: faiss.Index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        elif kind == "ivf":
            # ~4*sqrt(n) lists, but at least 39 training points per list (faiss warns below that)
            lists = max(1, min(4096, int(4 * np.sqrt(len(matrix))), len(matrix) // 39))
            inner = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
            inner.train(matrix)
        else:
            raise ValueError(f"unknown index kind {kind!r}; choose auto, flat, hnsw or ivf")
        index = faiss.IndexIDMap2(inner)
        index.add_with_ids(matrix, ids)
        return cls(index, kind)

    def _params(self, selector: faiss.IDSelector | None) -> faiss.SearchParameters | None:
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW()
            params.efSearch = HNSW_EF_SEARCH
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF()
            params.nprobe = IVF_NPROBE
        elif selector is None:
            return None
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        return params

    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> Hits:
        matrix = as_matrix(queries, self.dim)
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        if allowed_ids is not None:
            allowed_ids = np.ascontiguousarray(allowed_ids, dtype=np.int64)
            if len(allowed_ids) == 0 or self.size == 0:
                return _empty(len(matrix), k)
            selector = faiss.IDSelectorBatch(allowed_ids)
            # An exact scan over a small allowed set beats HNSW, which may miss filtered-in items.
            if self.kind != "flat" and len(allowed_ids) <= 4096:
                return self._search_subset(matrix, k, allowed_ids)
        else:
            selector = None
        if self.size == 0:
            return _empty(len(matrix), k)
        faiss.cvar.distance_compute_blas_threshold = 1 if len(matrix) >= BLAS_BATCH_FROM else _BLAS_DEFAULT
        scores, ids = self.index.search(matrix, min(k, self.size), params=self._params(selector))
        return _padded(Hits(ids, scores), k)

    def _search_subset(self, matrix: np.ndarray, k: int, allowed: np.ndarray) -> Hits:
        present = allowed[self._rows_of(allowed) >= 0]
        if len(present) == 0:
            return _empty(len(matrix), k)
        scores = matrix @ self.vectors(present).T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return _padded(Hits(present[order], np.take_along_axis(scores, order, axis=1).astype(np.float32)), k)

    def _rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Storage row of each id, -1 where the index does not hold it."""
        if self._sorted_ids is None:
            stored = faiss.vector_to_array(self.index.id_map).astype(np.int64)
            order = np.argsort(stored, kind="stable")
            self._sorted_ids = (stored[order], order.astype(np.int64))
        sorted_ids, rows = self._sorted_ids
        ids = np.asarray(ids, dtype=np.int64)
        if len(sorted_ids) == 0:
            return np.full(len(ids), -1, dtype=np.int64)
        at = np.clip(np.searchsorted(sorted_ids, ids), 0, len(sorted_ids) - 1)
        return np.where(sorted_ids[at] == ids, rows[at], -1)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored (unit) vectors of ``ids``, one row each; KeyError for an id not held."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        rows = self._rows_of(ids)
        if (rows < 0).any():
            raise KeyError(f"ids not in the index: {ids[rows < 0][:5].tolist()}")
        if len(rows) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return faiss.downcast_index(self.index.index).reconstruct_batch(rows)

    def save(self, path: Path, meta: dict[str, object]) -> None:
        """Write the index and a JSON sidecar; the sidecar is written last, so a crash mid-way
        leaves a file that `load` rejects instead of one it trusts."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        faiss.write_index(self.index, str(tmp))
        tmp.replace(path)
        sidecar = {**meta, "kind": self.kind, "dim": self.dim, "size": self.size, "bytes": path.stat().st_size}
        _sidecar(path).write_text(json.dumps(sidecar, sort_keys=True))

    @classmethod
    def load(cls, path: Path, expect: dict[str, object]) -> FaissIndex:
        """Load an index saved with `save`; IndexFileError if missing, corrupt or built for other data."""
        try:
            meta = json.loads(_sidecar(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise IndexFileError(f"{path}: no readable sidecar ({exc})") from None
        stale = {k: (meta.get(k), v) for k, v in expect.items() if meta.get(k) != v}
        if stale:
            raise IndexFileError(f"{path}: built for other data: {stale}")
        if not path.is_file() or path.stat().st_size != meta.get("bytes"):
            raise IndexFileError(f"{path}: missing or truncated")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexFileError(f"{path}: corrupt ({str(exc).splitlines()[0]})") from None
        if index.ntotal != meta.get("size") or index.d != meta.get("dim"):
            raise IndexFileError(f"{path}: holds {index.ntotal}x{index.d}, sidecar says {meta.get('size')}x{meta.get('dim')}")
        return cls(index, str(meta["kind"]))


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _empty(n: int, k: int) -> Hits:
    return Hits(np.full((n, k), -1, dtype=np.int64), np.full((n, k), -np.inf, dtype=np.float32))


def _padded(hits: Hits, k: int) -> Hits:
    """FAISS returns min(k, size) columns and -1 ids where fewer match; make it always k columns."""
    ids, scores = hits.ids, hits.scores.astype(np.float32)
    if ids.shape[1] < k:
        pad = k - ids.shape[1]
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
    scores = np.where(ids == -1, -np.inf, scores).astype(np.float32)
    return Hits(ids, scores)
