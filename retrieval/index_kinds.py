"""Index kinds by name: which :class:`~retrieval.vector_index.VectorIndex` backend serves a space.

:data:`INDEX_BACKENDS` is a :class:`~retrieval.registry.Registry` (the project's one registry
style) whose factories build an index from data: ``factory(arg, *, vectors, ids) -> VectorIndex``.
It is the one place a kind is named: ``crs index/search --index-kind``,
``CatalogSearch.open(kind=...)`` and the cache's loader all go through it. A new vector engine
(Milvus, say) is its class plus one ``register`` line here, or, from a separate package, an entry
point in the group ``crs.index_kinds``. ``auto`` is not a backend: it picks flat or hnsw by size.

``milvus:URI`` (:mod:`retrieval.milvus_index`) is such a kind: its data lives in Milvus, so it is
saved as a pointer (ids + URI + collection) rather than as vectors, and loaded by its own class.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from retrieval.exact_index import ExactIndex
from retrieval.milvus_index import MilvusIndex, check_uri
from retrieval.registry import Registry
from retrieval.vector_index import FaissIndex, IndexFileError, IndexKind, VectorIndex, auto_kind, read_index_file

__all__ = ["INDEX_BACKENDS", "build_index", "check_kind", "kind_names", "load_index"]

# factory(arg, *, vectors, ids) -> VectorIndex; arg follows "kind:" in the spec, or is None.
INDEX_BACKENDS: Registry[VectorIndex] = Registry("index kind", "crs.index_kinds")


def _no_arg(kind: str) -> Callable[[str | None], None]:
    def check(arg: str | None) -> None:
        if arg is not None:  # refused, not ignored: "hnsw:64" must not quietly mean plain hnsw
            raise ValueError(f"index kind {kind!r} takes no argument, got {kind}:{arg}")
    return check


def _without_arg(kind: str, build: Callable[[np.ndarray, np.ndarray], VectorIndex]) -> Callable[..., VectorIndex]:
    def factory(arg: str | None, *, vectors: np.ndarray, ids: np.ndarray, **_: Any) -> VectorIndex:
        _no_arg(kind)(arg)
        return build(vectors, ids)
    return factory


def _milvus(arg: str | None, *, vectors: np.ndarray, ids: np.ndarray, **_: Any) -> VectorIndex:
    return MilvusIndex.build(vectors, ids, check_uri(arg))  # pymilvus is imported only here, when called


for _name, _build in (("flat", partial(FaissIndex.build, kind="flat")), ("hnsw", partial(FaissIndex.build, kind="hnsw")),
                      ("ivf", partial(FaissIndex.build, kind="ivf")), ("exact", ExactIndex.build)):
    INDEX_BACKENDS.register(_name, _without_arg(_name, _build), check_arg=_no_arg(_name))
INDEX_BACKENDS.register("milvus", _milvus, "milvus:URI", check_arg=check_uri)
# Kinds whose saved file is not a FAISS container: the sidecar's kind -> the loader of that file.
_OWN_LOADERS: dict[str, Callable[[Path, dict[str, object]], VectorIndex]] = {"milvus": MilvusIndex.load}


def kind_names() -> list[str]:
    """Every kind a setting may name, ``auto`` first (plugins' kinds included)."""
    return ["auto", *INDEX_BACKENDS.names()]


def check_kind(kind: str) -> IndexKind:
    """``kind`` if it names a kind with an argument it accepts (``milvus:URI`` needs a URI of a
    valid form; nothing is contacted); ValueError listing the kinds or saying what is wrong."""
    if kind == "auto":
        return kind
    if kind.partition(":")[0] not in INDEX_BACKENDS:
        raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(kind_names())}")
    return INDEX_BACKENDS.check(kind)


def build_index(vectors: np.ndarray, ids: np.ndarray, kind: IndexKind = "auto") -> VectorIndex:
    """A ``kind`` index of ``vectors`` (one row per id; normalised by the backend)."""
    spec = auto_kind(len(ids)) if check_kind(kind) == "auto" else kind
    return INDEX_BACKENDS.create(spec, vectors=vectors, ids=ids)


def load_index(path: Path, expect: dict[str, object]) -> VectorIndex:
    """Load what ``VectorIndex.save`` wrote, of any kind; IndexFileError if the file is missing,
    corrupt, built for other data than ``expect`` says, or of a kind not (or no longer) known."""
    own = _OWN_LOADERS.get(str(_saved_kind(path)))
    if own is not None:  # a pointer to data kept elsewhere (a Milvus collection), not a FAISS file
        return own(path, expect)
    stored, kind = read_index_file(path, expect)
    if kind in FaissIndex.KINDS:  # saved natively: the graph or lists come back as they were
        return FaissIndex(stored, kind)
    # Every other kind was saved as its ids and vectors (VectorIndex.save): rebuild it from them.
    ids = faiss.vector_to_array(stored.id_map).astype(np.int64)
    try:
        return build_index(stored.index.reconstruct_n(0, stored.ntotal), ids, kind)
    except ValueError as exc:  # e.g. a kind whose plugin was uninstalled: the caller rebuilds from the catalog
        raise IndexFileError(f"{path}: {exc}") from None


def _saved_kind(path: Path) -> object:
    """The kind a sidecar names, or None when it is unreadable (read_index_file then says why)."""
    try:
        return json.loads(path.with_name(path.name + ".json").read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
