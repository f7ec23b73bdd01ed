"""Catalog files may come gzipped (items.jsonl.gz, items.csv.gz): same rows, same catalog."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from crs.catalog.formats import CatalogFileError, catalog_bytes, catalog_stem, read_jsonl
from crs.catalog.ingest import IngestOptions, catalog_content_hash, ingest
from crs.store import open_store

ROWS = [{"id": "pear", "title": "Green pear", "attributes": {"colour": "green"}},
        {"id": "plum", "title": "Purple plum", "attributes": {"colour": "purple"}}]


def _write(folder: Path, name: str) -> Path:
    text = "".join(json.dumps(row) + "\n" for row in ROWS).encode()
    path = folder / name
    path.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    return path


def test_a_gzipped_file_is_the_same_catalog_as_the_plain_one(tmp_path: Path) -> None:
    plain, packed = _write(tmp_path, "items.jsonl"), _write(tmp_path, "items.jsonl.gz")
    assert catalog_bytes(packed) == plain.read_bytes()
    assert catalog_content_hash(packed, b"") == catalog_content_hash(plain, b"")
    assert [row.data["id"] for row in read_jsonl(packed)] == ["pear", "plum"]
    assert catalog_stem(packed) == catalog_stem(plain) == "items"


def test_ingesting_a_gzipped_file_names_the_catalog_without_its_suffixes(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'crs.db'}")
    report = ingest(store, _write(tmp_path, "fruit.jsonl.gz"), IngestOptions(format="jsonl", fetch_images=False))
    assert (report.catalog, report.added) == ("fruit", 2)


def test_a_cut_off_gzip_file_says_so(tmp_path: Path) -> None:
    packed = _write(tmp_path, "items.jsonl.gz")
    packed.write_bytes(packed.read_bytes()[:-12])
    with pytest.raises(CatalogFileError, match=r"items.jsonl.gz: not a readable gzip file"):
        list(read_jsonl(packed))
    (tmp_path / "bad.jsonl.gz").write_bytes(b"plain text, not gzip\n")
    with pytest.raises(CatalogFileError, match=r"bad.jsonl.gz: not a readable gzip file"):
        catalog_bytes(tmp_path / "bad.jsonl.gz")
