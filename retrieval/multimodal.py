"""The multimodal index: every item in three vector spaces, one fused, exactly rescored search.

Each item has

* ``text``: its title, description and tags, in the joint image-text space;
* ``image``: its picture, in the same joint space (the projection head trained here, or CLIP);
* ``visual``: its picture as raw image features (EfficientNet), when the embedder has them.
  The joint space knows *what* a picture shows ("a cat"); the raw features know how it *looks*
  (colours, outline, drawing style). Cross-style retrieval measured best with both
  (README, "Retrieval quality").

A query (:class:`Query`) may hold a text, images, liked and disliked items. It becomes one
target vector per space (:meth:`MultimodalIndex.targets`), and an item's score is the sum over
spaces of ``target_space . item_space``: a linear, Rocchio-style fusion whose weights
(:class:`FusionWeights`) are documented numbers, not a learned black box.

Search is two steps: each space's vector index proposes candidates (its top ``candidates``
under the same filter; the raw visual space only rescores), then the union is rescored exactly
with the fused score. So HNSW can
serve the proposals at scale while the final order and the scores stay exact. The spaces are
plain :class:`~retrieval.vector_index.VectorIndex` objects (``search`` and ``vectors``); which
backend serves them is a kind name (:mod:`retrieval.index_kinds`: flat, hnsw, ivf, exact).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retrieval.index_kinds import build_index, load_index
from retrieval.vector_index import IndexFileError, IndexKind, VectorIndex

__all__ = [
    "SPACES",
    "ItemVectors",
    "Query",
    "FusionWeights",
    "DEFAULT_WEIGHTS",
    "ScoredItem",
    "MultimodalIndex",
    "EmptyQueryError",
]

SPACES = ("text", "image", "visual")
INDEX_FORMAT = 1


class EmptyQueryError(ValueError):
    """A query with nothing to search by (no text, image or liked item)."""


@dataclass(frozen=True)
class ItemVectors:
    """Row i of every matrix belongs to ``ids[i]``; rows are unit vectors (or zero: no image)."""

    ids: np.ndarray  # int64 (n,)
    text: np.ndarray  # (n, d)
    image: np.ndarray  # (n, d), the same space as text
    visual: np.ndarray | None = None  # (n, d_visual)

    def __post_init__(self) -> None:
        n = len(self.ids)
        for space, matrix in self.spaces().items():
            if matrix.ndim != 2 or matrix.shape[0] != n:
                raise ValueError(f"{space} vectors have shape {matrix.shape}, expected ({n}, d)")
        if self.text.shape[1] != self.image.shape[1]:
            raise ValueError(f"text ({self.text.shape[1]}-d) and image ({self.image.shape[1]}-d) "
                             "vectors must share one space")

    def spaces(self) -> dict[str, np.ndarray]:
        out = {"text": self.text, "image": self.image}
        if self.visual is not None:
            out["visual"] = self.visual
        return out


@dataclass(frozen=True)
class Query:
    """What to search by; any part may be absent, but not all of text, images and ``liked``.

    ``images`` and ``visual`` hold one row per query image (joint space, raw features), from
    :meth:`retrieval.embedder.Embedder.encode_images`. Several images are averaged.
    """

    text: np.ndarray | None = None  # (d,) joint-space vector of the query text
    images: np.ndarray | None = None  # (m, d)
    visual: np.ndarray | None = None  # (m, d_visual) or None
    liked: tuple[int, ...] = ()
    disliked: tuple[int, ...] = ()

    def is_empty(self) -> bool:
        return self.text is None and (self.images is None or len(self.images) == 0) and not self.liked


@dataclass(frozen=True)
class FusionWeights:
    """How much each (query part -> item space) similarity counts in the fused score.

    Defaults, and why:

    * a text query is compared with item texts and item pictures equally (0.5 / 0.5): titles
      miss what pictures show and pictures miss what words say;
    * a query image counts 0.7 in the joint space (the concept) and 0.3 in raw features (the
      look): the mix that measured best for cross-style retrieval (benchmarks/retrieval_quality.py,
      fusion R@10 0.940 vs 0.914 joint alone);
    * with both an image and a text (a composed query, "like this but in 3D") the text part is
      scaled by ``modifier``;
    * liked items pull the query towards themselves in every space (``liked``, Rocchio's beta)
      and disliked ones push it away (``disliked``, gamma), each averaged over the items.
    """

    text_to_text: float = 0.5
    text_to_image: float = 0.5
    image_to_image: float = 0.7
    image_to_visual: float = 0.3
    modifier: float = 1.0
    liked: float = 0.5
    disliked: float = 0.25


DEFAULT_WEIGHTS = FusionWeights()


@dataclass(frozen=True)
class ScoredItem:
    id: int
    score: float
    parts: dict[str, float] = field(default_factory=dict)  # score contributed by each space


class MultimodalIndex:
    """One :class:`VectorIndex` per space over the same ids, searched with fused scores."""

    def __init__(self, spaces: dict[str, VectorIndex]) -> None:
        if "text" not in spaces or "image" not in spaces:
            raise ValueError("a multimodal index needs at least the text and image spaces")
        sizes = {name: index.size for name, index in spaces.items()}
        if len(set(sizes.values())) != 1:
            raise IndexFileError(f"spaces hold different numbers of items: {sizes}")
        self.spaces = spaces
        self.size = spaces["text"].size
        self.dim = spaces["text"].dim

    @classmethod
    def build(cls, vectors: ItemVectors, kind: IndexKind = "auto") -> MultimodalIndex:
        return cls({name: build_index(matrix, vectors.ids, kind) for name, matrix in vectors.spaces().items()})

    @property
    def has_visual(self) -> bool:
        return "visual" in self.spaces

    # -- queries -----------------------------------------------------------------------------

    def targets(self, query: Query, weights: FusionWeights = DEFAULT_WEIGHTS) -> dict[str, np.ndarray]:
        """The query as one (unnormalised) target vector per space; an item's fused score is
        the sum over spaces of ``target . item``."""
        if query.is_empty():
            raise EmptyQueryError("empty query: give a text, an image or an item you liked")
        dims = {name: index.dim for name, index in self.spaces.items()}
        out = {name: np.zeros(dim, dtype=np.float32) for name, dim in dims.items()}
        has_image = query.images is not None and len(query.images) > 0
        if query.text is not None:
            text = _unit(_check(query.text, dims["text"], "query text vector"))
            scale = weights.modifier if has_image else 1.0
            out["text"] += scale * weights.text_to_text * text
            out["image"] += scale * weights.text_to_image * text
        if has_image:
            joint = _mean_unit(_check(query.images, dims["image"], "query image vectors"))
            # Without a visual space (e.g. CLIP) the joint space carries the whole image weight.
            joint_weight = weights.image_to_image + (0.0 if self.has_visual else weights.image_to_visual)
            out["image"] += joint_weight * joint
            if self.has_visual and query.visual is not None and len(query.visual):
                out["visual"] += weights.image_to_visual * _mean_unit(
                    _check(query.visual, dims["visual"], "query visual vectors"))
        for ids, weight in ((query.liked, weights.liked), (query.disliked, -weights.disliked)):
            if ids and weight:
                for name, index in self.spaces.items():
                    out[name] += weight * index.vectors(np.asarray(ids, dtype=np.int64)).mean(axis=0)
        return out

    def search(
        self,
        query: Query,
        k: int = 10,
        *,
        allowed_ids: np.ndarray | None = None,
        exclude_ids: Iterable[int] = (),
        weights: FusionWeights = DEFAULT_WEIGHTS,
        candidates: int = 200,
    ) -> list[ScoredItem]:
        """The top ``k`` items by fused score, best first.

        ``allowed_ids`` restricts the search (an empty array gives no results, never items
        outside it); ``exclude_ids`` drops items (already shown, rejected). Each space proposes
        ``max(candidates, 4k)`` items before exact rescoring.
        """
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        targets = self.targets(query, weights)
        exclude = {int(i) for i in exclude_ids}
        per_space = max(candidates, 4 * k) + len(exclude)
        pool: set[int] = set()
        for name, target in targets.items():
            # The raw visual space (1280-d, 63 MB for the demo) only rescores: every query that
            # targets it also targets the joint image space, whose proposals cover its
            # neighbours, and a scan of it costs more than the rest of the search.
            if not np.any(target) or (name == "visual" and np.any(targets["image"])):
                continue
            hits = self.spaces[name].search(target[None, :], per_space, allowed_ids=allowed_ids)
            pool.update(int(i) for i in hits.ids[0] if i != -1)
        pool -= exclude
        if not pool:
            return []
        scored = self.score_ids(targets, np.fromiter(pool, dtype=np.int64, count=len(pool)))
        scored.sort(key=lambda s: (-s.score, s.id))
        return scored[:k]

    def score_ids(self, targets: dict[str, np.ndarray], ids: np.ndarray) -> list[ScoredItem]:
        """Exact fused scores of ``ids`` (which must be in the index) for ``targets``."""
        ids = np.asarray(ids, dtype=np.int64)
        parts = {name: self.spaces[name].vectors(ids) @ target for name, target in targets.items() if np.any(target)}
        total = np.sum(list(parts.values()), axis=0) if parts else np.zeros(len(ids), dtype=np.float32)
        return [ScoredItem(int(item_id), float(total[row]), {name: float(p[row]) for name, p in parts.items()})
                for row, item_id in enumerate(ids)]

    def vectors(self, space: str, ids: Sequence[int]) -> np.ndarray:
        return self.spaces[space].vectors(np.asarray(ids, dtype=np.int64))

    # -- persistence ---------------------------------------------------------------------------

    def save(self, folder: Path, meta: dict[str, object]) -> None:
        """One index file (+ JSON sidecar carrying ``meta``) per space under ``folder``; the file
        name stays ``<space>.faiss`` for every kind: all are FAISS files (VectorIndex.save)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, index in self.spaces.items():
            index.save(folder / f"{name}.faiss", {**meta, "format": INDEX_FORMAT, "space": name})

    @classmethod
    def load(cls, folder: Path, expect: dict[str, object], *, visual: bool) -> MultimodalIndex:
        """Load what :meth:`save` wrote; :class:`IndexFileError` if anything is missing,
        corrupt, of another format, or was built for other data than ``expect`` says."""
        names = [s for s in SPACES if s != "visual" or visual]
        return cls({name: load_index(folder / f"{name}.faiss", {**expect, "format": INDEX_FORMAT, "space": name})
                    for name in names})


def _check(vectors: np.ndarray, dim: int, what: str) -> np.ndarray:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.shape[-1] != dim or arr.ndim > 2:
        raise ValueError(f"{what} have shape {arr.shape}, expected (..., {dim})")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contain NaN or infinity")
    return arr


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _mean_unit(rows: np.ndarray) -> np.ndarray:
    rows = np.atleast_2d(rows)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return _unit((rows / np.where(norms > 0, norms, 1.0)).mean(axis=0))
