"""The bundled demo catalog: loaded from assets/ into the store on first use, reloaded when it changes.

The first load is part of a fresh install's first start, so it skips the slow part it can prove
unneeded: pictures whose sha1 is in the shipped seed vectors (``assets/demo/vectors``, encoded
from exactly those bytes) are not decoded again (see ``IngestOptions.trusted_images``).
"""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select, update

from retrieval.progress import ProgressFn
from retrieval.seed_vectors import seed_image_hashes

from ..config import DEMO_CATALOG, DEMO_DIR
from ..errors import UserError
from ..store import Store
from ..store.models import Catalog
from .ingest import IngestOptions, catalog_content_hash, ingest


SEED_DIR = DEMO_DIR / "vectors"


def seed_dir() -> Path | None:
    """The shipped vectors' folder; ``CRS_SEED_VECTORS`` names another, or ``none`` for none
    (the benchmark's cold run without them). Rows are matched by input hash, so the demo's
    seed is safe to offer any catalog: only items with the same text or picture use it."""
    value = os.environ.get("CRS_SEED_VECTORS", "").strip()
    if value.lower() == "none":
        return None
    return Path(value) if value else SEED_DIR


class CatalogNotFound(UserError, LookupError):
    """The named catalog is not in the store (or the demo files are missing)."""


DEMO_ROWS = "catalog.jsonl.gz"  # gzipped: 0.5 MB instead of 6.5 MB in assets/ (its 40 MiB budget)


def demo_files(demo_dir: Path = DEMO_DIR) -> tuple[Path, Path]:
    catalog, schema = demo_dir / DEMO_ROWS, demo_dir / "schema.json"
    if not catalog.is_file() or not schema.is_file():
        raise CatalogNotFound(f"the demo catalog is missing from {demo_dir}; rebuild it with `crs catalog build-demo`")
    return catalog, schema


def open_catalog(store: Store, name: str = DEMO_CATALOG, progress: ProgressFn | None = None) -> Catalog:
    """The named catalog; the demo is (re)loaded from assets/ when absent or changed (reporting
    to ``progress`` as it loads)."""
    if name == DEMO_CATALOG:
        ensure_demo(store, progress=progress)
    with store.session() as session:
        catalog = session.scalar(select(Catalog).where(Catalog.name == name))
        if catalog is None:
            known = sorted(session.scalars(select(Catalog.name)))
            # No URL or path here: the API answers with this message (503) when misconfigured.
            raise CatalogNotFound(f"no catalog named {name!r} in this database; known: {known or 'none'}. "
                                  "Add one with `crs ingest PATH --format jsonl|csv|amazon2023`.")
        return catalog


def ensure_demo(store: Store, demo_dir: Path = DEMO_DIR, progress: ProgressFn | None = None) -> bool:
    """Load the demo catalog if the store lacks it or holds an older copy; True if it loaded."""
    catalog_file, schema_file = demo_files(demo_dir)
    wanted = catalog_content_hash(catalog_file, schema_file.read_bytes())
    root = str(demo_dir.resolve())
    with store.session() as session:
        current = session.execute(select(Catalog.content_hash, Catalog.image_root)
                                  .where(Catalog.name == DEMO_CATALOG)).first()
    if current is not None and current.content_hash == wanted:
        if current.image_root != root:  # the checkout moved: same files, new place
            with store.transaction() as session:
                session.execute(update(Catalog).where(Catalog.name == DEMO_CATALOG).values(image_root=root))
        return False
    ingest(store, catalog_file, IngestOptions(format="jsonl", catalog=DEMO_CATALOG, schema_path=schema_file,
                                              replace=True, fetch_images=False,
                                              trusted_images=_trusted_pictures(demo_dir)),
           progress=progress)
    return True


def _trusted_pictures(demo_dir: Path) -> frozenset[str]:
    # The demo's own seed when it is in use (CRS_SEED_VECTORS=none: every picture is decoded).
    folder = seed_dir()
    if folder is None:
        return frozenset()
    return seed_image_hashes(folder if demo_dir == DEMO_DIR else demo_dir / "vectors")
