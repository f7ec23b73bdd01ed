"""The multimodal index of a catalog in the store: built once, cached on disk, rebuilt when stale.

The vector spaces' cache lives under ``$CRS_HOME/index/<catalog>/<embedder>/`` and its sidecars
record a fingerprint of the catalog's rows (ids and content hashes, which cover titles,
attributes and image bytes) and the embedder's name (which covers the model weights). The
lexical (BM25) space does not depend on the embedder: it has its own folder,
``$CRS_HOME/index/<catalog>/lexical-bm25/``, keyed by the fingerprint alone, so either part is
rebuilt without the other. Opening compares the keys with the store and the embedder in hand; a
mismatch, a missing or a corrupt file means a rebuild, logged with the reason, never a silently
wrong index. Encodings are cached separately (:mod:`retrieval.features`), so a rebuild after a
small catalog change only encodes what changed; on a fresh install the encodings come from the
vectors shipped in ``assets/demo/vectors`` (:mod:`retrieval.seed_vectors`) for every item whose
text or picture they were made from, so the demo's first start does not encode at all.
:func:`export_seed` writes that folder from a warm cache (``crs catalog export-vectors``).

Every build reports :class:`~retrieval.progress.BuildProgress` values to its ``progress``
callback: "reading the catalog", "indexing words", "encoding texts", "encoding pictures",
"writing the index".
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass

import numpy as np
from pathlib import Path

from sqlalchemy import select

from retrieval.embedder import EmbedItem, Embedder
from retrieval.encoders.base import Encoder
from retrieval.features import Progress, cache_file, cached_rows, text_hash
from retrieval.images import image_fingerprint
from retrieval.lexical import LexicalIndex
from retrieval.progress import ProgressClock
from retrieval.seed_vectors import write_seed
from retrieval.vector_index import auto_kind
from retrieval.multimodal import MultimodalIndex
from retrieval.vector_index import IndexFileError, IndexKind

from .catalog.browse import item_attributes
from .catalog.demo import SEED_DIR, seed_dir
from .catalog.ingest import item_image_path
from .catalog.item_text import item_text
from .config import crs_home, feature_cache_dir
from .errors import UserError
from .store import Store
from .store.models import Catalog, Item

log = logging.getLogger(__name__)

SEED_MANIFEST = "manifest.json"


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
        prefix = "lexical index: " if self.reason.startswith("lexical index: ") else ""
        reason = self.reason[len(prefix):]
        if "No such file" in reason or "no readable sidecar" in reason:
            return prefix + "no cached index yet"
        return prefix + reason.split(": ", 1)[-1][:70]

    def to_json(self) -> dict[str, object]:
        return {"folder": str(self.folder), "built": self.built, "reason": self.reason,
                "short_reason": self.short_reason, "items": self.items,
                "seconds": round(self.seconds, 3)}


def index_folder(catalog_name: str, embedder_name: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", embedder_name).strip("_")[:80]
    short = hashlib.sha1(embedder_name.encode()).hexdigest()[:8]
    return crs_home() / "index" / re.sub(r"[^A-Za-z0-9._-]+", "_", catalog_name) / f"{slug}-{short}"


def lexical_folder(catalog_name: str) -> Path:
    return crs_home() / "index" / re.sub(r"[^A-Za-z0-9._-]+", "_", catalog_name) / "lexical-bm25"


def catalog_fingerprint(store: Store, catalog: Catalog) -> str:
    """Changes whenever an item is added, removed or changed (text, attributes, image bytes)."""
    digest = hashlib.sha256()
    with store.session() as session:
        for item_id, row_hash in session.execute(select(Item.id, Item.row_hash)
                                                 .where(Item.catalog_id == catalog.id).order_by(Item.id)):
            digest.update(f"{item_id}:{row_hash}\n".encode())
    return digest.hexdigest()


def has_pictures(store: Store, catalog: Catalog) -> bool:
    """Whether any item of the catalog has a local picture (one query, no file is read)."""
    with store.session() as session:
        return session.scalar(select(Item.id).where(Item.catalog_id == catalog.id, Item.image_file.is_not(None))
                              .limit(1)) is not None


def embed_items(store: Store, catalog: Catalog) -> list[EmbedItem]:
    """Every item of the catalog as (id, text, local image or None), in id order."""
    return _catalog_texts(store, catalog)[0]


def lexical_text(title: str, description: str, attributes: dict[str, object]) -> str:
    """The words an item is found by: title, description and every attribute value that is a
    word, not a number (a film's director and whole cast, where the description names three)."""
    values = [v for value in attributes.values() for v in (value if isinstance(value, list) else [value])
              if isinstance(v, str)]
    return "\n".join([title, description or "", *values])


def _catalog_texts(store: Store, catalog: Catalog, progress: Progress | None = None
                   ) -> tuple[list[EmbedItem], list[str]]:
    """Every item as an :class:`EmbedItem` and as its lexical text, in id order: one read."""
    clock = ProgressClock(progress, "reading the catalog", 0)
    clock.report(0)
    with store.session() as session:
        items = session.scalars(select(Item).where(Item.catalog_id == catalog.id).order_by(Item.id)).all()
        attributes = item_attributes(session, [i.id for i in items])
    embed, words = [], []
    for item in items:
        path = item_image_path(catalog, item)
        embed.append(EmbedItem(item.id, item_text(item.title, item.description, attributes[item.id].get("tags")),
                               path if path is not None and path.is_file() else None))
        words.append(lexical_text(item.title, item.description, attributes[item.id]))
    clock.total = len(embed)
    clock.report(len(embed))
    return embed, words


def open_index(store: Store, catalog: Catalog, embedder: Embedder, *, rebuild: bool = False,
               kind: IndexKind = "auto", progress: Progress | None = None) -> tuple[MultimodalIndex, IndexStatus]:
    """The catalog's index for ``embedder``: from the cache when it matches, else built and saved.

    The vector spaces and the lexical space are cached apart and each is rebuilt on its own
    when stale; the status's reason is the vector spaces' one, else the lexical space's."""
    started = time.perf_counter()
    folder = index_folder(catalog.name, embedder.name)
    fingerprint = catalog_fingerprint(store, catalog)
    expect = {"catalog": catalog.name, "fingerprint": fingerprint, "embedder": embedder.name}
    lexical, lexical_reason = (None, "asked to rebuild") if rebuild else _cached_lexical(catalog.name, fingerprint)
    index: MultimodalIndex | None = None
    reason = "asked to rebuild"
    if not rebuild:
        try:
            index = MultimodalIndex.load(folder, expect, visual=embedder.has_visual, lexical=lexical)
            reason = _kind_mismatch(index, kind) or _pictures_mismatch(index, store, catalog) or "cached"
            index = index if reason == "cached" else None
        except IndexFileError as exc:
            reason = str(exc)
            if (folder / "text.faiss.json").exists():  # a first build is normal; a bad cache is news
                log.warning("rebuilding the index of %s: %s", catalog.name, reason)
    if index is not None and lexical is not None:
        return index, IndexStatus(folder, False, "cached", index.size, time.perf_counter() - started)
    items, words = _catalog_texts(store, catalog, progress)
    if lexical is None:
        lexical = LexicalIndex.build(np.array([item.id for item in items], dtype=np.int64), words, progress)
        lexical.save(lexical_folder(catalog.name), {"catalog": catalog.name, "fingerprint": fingerprint})
    if index is None:
        vectors = embedder.item_vectors(items, feature_cache_dir(catalog.name), progress=progress,
                                        seed_dir=seed_dir())
        writing = ProgressClock(progress, "writing the index", len(items))
        writing.report(0)
        index = MultimodalIndex.build(vectors, kind, lexical)
        index.save(folder, expect)
        writing.report(len(items))
    else:
        index, reason = MultimodalIndex(index.spaces, lexical), f"lexical index: {lexical_reason}"
    return index, IndexStatus(folder, True, reason, index.size, time.perf_counter() - started)


def _cached_lexical(catalog_name: str, fingerprint: str) -> tuple[LexicalIndex | None, str]:
    folder = lexical_folder(catalog_name)
    try:
        return LexicalIndex.load(folder, {"catalog": catalog_name, "fingerprint": fingerprint}), "cached"
    except IndexFileError as exc:
        if (folder / "lexical.json").exists():
            log.warning("rebuilding the lexical index of %s: %s", catalog_name, exc)
        return None, str(exc)


def _pictures_mismatch(index: MultimodalIndex, store: Store, catalog: Catalog) -> str | None:
    """Why a cached index's picture spaces do not fit the catalog (an index built before
    catalogs without pictures got none holds zero vectors), or None."""
    if index.has_pictures and not has_pictures(store, catalog):
        return "the cached index has picture spaces; the catalog has no pictures"
    return None


def _kind_mismatch(index: MultimodalIndex, kind: IndexKind) -> str | None:
    """Why a cached index is not of the asked kind (``auto`` resolved by its size), or None. A
    Milvus index must also be at the asked URI: one cached for another server is not reused."""
    name, _, argument = kind.partition(":")
    wanted = auto_kind(index.size) if kind == "auto" else name
    have = sorted({space.kind for space in index.spaces.values()})
    if have != [wanted]:
        return f"the cached index is {'/'.join(have)}; {wanted} was asked for"
    if wanted == "milvus":
        from retrieval.milvus_index import check_uri

        # No URI in the reason: /health shows it to clients, and a milvus-lite URI is a server path.
        if {str(getattr(space, "uri", "")) for space in index.spaces.values()} != {check_uri(argument)}:
            return "the cached Milvus index is at another URI than the one asked for"
    return None


def export_seed(store: Store, catalog: Catalog, embedder: Embedder, out: Path = SEED_DIR) -> dict[str, object]:
    """Write the catalog's cached base encodings, quantised, to ``out`` (the shipped seed).

    Only the rows of the catalog's current items are written, and every one must be in the
    local cache already (``crs index`` fills it): exporting never encodes, so it takes seconds,
    and a seed never holds vectors of items that are gone. Returns the manifest it writes
    beside them (the catalog's content hash, and rows and bytes per file).
    """
    items = embed_items(store, catalog)
    if not items:
        raise UserError(f"catalog {catalog.name!r} has no items to export")
    texts = [item.text for item in items]
    images = [item.image for item in items if item.image is not None]
    parts: list[tuple[Encoder, list[str]]] = [(embedder.cached_text_encoder,
                                               list(dict.fromkeys(text_hash(t) for t in texts)))]
    if images:
        parts.append((embedder.cached_image_encoder, list(dict.fromkeys(image_fingerprint(p) for p in images))))
    written: dict[str, object] = {}
    for encoder, hashes in parts:
        try:
            cached = cached_rows(encoder, hashes, cache_file(feature_cache_dir(catalog.name), encoder.name))
        except ValueError as exc:  # rows missing from the cache: the message says what to run
            raise UserError(str(exc)) from None
        path = write_seed(out, encoder, hashes, cached.vectors, cached.label_ids, cached.label_probs)
        written[encoder.name] = {"file": path.name, "rows": len(hashes), "bytes": path.stat().st_size}
    # Which catalog file the seed was made from: a test compares it with the demo's, so a demo
    # change that is not followed by an export fails in CI instead of silently encoding for minutes.
    manifest = {"catalog": catalog.name, "content_hash": catalog.content_hash, "items": len(items),
                "embedder": embedder.name, "files": written}
    (out / SEED_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
