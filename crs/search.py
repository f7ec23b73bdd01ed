"""Search a catalog: text, images, both, liked/disliked items and attribute filters.

The crs-side face of :mod:`retrieval.multimodal`: it opens (or builds) the catalog's index,
turns ``--where`` filters into allowed ids from the store, encodes the query once, and returns
hits with the item's title, every attribute and its image. The dialogue manager, the CLI and
the web app all search through :class:`CatalogSearch`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from retrieval.embedder import DEFAULT_EMBEDDER, Embedder, load_embedder
from retrieval.features import Progress
from retrieval.images import ImageLoadError, ImageSource
from retrieval.index_kinds import check_kind
from retrieval.multimodal import DEFAULT_WEIGHTS, EmptyQueryError, FusionWeights, MultimodalIndex, Query, ScoredItem
from retrieval.vector_index import IndexKind

from .catalog.browse import item_attributes
from .catalog.ingest import item_image_path
from .catalog_index import IndexStatus, open_index
from .errors import UserError
from .filters import Condition, allowed_item_ids, parse_where
from .store import Store
from .store.models import Catalog, Item

Where = Iterable[str] | Mapping[str, Any] | None
# The most results one search returns. The index allocates per requested result, so an unbounded
# k is a memory bomb (k=100,000,000 reached 5.3 GB). Command-line options and batch lines are
# checked against this one number, and CatalogSearch checks it again so every caller is covered.
MAX_K = 1000


class QueryError(UserError, ValueError):
    """A query that cannot be run: empty, an unreadable image, an unknown item."""


@dataclass(frozen=True)
class SearchHit:
    id: str  # the catalog's own (external) id
    item_id: int  # the store's id, also the index's
    title: str
    score: float
    attributes: dict[str, Any]
    image: str  # a local file path, or the catalog's image reference (URL) when not stored locally
    parts: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "score": round(self.score, 6), "attributes": self.attributes,
                "image": self.image}


def check_k(k: object) -> int:
    """``k`` itself if it is a whole number from 1 to MAX_K; QueryError otherwise."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise QueryError(f"k must be between 1 and {MAX_K}, got {k!r}")
    return k


class CatalogSearch:
    def __init__(self, store: Store, catalog: Catalog, embedder: Embedder, index: MultimodalIndex,
                 status: IndexStatus) -> None:
        self.store = store
        self.catalog = catalog
        self.embedder = embedder
        self.index = index
        self.status = status

    @classmethod
    def open(cls, store: Store, catalog: Catalog, embedder: Embedder | str = DEFAULT_EMBEDDER, *,
             rebuild: bool = False, kind: IndexKind = "auto", progress: Progress | None = None) -> CatalogSearch:
        # Checked before anything loads: a cached index is opened whatever kind it was built as,
        # so an unknown kind would otherwise pass unnoticed until the next rebuild.
        check_kind(kind)
        if isinstance(embedder, str):
            embedder = load_embedder(embedder)
        index, status = open_index(store, catalog, embedder, rebuild=rebuild, kind=kind, progress=progress)
        return cls(store, catalog, embedder, index, status)

    def query(self, text: str | None = None, images: Sequence[ImageSource] = (), *,
              liked: Sequence[int] = (), disliked: Sequence[int] = ()) -> Query:
        """Encode what a person gave; QueryError for an unreadable image or an empty query."""
        try:
            query = self.embedder.query(text, images, liked=liked, disliked=disliked)
        except ImageLoadError as exc:
            raise QueryError(f"cannot read the query image: {exc}") from None
        if query.is_empty():
            raise QueryError("empty query: give a text, an image or an item you liked")
        referenced = [int(i) for i in (*liked, *disliked)]
        known = self._known(referenced)
        unknown = [i for i in referenced if i not in known]
        if unknown:
            raise QueryError(f"items not in catalog {self.catalog.name!r}: {unknown[:5]}")
        return query

    def search(self, text: str | None = None, images: Sequence[ImageSource] = (), *, where: Where = None,
               k: int = 10, liked: Sequence[int] = (), disliked: Sequence[int] = (), exclude: Iterable[int] = (),
               weights: FusionWeights = DEFAULT_WEIGHTS) -> list[SearchHit]:
        """The top ``k`` items for a text and/or images, liked and disliked items, under ``where``."""
        check_k(k)  # before the query is encoded: a bad k costs nothing
        conditions = parse_where(where)
        query = self.query(text, images, liked=liked, disliked=disliked)
        return self.search_query(query, conditions, k=k, exclude=exclude, weights=weights)

    def search_query(self, query: Query, conditions: list[Condition] | None = None, *, k: int = 10,
                     exclude: Iterable[int] = (), weights: FusionWeights = DEFAULT_WEIGHTS) -> list[SearchHit]:
        """Search with an already encoded query (the dialogue manager composes its own)."""
        check_k(k)
        allowed = allowed_item_ids(self.store, self.catalog, conditions or [])
        try:
            scored = self.index.search(query, k, allowed_ids=allowed, exclude_ids=exclude, weights=weights)
        except EmptyQueryError as exc:
            raise QueryError(str(exc)) from None
        return self.hits(scored)

    def hits(self, scored: Sequence[ScoredItem]) -> list[SearchHit]:
        """Scored ids with their titles, attributes and images, in the given order."""
        ids = [s.id for s in scored]
        with self.store.session() as session:
            items = {i.id: i for i in session.scalars(select(Item).where(Item.id.in_(ids)))}
            attributes = item_attributes(session, ids)
        out = []
        for s in scored:
            item = items[s.id]
            path = item_image_path(self.catalog, item)
            out.append(SearchHit(item.external_id, item.id, item.title, s.score, attributes[item.id],
                                 str(path) if path is not None else item.image_ref, s.parts))
        return out

    def item_ids(self, external_ids: Sequence[str]) -> list[int]:
        """Store ids of the catalog's items by their own ids; QueryError naming any unknown."""
        with self.store.session() as session:
            found = dict(session.execute(select(Item.external_id, Item.id).where(
                Item.catalog_id == self.catalog.id, Item.external_id.in_(list(external_ids)))).all())
        missing = [e for e in external_ids if e not in found]
        if missing:
            raise QueryError(f"no item {missing[0]!r} in catalog {self.catalog.name!r}")
        return [found[e] for e in external_ids]

    def external_ids(self, store_ids: Sequence[int]) -> list[str]:
        """The catalog's own ids of store ids, in the same order (unknown ones are left out)."""
        if not store_ids:
            return []
        with self.store.session() as session:
            found = dict(session.execute(select(Item.id, Item.external_id).where(
                Item.catalog_id == self.catalog.id, Item.id.in_(list(store_ids)))).all())
        return [found[i] for i in store_ids if i in found]

    def _known(self, ids: list[int]) -> set[int]:
        if not ids:
            return set()
        with self.store.session() as session:
            return set(session.scalars(select(Item.id).where(Item.catalog_id == self.catalog.id, Item.id.in_(ids))))
