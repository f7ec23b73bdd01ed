"""The multimodal index: every item in up to three vector spaces and a lexical one, one fused,
exactly rescored search.

Each item has

* ``text``: its title, description and tags, in the joint image-text space;
* ``image``: its picture, in the same joint space (the projection head trained here, or CLIP);
* ``visual``: its picture as raw image features (EfficientNet), when the embedder has them.
  The joint space knows *what* a picture shows ("a cat"); the raw features know how it *looks*
  (colours, outline, drawing style). Cross-style retrieval measured best with both
  (README, "Retrieval quality");
* ``lexical``: its words (title, description, attribute values) in a BM25 index
  (:mod:`retrieval.lexical`), so names and rare words a dense vector blurs are found.

A catalog without pictures has no ``image`` or ``visual`` space at all (no zero vectors), and
the fusion weight those would have had goes to the spaces it has (:meth:`MultimodalIndex.targets`).

A query (:class:`Query`) may hold a text, images, liked and disliked items. It becomes one
target vector per space (:meth:`MultimodalIndex.targets`), and an item's score is the sum over
spaces of ``target_space . item_space``: a linear, Rocchio-style fusion whose weights
(:class:`FusionWeights`) are documented numbers, not a learned black box. The lexical space's
"target" holds every item's weighted BM25 score directly (an item's lexical vector is one-hot).

Search is two steps: each space's index proposes candidates (its top ``candidates`` under the
same filter; the raw visual space only rescores; the lexical space proposes only items that
share a word with the query), then the union is rescored exactly
with the fused score. So HNSW can
serve the proposals at scale while the final order and the scores stay exact. The spaces are
plain :class:`~retrieval.vector_index.VectorIndex` objects (``search`` and ``vectors``); which
backend serves them is a kind name (:mod:`retrieval.index_kinds`: flat, hnsw, ivf, exact).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retrieval.index_kinds import build_index, load_index
from retrieval.lexical import LexicalIndex
from retrieval.vector_index import IndexFileError, IndexKind, VectorIndex

__all__ = [
    "SPACES",
    "LEXICAL",
    "ItemVectors",
    "Query",
    "FusionWeights",
    "DEFAULT_WEIGHTS",
    "ScoredItem",
    "MultimodalIndex",
    "EmptyQueryError",
]

SPACES = ("text", "image", "visual")  # the vector spaces; "image" and "visual" only with pictures
LEXICAL = "lexical"
INDEX_FORMAT = 1


class EmptyQueryError(ValueError):
    """A query with nothing to search by (no text, image or liked item)."""


@dataclass(frozen=True)
class ItemVectors:
    """Row i of every matrix belongs to ``ids[i]``; rows are unit vectors (or zero: an item
    without a picture). ``image`` None: no item has a picture, so there is no picture space."""

    ids: np.ndarray  # int64 (n,)
    text: np.ndarray  # (n, d)
    image: np.ndarray | None  # (n, d), the same space as text
    visual: np.ndarray | None = None  # (n, d_visual); only beside image

    def __post_init__(self) -> None:
        n = len(self.ids)
        for space, matrix in self.spaces().items():
            if matrix.ndim != 2 or matrix.shape[0] != n:
                raise ValueError(f"{space} vectors have shape {matrix.shape}, expected ({n}, d)")
        if self.image is None and self.visual is not None:
            raise ValueError("visual vectors need image vectors: both are of the items' pictures")
        if self.image is not None and self.text.shape[1] != self.image.shape[1]:
            raise ValueError(f"text ({self.text.shape[1]}-d) and image ({self.image.shape[1]}-d) "
                             "vectors must share one space")

    def spaces(self) -> dict[str, np.ndarray]:
        out = {"text": self.text}
        if self.image is not None:
            out["image"] = self.image
        if self.visual is not None:
            out["visual"] = self.visual
        return out


@dataclass(frozen=True)
class Query:
    """What to search by; any part may be absent, but not all of text, images and ``liked``.

    ``images`` and ``visual`` hold one row per query image (joint space, raw features), from
    :meth:`retrieval.embedder.Embedder.encode_images`. Several images are averaged. ``words`` is
    the query text itself, for the lexical space; without it a text query is dense only.
    """

    text: np.ndarray | None = None  # (d,) joint-space vector of the query text
    words: str | None = None  # the text as typed (lexical space)
    images: np.ndarray | None = None  # (m, d)
    visual: np.ndarray | None = None  # (m, d_visual) or None
    liked: tuple[int, ...] = ()
    disliked: tuple[int, ...] = ()

    def is_empty(self) -> bool:
        return (self.text is None and not (self.words and self.words.strip())
                and (self.images is None or len(self.images) == 0) and not self.liked)


@dataclass(frozen=True)
class FusionWeights:
    """How much each (query part -> item space) similarity counts in the fused score.

    Defaults, and why:

    * a text query is compared with item texts and item pictures equally (0.5 / 0.5): titles
      miss what pictures show and pictures miss what words say;
    * its words also count in the lexical space (``text_to_lexical``): a query word the item
      carries (a name, a rare title word) adds up to that much, the best match all of it
      (BM25 scores divided by the query's best; benchmarks/hybrid_retrieval.py chose 0.25);
    * a space the catalog lacks passes its weight to the spaces the same query part reaches,
      in proportion to theirs: without pictures a text query's 0.5 for them goes to item text
      and lexical (0.5 : 0.25), and without the raw visual space an image counts 1.0 in the
      joint one. The total a query part can score stays the same, so scores keep one scale;
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
    text_to_lexical: float = 0.25
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
    """One :class:`VectorIndex` per vector space over the same ids (``text`` always; ``image``
    and ``visual`` when the items have pictures), and optionally a :class:`LexicalIndex`,
    searched with fused scores."""

    def __init__(self, spaces: dict[str, VectorIndex], lexical: LexicalIndex | None = None) -> None:
        if "text" not in spaces:
            raise ValueError("a multimodal index needs at least the text space")
        if "visual" in spaces and "image" not in spaces:
            raise ValueError("a visual space needs the image space beside it")
        sizes = {name: index.size for name, index in spaces.items()}
        if lexical is not None:
            sizes[LEXICAL] = lexical.size
        if len(set(sizes.values())) != 1:
            raise IndexFileError(f"spaces hold different numbers of items: {sizes}")
        self.spaces = spaces
        self.lexical = lexical
        self.size = spaces["text"].size
        self.dim = spaces["text"].dim

    @classmethod
    def build(cls, vectors: ItemVectors, kind: IndexKind = "auto", lexical: LexicalIndex | None = None) -> MultimodalIndex:
        return cls({name: build_index(matrix, vectors.ids, kind) for name, matrix in vectors.spaces().items()},
                   lexical)

    @property
    def has_visual(self) -> bool:
        return "visual" in self.spaces

    @property
    def has_pictures(self) -> bool:
        return "image" in self.spaces

    # -- queries -----------------------------------------------------------------------------

    def targets(self, query: Query, weights: FusionWeights = DEFAULT_WEIGHTS) -> dict[str, np.ndarray]:
        """The query as one (unnormalised) target per space; an item's fused score is the sum
        over spaces of ``target . item``. The ``lexical`` target (when the query has words and
        the index a lexical space) holds the weighted score of every item, in the lexical
        index's row order."""
        if query.is_empty():
            raise EmptyQueryError("empty query: give a text, an image or an item you liked")
        dims = {name: index.dim for name, index in self.spaces.items()}
        out = {name: np.zeros(dim, dtype=np.float32) for name, dim in dims.items()}
        has_image = query.images is not None and len(query.images) > 0
        words = query.words if query.words and query.words.strip() and self.lexical is not None else None
        scale = weights.modifier if has_image else 1.0
        reached = {"text": weights.text_to_text if query.text is not None else 0.0,
                   "image": weights.text_to_image if query.text is not None else 0.0,
                   LEXICAL: weights.text_to_lexical if words is not None else 0.0}
        text_weights = _redistribute(reached, held={"text", LEXICAL, *self.spaces})
        if query.text is not None:
            text = _unit(_check(query.text, dims["text"], "query text vector"))
            for name in ("text", "image"):
                if text_weights.get(name):
                    out[name] += scale * text_weights[name] * text
        if words is not None and text_weights.get(LEXICAL):
            out[LEXICAL] = scale * text_weights[LEXICAL] * self.lexical.scores(words)
        if has_image and self.has_pictures:
            joint = _mean_unit(_check(query.images, dims["image"], "query image vectors"))
            image_weights = _redistribute({"image": weights.image_to_image, "visual": weights.image_to_visual},
                                          held=set(self.spaces))
            out["image"] += image_weights.get("image", 0.0) * joint
            # A query image without raw features (a caller that has none) leaves that part out.
            if image_weights.get("visual") and query.visual is not None and len(query.visual):
                out["visual"] += image_weights["visual"] * _mean_unit(
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
            if name == LEXICAL:
                hits = self.lexical.top(target, per_space, allowed_ids=allowed_ids)
            else:
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
        parts = {}
        for name, target in targets.items():
            if not np.any(target):
                continue
            if name == LEXICAL:
                rows = self.lexical.rows_of(ids)
                parts[name] = np.where(rows >= 0, target[rows], 0.0).astype(np.float32)
            else:
                parts[name] = self.spaces[name].vectors(ids) @ target
        total = np.sum(list(parts.values()), axis=0) if parts else np.zeros(len(ids), dtype=np.float32)
        return [ScoredItem(int(item_id), float(total[row]), {name: float(p[row]) for name, p in parts.items()})
                for row, item_id in enumerate(ids)]

    def vectors(self, space: str, ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of ``ids`` in ``space``. Without pictures every item's ``image`` vector
        is zero, as an item without a picture has in a catalog with some: answered, not stored."""
        ids = np.asarray(ids, dtype=np.int64)
        if space == "image" and not self.has_pictures:
            rows = self.spaces["text"].rows_of(ids.reshape(-1))
            if (rows < 0).any():
                raise KeyError(f"ids not in the index: {ids.reshape(-1)[rows < 0][:5].tolist()}")
            return np.zeros((len(rows), self.dim), dtype=np.float32)
        return self.spaces[space].vectors(ids)

    # -- persistence ---------------------------------------------------------------------------

    def save(self, folder: Path, meta: dict[str, object]) -> None:
        """One index file (+ JSON sidecar carrying ``meta``) per vector space under ``folder``;
        the file name stays ``<space>.faiss`` for every kind: all are FAISS files
        (VectorIndex.save). The text space's sidecar lists the spaces; files of spaces this
        index lacks (pictures of a catalog that has none now) are removed. The lexical space is
        saved apart (:meth:`LexicalIndex.save`): it does not depend on the embedder."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in SPACES:
            if name not in self.spaces:
                for path in (folder / f"{name}.faiss", folder / f"{name}.faiss.json"):
                    path.unlink(missing_ok=True)
        # The text space last: its sidecar names the others, so it must not outlive them.
        for name in sorted(self.spaces, key=lambda n: n == "text"):
            extra = {"spaces": [s for s in SPACES if s in self.spaces]} if name == "text" else {}
            self.spaces[name].save(folder / f"{name}.faiss", {**meta, **extra, "format": INDEX_FORMAT, "space": name})

    @classmethod
    def load(cls, folder: Path, expect: dict[str, object], *, visual: bool,
             lexical: LexicalIndex | None = None) -> MultimodalIndex:
        """Load what :meth:`save` wrote; :class:`IndexFileError` if anything is missing,
        corrupt, of another format, or was built for other data than ``expect`` says. The
        spaces are those the text sidecar lists (an index saved before it listed them has text,
        image and, with ``visual``, visual)."""
        text = load_index(folder / "text.faiss", {**expect, "format": INDEX_FORMAT, "space": "text"})
        try:
            listed = json.loads((folder / "text.faiss.json").read_text()).get("spaces")
        except (OSError, json.JSONDecodeError) as exc:
            raise IndexFileError(f"{folder}: text sidecar unreadable ({exc})") from None
        names = listed if listed is not None else [s for s in SPACES if s != "visual" or visual]
        spaces = {"text": text}
        for name in names:
            if name != "text":
                spaces[name] = load_index(folder / f"{name}.faiss", {**expect, "format": INDEX_FORMAT, "space": name})
        return cls(spaces, lexical)


def _redistribute(weights: dict[str, float], held: set[str]) -> dict[str, float]:
    """``weights`` of the spaces in ``held``, each raised by its share of the weight of those
    not held, in proportion to the held ones' weights (nothing held or weighted: nothing)."""
    kept = {name: w for name, w in weights.items() if name in held and w}
    total, kept_total = sum(weights.values()), sum(kept.values())
    return {name: w * total / kept_total for name, w in kept.items()} if kept_total else {}


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
