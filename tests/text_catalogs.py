"""A text-only catalog for tests: the first films of the committed films sample (no pictures),
with its schema (title, labels, display names), ingested into a test store."""
from __future__ import annotations

import shutil
from pathlib import Path

from crs.config import ASSETS_DIR

FILMS_SAMPLE = ASSETS_DIR / "films-sample"


def write_films(folder: Path, count: int = 80) -> Path:
    """The sample's schema and its first ``count`` films under ``folder``; returns the JSONL path."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(FILMS_SAMPLE / "schema.json", folder / "schema.json")
    with (FILMS_SAMPLE / "items.jsonl").open(encoding="utf-8") as rows:
        lines = [line for _, line in zip(range(count), rows)]
    path = folder / "items.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def ingest_films(store, folder: Path, count: int = 80):  # type: ignore[no-untyped-def]
    """The films in ``store`` as catalog "films"; returns the Catalog."""
    from crs.catalog.demo import open_catalog
    from crs.catalog.ingest import IngestOptions, ingest

    ingest(store, write_films(folder, count), IngestOptions(format="jsonl", catalog="films"))
    return open_catalog(store, "films")
