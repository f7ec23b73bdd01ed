"""The shipped seed vectors: used for rows whose encoder, weights and input hash match, ignored
otherwise, close to the float vectors; the demo's seed fits the demo; builds report progress."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retrieval import seed_vectors
from retrieval.encoders.fake import FakeImageEncoder, FakeTextEncoder
from retrieval.encoders.base import ImageEncoder
from retrieval.features import cache_file, cached_encode, text_hash
from retrieval.progress import BuildProgress
from retrieval.seed_vectors import dequantise, quantise, read_seed, seed_file, seed_image_hashes, write_seed

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "demo"
TEXTS = ["a red fox", "a blue whale", "green tea", "yellow submarine", "a red fox"]  # one repeat


def hashes_of(texts: list[str]) -> list[str]:
    return [text_hash(t) for t in texts]


def seed_of(encoder, texts: list[str], folder: Path) -> np.ndarray:  # type: ignore[no-untyped-def]
    unique = list(dict.fromkeys(texts))
    vectors = encoder.encode(unique)
    write_seed(folder, encoder, hashes_of(unique), vectors)
    encoder.calls.clear()
    return vectors


def cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# -- quantisation ---------------------------------------------------------------------------------

def test_quantised_rows_keep_their_direction() -> None:
    rng = np.random.default_rng(0)
    signed = rng.normal(size=(200, 384)).astype(np.float32)
    sparse = np.maximum(rng.normal(size=(200, 1280)), 0).astype(np.float32)  # ReLU-like, half zeros
    for vectors, dtype, bits in ((signed, np.int8, seed_vectors.TEXT_BITS), (sparse, np.uint8, seed_vectors.IMAGE_BITS)):
        codes, scales = quantise(vectors, bits)
        assert codes.dtype == dtype and np.abs(codes.astype(int)).max() <= 2**bits - 1
        assert cos_rows(dequantise(codes, scales), vectors).min() >= 0.999
    zero = np.zeros((1, 8), np.float32)
    assert not dequantise(*quantise(zero)).any()  # no NaN from a zero row


# -- cached_encode with a seed --------------------------------------------------------------------

def test_matching_rows_come_from_the_seed_and_nothing_is_encoded(tmp_path: Path) -> None:
    encoder = FakeTextEncoder(32)
    floats = seed_of(encoder, TEXTS, tmp_path / "seed")
    cache = tmp_path / "cache" / "texts.npz"
    rows = cached_encode(encoder, TEXTS, hashes_of(TEXTS), cache, seed_dir=tmp_path / "seed")
    assert (rows.computed, rows.seeded) == (0, 4) and encoder.calls == []
    assert cos_rows(rows.vectors[:4], floats).min() >= 0.999
    assert np.array_equal(rows.vectors[0], rows.vectors[4])
    # Written to the local cache: the next call needs neither the seed nor the encoder.
    again = cached_encode(encoder, TEXTS, hashes_of(TEXTS), cache, seed_dir=tmp_path / "no-seed-here")
    assert (again.computed, again.seeded) == (0, 0) and encoder.calls == []
    assert np.array_equal(again.vectors, rows.vectors)


def test_a_changed_input_is_encoded_and_the_rest_seeded(tmp_path: Path) -> None:
    encoder = FakeTextEncoder(32)
    seed_of(encoder, TEXTS, tmp_path / "seed")
    changed = ["a red fox", "a blue whale", "black coffee", "yellow submarine"]
    rows = cached_encode(encoder, changed, hashes_of(changed), None, seed_dir=tmp_path / "seed")
    assert (rows.computed, rows.seeded) == (1, 3) and encoder.calls == [1]
    assert np.allclose(rows.vectors[2], encoder.encode(["black coffee"])[0])


def test_a_seed_of_another_encoder_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    seed_of(FakeTextEncoder(32), TEXTS, tmp_path / "seed")
    other = FakeTextEncoder(32)
    other.name = "fake-text-32-retrained"
    # Even under the other encoder's file name, the name recorded inside gives it away.
    seed_file(tmp_path / "seed", "fake-text-32").rename(seed_file(tmp_path / "seed", other.name))
    with caplog.at_level(logging.WARNING, logger="retrieval.seed_vectors"):
        rows = cached_encode(other, TEXTS, hashes_of(TEXTS), None, seed_dir=tmp_path / "seed")
    assert (rows.computed, rows.seeded) == (4, 0)
    assert "made by encoder 'fake-text-32'" in caplog.text


def test_a_seed_made_with_other_weights_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    encoder = FakeTextEncoder(32)
    monkeypatch.setitem(seed_vectors.WEIGHT_PACKAGES, "fake-text-", ("pytest",))
    seed_of(encoder, TEXTS, tmp_path / "seed")
    monkeypatch.setattr(seed_vectors, "_version", lambda package: "999.0")  # an upgrade of the weights
    with caplog.at_level(logging.WARNING, logger="retrieval.seed_vectors"):
        rows = cached_encode(encoder, TEXTS, hashes_of(TEXTS), None, seed_dir=tmp_path / "seed")
    assert (rows.computed, rows.seeded) == (4, 0)
    assert "made with weights 'pytest==" in caplog.text and "pytest==999.0" in caplog.text


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong shape"])
def test_a_broken_seed_is_ignored_with_a_warning(tmp_path: Path, damage: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    encoder = FakeTextEncoder(32)
    seed_of(encoder, TEXTS, tmp_path / "seed")
    path = seed_file(tmp_path / "seed", encoder.name)
    if damage == "garbage":
        path.write_bytes(b"not a zip file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    else:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        arrays["scales"] = arrays["scales"][:2]
        np.savez(path, **arrays)
    with caplog.at_level(logging.WARNING, logger="retrieval.seed_vectors"):
        rows = cached_encode(encoder, TEXTS, hashes_of(TEXTS), None, seed_dir=tmp_path / "seed")
    assert (rows.computed, rows.seeded) == (4, 0)
    assert np.allclose(rows.vectors, encoder.encode(TEXTS))
    assert "encoding instead" in caplog.text


class ClassifyingFake(FakeImageEncoder):
    """A fake image encoder that also 'classifies', as EfficientNet does: the cache keeps labels."""

    def encode_and_classify(self, images, top: int = 5, *, batch_size=None):  # type: ignore[no-untyped-def]
        from types import SimpleNamespace

        vectors = self.encode(list(images))
        labels = [[SimpleNamespace(index=int(np.argsort(-v)[k]), prob=float(np.sort(v)[::-1][k]))
                   for k in range(top)] for v in vectors]
        return vectors, labels


def test_image_seeds_carry_their_imagenet_labels(tmp_path: Path) -> None:
    paths = []
    for n, colour in enumerate(["red", "blue", "green"]):
        paths.append(tmp_path / f"{n}.png")
        Image.new("RGB", (16, 16), colour).save(paths[-1])
    hashes = [hashlib.sha1(p.read_bytes()).hexdigest() for p in paths]
    encoder = ClassifyingFake(4)
    assert isinstance(encoder, ImageEncoder)
    made = cached_encode(encoder, paths, hashes, tmp_path / "made.npz")
    write_seed(tmp_path / "seed", encoder, hashes, made.vectors, made.label_ids, made.label_probs)
    assert seed_image_hashes(tmp_path / "seed") == frozenset(hashes)
    encoder.calls.clear()
    rows = cached_encode(encoder, paths, hashes, tmp_path / "cache.npz", seed_dir=tmp_path / "seed")
    assert rows.seeded == 3 and encoder.calls == []
    assert np.array_equal(rows.label_ids, made.label_ids)
    assert np.allclose(rows.label_probs, made.label_probs, atol=1e-3)  # stored as float16


# -- progress -------------------------------------------------------------------------------------

def test_encoding_reports_progress_in_items(tmp_path: Path) -> None:
    seen: list[BuildProgress] = []
    texts = [f"text number {n}" for n in range(10)]
    cached_encode(FakeTextEncoder(16), texts, hashes_of(texts), None, progress=seen.append, chunk=4)
    assert [p.done for p in seen] == [0, 4, 8, 10]
    assert {(p.stage, p.total, p.unit) for p in seen} == {("encoding texts", 10, "items")}
    assert all(a.elapsed_s <= b.elapsed_s for a, b in zip(seen, seen[1:]))
    assert str(seen[-1]) == "encoding texts: 10/10 items"


def test_ingest_and_index_builds_report_stages_with_rising_counts(shapes_catalog, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from crs.catalog.ingest import IngestOptions, ingest
    from crs.catalog_index import open_index
    from retrieval.embedder import load_embedder
    from tests.shapes import write_shapes_catalog

    store, catalog = shapes_catalog
    monkeypatch.setenv("CRS_HOME", str(tmp_path / "home"))
    seen: list[BuildProgress] = []
    ingest(store, write_shapes_catalog(tmp_path / "again"), IngestOptions(format="jsonl", catalog="shapes-2"),
           progress=seen.append)
    open_index(store, catalog, load_embedder("fake"), progress=seen.append)
    stages = list(dict.fromkeys(p.stage for p in seen))
    assert stages == ["reading the catalog file", "checking pictures", "writing items", "reading the catalog",
                      "indexing words", "encoding texts", "encoding pictures", "writing the index"]
    for stage in stages:
        counts = [p.done for p in seen if p.stage == stage]
        assert counts == sorted(counts) and counts[0] == 0 and counts[-1] == 24, (stage, counts)


# -- the demo's shipped seed ----------------------------------------------------------------------

def test_the_shipped_seed_was_made_from_the_current_demo_catalog() -> None:
    from crs.catalog.ingest import catalog_content_hash

    manifest = json.loads((DEMO / "vectors" / "manifest.json").read_text())
    wanted = catalog_content_hash(DEMO / "catalog.jsonl.gz", (DEMO / "schema.json").read_bytes())
    assert manifest["content_hash"] == wanted, (
        "assets/demo changed since the seed vectors were exported: run `crs index` then "
        "`crs catalog export-vectors`, or the first start encodes for ~15 minutes")
    total = sum((DEMO / "vectors" / f["file"]).stat().st_size for f in manifest["files"].values())
    assert total <= 40 * 2**20


def test_the_shipped_seed_knows_every_demo_picture() -> None:
    known = seed_image_hashes(DEMO / "vectors")
    pictures = sorted((DEMO / "images").iterdir())
    assert len(pictures) > 10_000
    missing = [p.name for p in pictures if hashlib.sha1(p.read_bytes()).hexdigest() not in known]
    assert missing == []


def test_the_shipped_seed_fits_the_default_encoders_without_loading_them() -> None:
    from retrieval.align import AlignConfig
    from retrieval.encoders import load_image_encoder, load_text_encoder

    config = AlignConfig()
    image, text = load_image_encoder(config.image_spec), load_text_encoder(config.text_spec)
    some = [h for h in sorted(seed_image_hashes(DEMO / "vectors"))[:50]]
    rows = read_seed(DEMO / "vectors", image, with_labels=True, wanted=some)
    assert len(rows) == 50
    assert all(abs(float(np.linalg.norm(r.vector)) - 1) < 1e-5 and r.label_ids is not None for r in rows.values())
    with np.load(cache_file(DEMO / "vectors", text.name)) as data:
        assert json.loads(str(data["meta"]))["dim"] == text.dim == 384
    assert read_seed(DEMO / "vectors", text, with_labels=False, wanted=[]) == {}


# -- ingest: pictures the seed was encoded from are not decoded again ------------------------------

def test_trusted_pictures_skip_the_decode_and_store_the_same_rows(catalog_dir: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import select

    from crs.catalog import ingest as ingest_module
    from crs.catalog.ingest import IngestOptions, ingest
    from crs.store import open_store
    from crs.store.models import Item

    def rows(store) -> list[tuple]:  # type: ignore[no-untyped-def, type-arg]
        with store.session() as session:
            return [tuple(r) for r in session.execute(select(Item.external_id, Item.image_file, Item.image_sha1,
                                                             Item.row_hash).order_by(Item.external_id))]

    plain = open_store(f"sqlite:///{tmp_path / 'plain.db'}")
    ingest(plain, catalog_dir / "items.jsonl", IngestOptions(format="jsonl"))
    expected = rows(plain)
    trusted = frozenset(sha1 for *_, sha1, _ in expected if sha1)
    assert trusted
    decoded: list[str] = []
    real = ingest_module.resolve_image
    monkeypatch.setattr(ingest_module, "resolve_image", lambda ref, *a: decoded.append(ref) or real(ref, *a))
    fast = open_store(f"sqlite:///{tmp_path / 'fast.db'}")
    ingest(fast, catalog_dir / "items.jsonl", IngestOptions(format="jsonl", trusted_images=trusted))
    assert rows(fast) == expected
    assert all(not ref or ref.startswith("http") for ref in decoded)  # no local picture was decoded


# -- exporting a seed from a warm cache -----------------------------------------------------------

def test_export_writes_the_catalogs_rows_and_a_fresh_home_builds_from_them(shapes_catalog, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from crs.catalog_index import export_seed, open_index
    from crs.errors import UserError
    from retrieval.embedder import load_embedder

    store, catalog = shapes_catalog
    embedder = load_embedder("fake")
    monkeypatch.setenv("CRS_HOME", str(tmp_path / "cold"))
    with pytest.raises(UserError, match="lacks 24 of 24 rows"):  # nothing encoded yet: nothing to export
        export_seed(store, catalog, embedder, tmp_path / "seed")
    warm, _ = open_index(store, catalog, embedder)
    manifest = export_seed(store, catalog, embedder, tmp_path / "seed")
    assert manifest["catalog"] == "shapes" and manifest["items"] == 24
    assert set(manifest["files"]) == {embedder.cached_text_encoder.name, embedder.cached_image_encoder.name}
    assert json.loads((tmp_path / "seed" / "manifest.json").read_text()) == manifest

    # A fresh home with that seed builds the same index without encoding anything.
    monkeypatch.setenv("CRS_HOME", str(tmp_path / "fresh"))
    monkeypatch.setenv("CRS_SEED_VECTORS", str(tmp_path / "seed"))
    seen: list[BuildProgress] = []
    embedder.cached_text_encoder.calls.clear()
    embedder.cached_image_encoder.calls.clear()
    seeded, status = open_index(store, catalog, embedder, progress=seen.append)
    assert status.built and not [p for p in seen if p.stage.startswith("encoding")]
    assert embedder.cached_text_encoder.calls == [] and embedder.cached_image_encoder.calls == []
    query = embedder.query("a red circle")
    assert [hit.id for hit in seeded.search(query, k=3)] == [hit.id for hit in warm.search(query, k=3)]
