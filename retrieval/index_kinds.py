"""Index kinds by name: which :class:`~retrieval.vector_index.VectorIndex` backend serves a space.

:data:`INDEX_BACKENDS` is a :class:`~retrieval.registry.Registry` (the project's one registry
style) whose factories build an index from data: ``factory(arg, *, vectors, ids) -> VectorIndex``.
It is the one place a kind is named: ``crs index/search --index-kind``,
``CatalogSearch.open(kind=...)`` and the cache's loader all go through it. A new vector engine
(Milvus, say) is its class plus one ``register`` line here, or, from a separate package, an entry
point in the group ``crs.index_kinds``. ``auto`` is not a backend: it picks flat or hnsw by size.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from retrieval.exact_index import ExactIndex
from retrieval.registry import Registry
from retrieval.vector_index import FaissIndex, IndexFileError, IndexKind, VectorIndex, auto_kind, read_index_file

__all__ = ["INDEX_BACKENDS", "build_index", "check_kind", "kind_names", "load_index"]

# factory(arg, *, vectors, ids) -> VectorIndex; arg follows "kind:" in the spec, or is None.
INDEX_BACKENDS: Registry[VectorIndex] = Registry("index kind", "crs.index_kinds")


def _without_arg(kind: str, build: Callable[[np.ndarray, np.ndarray], VectorIndex]) -> Callable[..., VectorIndex]:
    def factory(arg: str | None, *, vectors: np.ndarray, ids: np.ndarray, **_: Any) -> VectorIndex:
        if arg is not None:  # refused, not ignored: "hnsw:64" must not quietly mean plain hnsw
            raise ValueError(f"index kind {kind!r} takes no argument, got {kind}:{arg}")
        return build(vectors, ids)
    return factory


INDEX_BACKENDS.register("flat", _without_arg("flat", partial(FaissIndex.build, kind="flat")))
INDEX_BACKENDS.register("hnsw", _without_arg("hnsw", partial(FaissIndex.build, kind="hnsw")))
INDEX_BACKENDS.register("ivf", _without_arg("ivf", partial(FaissIndex.build, kind="ivf")))
INDEX_BACKENDS.register("exact", _without_arg("exact", ExactIndex.build))


def kind_names() -> list[str]:
    """Every kind a setting may name, ``auto`` first (plugins' kinds included)."""
    return ["auto", *INDEX_BACKENDS.names()]


def check_kind(kind: str) -> IndexKind:
    """``kind`` if it names a kind; ValueError listing the kinds otherwise."""
    if kind != "auto" and kind.partition(":")[0] not in INDEX_BACKENDS:
        raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(kind_names())}")
    return kind


def build_index(vectors: np.ndarray, ids: np.ndarray, kind: IndexKind = "auto") -> VectorIndex:
    """A ``kind`` index of ``vectors`` (one row per id; normalised by the backend)."""
    spec = auto_kind(len(ids)) if check_kind(kind) == "auto" else kind
    return INDEX_BACKENDS.create(spec, vectors=vectors, ids=ids)


def load_index(path: Path, expect: dict[str, object]) -> VectorIndex:
    """Load what ``VectorIndex.save`` wrote, of any kind; IndexFileError if the file is missing,
    corrupt, built for other data than ``expect`` says, or of a kind not (or no longer) known."""
    stored, kind = read_index_file(path, expect)
    if kind in FaissIndex.KINDS:  # saved natively: the graph or lists come back as they were
        return FaissIndex(stored, kind)
    # Every other kind was saved as its ids and vectors (VectorIndex.save): rebuild it from them.
    ids = faiss.vector_to_array(stored.id_map).astype(np.int64)
    try:
        return build_index(stored.index.reconstruct_n(0, stored.ntotal), ids, kind)
    except ValueError as exc:  # e.g. a kind whose plugin was uninstalled: the caller rebuilds from the catalog
        raise IndexFileError(f"{path}: {exc}") from None
