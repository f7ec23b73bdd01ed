"""Integrity of the committed demo catalog (assets/demo) as the store sees it."""
from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from crs.catalog.demo import ensure_demo, open_catalog
from crs.catalog.info import catalog_info
from crs.config import ASSETS_DIR, DEMO_DIR
from crs.store import Store

REQUIRED = {"category": "categorical", "subcategory": "categorical", "style": "categorical", "colour": "tags",
            "tags": "tags", "concept": "categorical"}
CODEPOINTS = re.compile(r"^[0-9a-f]{4,6}(-[0-9a-f]{4,6})*$")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in gzip.decompress((DEMO_DIR / "catalog.jsonl.gz").read_bytes()).decode().splitlines()]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    from crs.store import open_store

    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}")
    assert ensure_demo(store) is True
    return store


def test_assets_fit_the_size_budget() -> None:
    total = sum(p.stat().st_size for p in ASSETS_DIR.rglob("*") if p.is_file())
    assert total <= 40 * 1024 * 1024, f"assets/ is {total / 2**20:.1f} MiB"


def test_licenses_and_attribution_are_shipped() -> None:
    attribution = (DEMO_DIR / "ATTRIBUTION.md").read_text()
    assert "CC-BY 4.0" in attribution.replace("CC-BY-4.0", "CC-BY 4.0") and "Twemoji" in attribution
    assert (ASSETS_DIR / "LICENSES.md").is_file()


def test_catalog_info_reports_the_demo(demo_store: Store) -> None:
    info = catalog_info(demo_store, open_catalog(demo_store), verify_images=True)
    assert info["items"] >= 8000
    assert info["images"]["present"] == info["images"]["readable"] == info["items"]
    kinds = {a["name"]: a["kind"] for a in info["attributes"]}
    assert {name: kinds.get(name) for name in REQUIRED} == REQUIRED
    by_name = {a["name"]: a for a in info["attributes"]}
    assert by_name["style"]["distinct_values"] >= 4 and by_name["category"]["distinct_values"] >= 10
    assert by_name["colour"]["items_with_value"] >= 0.95 * info["items"]
    assert ensure_demo(demo_store) is False  # unchanged files: no reload


def test_every_row_is_complete_and_every_image_is_used(rows: list[dict]) -> None:
    images = {p.name for p in (DEMO_DIR / "images").iterdir()}
    referenced = {Path(r["image"]).name for r in rows}
    assert referenced == images
    for row in rows:
        attributes = row["attributes"]
        assert row["title"].strip() and row["description"].strip() and row["license"], row["id"]
        assert {"category", "style", "colour"} <= set(attributes), row["id"]


def test_emoji_concepts_are_code_points_shared_across_styles(rows: list[dict]) -> None:
    styles_by_concept: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        concept = row["attributes"].get("concept")
        if concept is not None:
            assert CODEPOINTS.match(concept), (row["id"], concept)
            styles_by_concept[concept].add(row["attributes"]["style"])
    assert len(styles_by_concept) >= 1800
    assert styles_by_concept["1f615"] >= {"flat", "3d"}  # confused face, in Twemoji and Fluent 3D at least
    shared = Counter(len(styles) for styles in styles_by_concept.values())
    assert sum(n for size, n in shared.items() if size >= 2) >= 0.9 * len(styles_by_concept)
