"""Nearest-neighbour search over one vector space, behind a one-method interface.

`VectorIndex.search` is the one method a backend must write; `vectors` by id and `save` are
shared behaviour of the base class, so the rest of the system (retrieval/multimodal.py) sees only
`VectorIndex` and a distributed vector engine can replace FAISS later. Backends keep the caller's
integer ids and filter by id *before* ranking, so a filter never returns items outside it.
Inner product on L2-normalised vectors = cosine similarity.

Here: the base class and FAISS (`FaissIndex`: flat, hnsw, ivf). The exact numpy index is in
retrieval/exact_index.py; kind names -> builders in retrieval/index_kinds.py.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import faiss
import numpy as np

# "auto" or a kind registered in retrieval.index_kinds.INDEX_BACKENDS, checked there at run time:
# a str, not a Literal, so a new backend (or a plugin's) is a class and a registry line, no edit here.
IndexKind = str
FaissKind = Literal["auto", "flat", "hnsw", "ivf"]
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


class StoredRows(Protocol):
    """How a backend hands its stored vectors to the base class: the unit vectors at storage rows
    ``rows`` (row i holds the backend's ``ids[i]``), one per row, float32."""

    def __call__(self, rows: np.ndarray) -> np.ndarray: ...


class VectorIndex(ABC):
    """Nearest neighbours by inner product over unit vectors, keyed by the caller's int64 ids.

    A backend implements `search` (the one abstract method) and gives the base its ids in
    storage order and a :class:`StoredRows` reader. Everything else the rest of the system needs
    (`vectors` by id, the exact scan a backend may use for small filtered sets, input checks,
    `save`) is shared here, so backends cannot drift apart outside `search`.
    Which kinds exist and how one is built or loaded by name: :mod:`retrieval.index_kinds`.
    """

    def __init__(self, kind: str, dim: int, ids: np.ndarray, read_rows: StoredRows) -> None:
        self.kind = kind
        self.dim = dim
        self.ids = np.ascontiguousarray(ids, dtype=np.int64)
        self._read_rows = read_rows
        self._sorted_ids: tuple[np.ndarray, np.ndarray] | None = None  # (ids sorted, their rows), built lazily

    @property
    def size(self) -> int:
        return len(self.ids)

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> Hits:
        """Top-k ids per query, always k columns (id -1, score -inf where fewer match); with
        `allowed_ids`, only those ids can be returned (empty -> no hits), filtered before ranking."""

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored (unit) vectors of ``ids``, one row each; KeyError for an id not held."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        rows = self.rows_of(ids)
        if (rows < 0).any():
            raise KeyError(f"ids not in the index: {ids[rows < 0][:5].tolist()}")
        if len(rows) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._read_rows(rows)

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Storage row of each id, -1 where the index does not hold it."""
        if self._sorted_ids is None:
            order = np.argsort(self.ids, kind="stable")
            self._sorted_ids = (self.ids[order], order.astype(np.int64))
        sorted_ids, rows = self._sorted_ids
        ids = np.asarray(ids, dtype=np.int64)
        if len(sorted_ids) == 0:
            return np.full(len(ids), -1, dtype=np.int64)
        at = np.clip(np.searchsorted(sorted_ids, ids), 0, len(sorted_ids) - 1)
        return np.where(sorted_ids[at] == ids, rows[at], -1)

    def save(self, path: Path, meta: dict[str, object]) -> None:
        """Write the index to ``path`` and a JSON sidecar (``meta`` + kind, dim, size), for
        :func:`retrieval.index_kinds.load_index`.

        By default an index is saved as what defines it, its ids and vectors, in FAISS's flat
        container: the one file layout the cache (and its checks for stale, truncated and corrupt
        files) already knows. Loading rebuilds the kind named in the sidecar from those vectors.
        A backend with state worth keeping (an HNSW graph) overrides this.
        """
        container = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        if self.size:
            container.add_with_ids(np.ascontiguousarray(self.vectors(self.ids), dtype=np.float32), self.ids)
        _write(container, path, {**meta, "kind": self.kind, "dim": self.dim, "size": self.size})

    # -- shared by implementations of `search` ---------------------------------------------------

    def _queries(self, queries: np.ndarray, k: int) -> np.ndarray:
        """The queries as unit rows of this index's dim; ValueError for bad queries or k, so every
        backend refuses the same input with the same message."""
        matrix = as_matrix(queries, self.dim)
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        return matrix

    def _held(self, allowed_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The allowed ids this index holds, ascending and without repeats, and their rows."""
        ids = np.unique(np.asarray(allowed_ids, dtype=np.int64).reshape(-1))
        rows = self.rows_of(ids)
        return ids[rows >= 0], rows[rows >= 0]

    def _scan(self, matrix: np.ndarray, k: int, allowed_ids: np.ndarray) -> Hits:
        """Exact top-k over the allowed ids only: a filter can never leak, and nothing is missed."""
        ids, rows = self._held(allowed_ids)
        if len(ids) == 0:
            return _empty(len(matrix), k)
        return top_k(matrix @ self._read_rows(rows).T, ids, k)


def top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> Hits:
    """Rank ``scores`` (n_queries, m) over ``ids`` (m, ascending): best first, ties to the smaller
    id (the stable sort keeps id order), padded to k columns.

    A partition finds each row's k-th best score, and everything scoring at least that is sorted:
    O(m) per query plus a small sort, and ties at the cut-off cannot make the result depend on how
    the partition happened to split them.
    """
    n_queries, m = scores.shape
    take = min(k, m)
    out_ids = np.empty((n_queries, take), dtype=np.int64)
    out_scores = np.empty((n_queries, take), dtype=np.float32)
    for q in range(n_queries):
        row = scores[q]
        if take < m:
            candidates = np.flatnonzero(row >= np.partition(row, m - take)[m - take])
        else:
            candidates = np.arange(m)
        best = candidates[np.argsort(-row[candidates], kind="stable")[:take]]
        out_ids[q] = ids[best]
        out_scores[q] = row[best]
    return _padded(Hits(out_ids, out_scores), k)


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


def check_ids(ids: np.ndarray, n: int) -> np.ndarray:
    """One unique int64 id per vector, or ValueError."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if len(ids) != n:
        raise ValueError(f"{n} vectors but {len(ids)} ids")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("ids must be unique")
    return ids


def auto_kind(n: int) -> str:
    """What "auto" means for n vectors."""
    return "hnsw" if n >= AUTO_HNSW_FROM else "flat"


class FaissIndex(VectorIndex):
    """FAISS: exact ("flat") or approximate ("hnsw", "ivf") search, saved natively."""

    KINDS = ("flat", "hnsw", "ivf")

    def __init__(self, index: faiss.Index, kind: str) -> None:
        self.index = index
        if kind == "ivf":  # reconstructing rows of an IVF index needs its direct map
            faiss.extract_index_ivf(index.index).make_direct_map()
        storage = faiss.downcast_index(index.index)
        super().__init__(kind, index.d, faiss.vector_to_array(index.id_map),
                         lambda rows: storage.reconstruct_batch(np.ascontiguousarray(rows, dtype=np.int64)))

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, kind: FaissKind = "auto") -> FaissIndex:
        matrix = as_matrix(vectors)
        ids = check_ids(ids, len(matrix))
        if kind == "auto":
            kind = auto_kind(len(matrix))  # type: ignore[assignment]
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
        matrix = self._queries(queries, k)
        if allowed_ids is not None:
            allowed_ids = np.ascontiguousarray(allowed_ids, dtype=np.int64)
            if len(allowed_ids) == 0 or self.size == 0:
                return _empty(len(matrix), k)
            # An exact scan over a small allowed set beats HNSW, which may miss filtered-in items.
            if self.kind != "flat" and len(allowed_ids) <= 4096:
                return self._scan(matrix, k, allowed_ids)
            selector = faiss.IDSelectorBatch(allowed_ids)
        else:
            selector = None
        if self.size == 0:
            return _empty(len(matrix), k)
        faiss.cvar.distance_compute_blas_threshold = 1 if len(matrix) >= BLAS_BATCH_FROM else _BLAS_DEFAULT
        scores, ids = self.index.search(matrix, min(k, self.size), params=self._params(selector))
        return _padded(Hits(ids, scores), k)

    def save(self, path: Path, meta: dict[str, object]) -> None:
        """Write the FAISS index itself (graph, lists) and a JSON sidecar; see `load`."""
        _write(self.index, path, {**meta, "kind": self.kind, "dim": self.dim, "size": self.size})

    @classmethod
    def load(cls, path: Path, expect: dict[str, object]) -> FaissIndex:
        """Load an index saved with `save`; IndexFileError if missing, corrupt, built for other
        data, or of a kind FAISS does not serve itself (:func:`retrieval.index_kinds.load_index`
        loads every kind)."""
        index, kind = read_index_file(path, expect)
        if kind not in cls.KINDS:
            raise IndexFileError(f"{path}: holds a {kind!r} index, not one of FAISS's {cls.KINDS}")
        return cls(index, kind)


def _write(index: faiss.Index, path: Path, sidecar: dict[str, object]) -> None:
    """Write ``index`` and its sidecar; the sidecar is written last, so a crash mid-way leaves a
    file that `read_index_file` rejects instead of one it trusts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    faiss.write_index(index, str(tmp))
    tmp.replace(path)
    _sidecar(path).write_text(json.dumps({**sidecar, "bytes": path.stat().st_size}, sort_keys=True))


def read_index_file(path: Path, expect: dict[str, object]) -> tuple[faiss.Index, str]:
    """The FAISS index in ``path`` and the kind its sidecar names; IndexFileError if missing,
    corrupt, or built for other data than ``expect`` says."""
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
    if not isinstance(index, faiss.IndexIDMap2):
        raise IndexFileError(f"{path}: not an id-mapped index ({type(index).__name__})")
    return index, str(meta["kind"])


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
