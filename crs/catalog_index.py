"""The multimodal index of a catalog in the store: built once, cached on disk, rebuilt when stale.

The cache lives under ``$CRS_HOME/index/<catalog>/<embedder>/`` and its sidecars record a
fingerprint of the catalog's rows (ids and content hashes, which cover titles, attributes and
image bytes) and the embedder's name (which covers the model weights). Opening compares both
with the store and the embedder in hand; a mismatch, a missing or a corrupt file means a
rebuild, logged with the reason, never a silently wrong index. Encodings are cached separately
(:mod:`retrieval.features`), so a rebuild after a small catalog change only encodes what changed.
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from retrieval.embedder import EmbedItem, Embedder
from retrieval.features import Progress
from retrieval.vector_index import auto_kind
from retrieval.multimodal import MultimodalIndex
from retrieval.vector_index import IndexFileError, IndexKind

from .catalog.browse import item_attributes
from .catalog.ingest import item_image_path
from .catalog.item_text import item_text
from .config import crs_home, feature_cache_dir
from .store import Store
from .store.models import Catalog, Item

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexStatus:
    folder: Path
    built: bool  # False: loaded from the cache
    reason: str  # why it was (re)built, or "cached"
    items: int
    seconds: float

    @property
    def short_reason(self) -> str:
        """Why it was built, without the cache file's path (for one-line reports)."""
        if "No such file" in self.reason or "no readable sidecar" in self.reason:
            return "no cached index yet"
        return self.reason.split(": ", 1)[-1][:70]

    def to_json(self) -> dict[str, object]:
        return {"folder": str(self.folder), "built": self.built, "reason": self.reason,
                "short_reason": self.short_reason, "items": self.items,
                "seconds": round(self.seconds, 3)}


def index_folder(catalog_name: str, embedder_name: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", embedder_name).strip("_")[:80]
    short = hashlib.sha1(embedder_name.encode()).hexdigest()[:8]
    return crs_home() / "index" / re.sub(r"[^A-Za-z0-9._-]+", "_", catalog_name) / f"{slug}-{short}"


def catalog_fingerprint(store: Store, catalog: Catalog) -> str:
    """Changes whenever an item is added, removed or changed (text, attributes, image bytes)."""
    digest = hashlib.sha256()
    with store.session() as session:
        for item_id, row_hash in session.execute(select(Item.id, Item.row_hash)
                                                 .where(Item.catalog_id == catalog.id).order_by(Item.id)):
            digest.update(f"{item_id}:{row_hash}\n".encode())
    return digest.hexdigest()


def embed_items(store: Store, catalog: Catalog) -> list[EmbedItem]:
    """Every item of the catalog as (id, text, local image or None), in id order."""
    with store.session() as session:
        items = session.scalars(select(Item).where(Item.catalog_id == catalog.id).order_by(Item.id)).all()
        attributes = item_attributes(session, [i.id for i in items])
    out = []
    for item in items:
        path = item_image_path(catalog, item)
        out.append(EmbedItem(item.id, item_text(item.title, item.description, attributes[item.id].get("tags")),
                             path if path is not None and path.is_file() else None))
    return out


def open_index(store: Store, catalog: Catalog, embedder: Embedder, *, rebuild: bool = False,
               kind: IndexKind = "auto", progress: Progress | None = None) -> tuple[MultimodalIndex, IndexStatus]:
    """The catalog's index for ``embedder``: from the cache when it matches, else built and saved."""
    started = time.perf_counter()
    folder = index_folder(catalog.name, embedder.name)
    expect = {"catalog": catalog.name, "fingerprint": catalog_fingerprint(store, catalog), "embedder": embedder.name}
    reason = "asked to rebuild"
    if not rebuild:
        try:
            index = MultimodalIndex.load(folder, expect, visual=embedder.has_visual)
            mismatch = _kind_mismatch(index, kind)
            if mismatch is None:
                return index, IndexStatus(folder, False, "cached", index.size, time.perf_counter() - started)
            reason = mismatch
        except IndexFileError as exc:
            reason = str(exc)
            if (folder / "text.faiss.json").exists():  # a first build is normal; a bad cache is news
                log.warning("rebuilding the index of %s: %s", catalog.name, reason)
    items = embed_items(store, catalog)
    vectors = embedder.item_vectors(items, feature_cache_dir(catalog.name), progress=progress)
    index = MultimodalIndex.build(vectors, kind)
    index.save(folder, expect)
    return index, IndexStatus(folder, True, reason, index.size, time.perf_counter() - started)


def _kind_mismatch(index: MultimodalIndex, kind: IndexKind) -> str | None:
    """Why a cached index is not of the asked kind (``auto`` resolved by its size), or None."""
    wanted = auto_kind(index.size) if kind == "auto" else kind.partition(":")[0]
    have = sorted({space.kind for space in index.spaces.values()})
    return None if have == [wanted] else f"the cached index is {'/'.join(have)}; {wanted} was asked for"
