"""Per-item image features and text embeddings, computed once and cached on disk.

Encoding a catalog is the slow part of everything that trains on it, benchmarks it or indexes
it (EfficientNet-Lite0 takes ~18 ms an image on 2 cores: ~4 minutes for the 13k demo items).
:func:`cached_encode` keeps one ``.npz`` per encoder under a cache folder: the file is named
after the encoder (two encoders whose vectors differ never share a name, see
:class:`~retrieval.encoders.base.Encoder`) and every row is keyed by a hash of its input (the
image file's bytes, the text's characters). Unchanged items are reused, new or changed ones are
encoded, rows of items that are gone are dropped. A cache that cannot be read, or that holds
vectors of the wrong size, is recomputed, never trusted.

Image encoders that can also classify (EfficientNet's ``encode_and_classify``) store their
top ImageNet labels beside the features, from the same forward pass: a baseline needs them.

A fresh install need not encode at all: rows the local cache lacks are taken from a shipped
seed (:mod:`retrieval.seed_vectors`, quantised) when the seed's encoder, weights and input hash
match, and written into the local cache like encoded ones.

Nothing here knows the store: callers pass lists of :class:`FeatureItem`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.encoders.base import Encoder, ImageEncoder, TextEncoder
from retrieval.images import image_fingerprint
from retrieval.progress import ProgressClock, ProgressFn
from retrieval.npz_files import save_npz_atomically
from retrieval.seed_vectors import read_seed

__all__ = [
    "FeatureItem",
    "ItemFeatures",
    "EncodedRows",
    "text_hash",
    "cache_file",
    "cached_encode",
    "cached_rows",
    "compute_item_features",
]

log = logging.getLogger(__name__)

# Called with a BuildProgress; str() of it is a one-line message, so ``print`` will do.
Progress = ProgressFn
LABELS_TOP = 5  # ImageNet labels kept per image when the encoder can classify
_CACHE_VERSION = 1


@dataclass(frozen=True)
class FeatureItem:
    """One item to encode: ``key`` is the caller's id (kept in order, never hashed)."""

    key: str
    image: str | os.PathLike
    text: str


@dataclass(frozen=True)
class EncodedRows:
    """Vectors in input order; ``label_ids``/``label_probs`` ``(n, LABELS_TOP)`` or None."""

    vectors: np.ndarray
    label_ids: np.ndarray | None = None
    label_probs: np.ndarray | None = None
    computed: int = 0  # rows encoded in this call (the rest came from the cache or the seed)
    seeded: int = 0  # rows taken from the shipped seed in this call


@dataclass(frozen=True)
class ItemFeatures:
    keys: list[str]
    image: np.ndarray  # (n, image_dim) float32, unit rows
    text: np.ndarray  # (n, text_dim) float32, unit rows
    image_encoder: str
    text_encoder: str
    image_hashes: list[str]
    text_hashes: list[str]
    label_ids: np.ndarray | None = None  # (n, LABELS_TOP) ImageNet class ids, best first
    label_probs: np.ndarray | None = None
    computed_images: int = 0
    computed_texts: int = 0

    def inputs_digest(self) -> str:
        """One hash of every input (order included): what a model trained on these saw."""
        digest = hashlib.sha256()
        for key, ih, th in zip(self.keys, self.image_hashes, self.text_hashes, strict=True):
            digest.update(f"{key}\0{ih}\0{th}\n".encode())
        return digest.hexdigest()


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def cache_file(cache_dir: str | os.PathLike, encoder_name: str, suffix: str = "") -> Path:
    """Where the cache of ``encoder_name`` lives: a readable slug plus a short hash of the exact
    name, so names that slug alike ("clip:/a b", "clip:/a_b") still get different files."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_name).strip("_")[:60] or "encoder"
    short = hashlib.sha1(encoder_name.encode("utf-8")).hexdigest()[:8]
    return Path(cache_dir) / f"{slug}-{short}{suffix}.npz"


def cached_encode(
    encoder: Encoder,
    inputs: Sequence,
    hashes: Sequence[str],
    cache_path: str | os.PathLike | None,
    *,
    batch_size: int | None = None,
    progress: Progress | None = None,
    chunk: int = 512,
    seed_dir: str | os.PathLike | None = None,
) -> EncodedRows:
    """``encoder.encode(inputs)``, reusing rows of ``cache_path`` whose input hash matches.

    ``hashes[i]`` identifies ``inputs[i]`` (equal inputs may share a hash: encoded once).
    ``cache_path`` None disables caching. The cache is rewritten atomically after encoding, and
    also every ``chunk`` new rows, so an interrupted run keeps most of its work. ``seed_dir``:
    a folder of shipped vectors (:mod:`retrieval.seed_vectors`) consulted for the rows the
    cache lacks, before anything is encoded. ``progress`` hears of each encoded chunk.
    """
    if len(inputs) != len(hashes):
        raise ValueError(f"{len(inputs)} inputs but {len(hashes)} hashes")
    classify = getattr(encoder, "encode_and_classify", None) if isinstance(
        encoder, ImageEncoder
    ) else None
    path = Path(cache_path) if cache_path is not None else None
    known = _read_cache(path, encoder, with_labels=classify is not None) if path else {}

    todo: dict[str, int] = {}  # hash -> first input index needing it
    for index, h in enumerate(hashes):
        if h not in known and h not in todo:
            todo[h] = index
    seeded = 0
    if todo and seed_dir is not None:
        # Read only when something is missing: a warm cache never pays for the seed.
        for h, row in read_seed(seed_dir, encoder, with_labels=classify is not None, wanted=list(todo)).items():
            known[h] = (row.vector, row.label_ids, row.label_probs)
            del todo[h]
            seeded += 1
        if seeded:
            log.info("%s: %d of %d rows from the shipped vectors in %s", encoder.name, seeded, len(hashes), seed_dir)
    pending = list(todo.items())
    stage = "encoding pictures" if isinstance(encoder, ImageEncoder) else "encoding texts"
    clock = ProgressClock(progress, stage, len(pending))
    if pending:
        clock.report(0)
    done = 0
    for start in range(0, len(pending), chunk):
        part = pending[start : start + chunk]
        batch = [inputs[i] for _, i in part]
        if classify is not None:
            vectors, labels = classify(batch, top=LABELS_TOP, batch_size=batch_size)
            ids = np.array([[lb.index for lb in row] for row in labels], dtype=np.int16)
            probs = np.array([[lb.prob for lb in row] for row in labels], dtype=np.float32)
            for row, (h, _) in enumerate(part):
                known[h] = (vectors[row], ids[row], probs[row])
        else:
            vectors = encoder.encode(batch, batch_size=batch_size)
            for row, (h, _) in enumerate(part):
                known[h] = (vectors[row], None, None)
        done += len(part)
        clock.report(done)
        if path is not None and done < len(pending):
            _write_cache(path, encoder, known, classify is not None)

    if path is not None and (pending or seeded or set(known) != set(hashes)):
        keep = {h: known[h] for h in dict.fromkeys(hashes)}  # drop rows of items that are gone
        _write_cache(path, encoder, keep, classify is not None)

    dim = encoder.dim
    vectors = np.zeros((len(hashes), dim), dtype=np.float32)
    for index, h in enumerate(hashes):
        vectors[index] = known[h][0]
    label_ids = label_probs = None
    if classify is not None:
        label_ids = np.stack([known[h][1] for h in hashes]) if hashes else np.zeros(
            (0, LABELS_TOP), np.int16
        )
        label_probs = np.stack([known[h][2] for h in hashes]) if hashes else np.zeros(
            (0, LABELS_TOP), np.float32
        )
    return EncodedRows(vectors, label_ids, label_probs, computed=len(pending), seeded=seeded)


def cached_rows(encoder: Encoder, hashes: Sequence[str], cache_path: str | os.PathLike) -> EncodedRows:
    """The rows of ``hashes`` from the cache alone, nothing encoded (for exporting a seed).

    Raises ValueError saying how many rows the cache lacks, and how to fill it."""
    with_labels = isinstance(encoder, ImageEncoder) and hasattr(encoder, "encode_and_classify")
    known = _read_cache(Path(cache_path), encoder, with_labels=with_labels)
    missing = [h for h in hashes if h not in known]
    if missing:
        raise ValueError(f"the cache {cache_path} lacks {len(missing)} of {len(hashes)} rows of {encoder.name!r}; "
                         "build the index first (`crs index`) so every item is encoded")
    vectors = np.stack([known[h][0] for h in hashes]) if hashes else np.zeros((0, encoder.dim), np.float32)
    if not with_labels:
        return EncodedRows(vectors)
    return EncodedRows(vectors, np.stack([known[h][1] for h in hashes]), np.stack([known[h][2] for h in hashes]))


def compute_item_features(
    items: Sequence[FeatureItem],
    image_encoder: ImageEncoder,
    text_encoder: TextEncoder,
    cache_dir: str | os.PathLike | None,
    *,
    progress: Progress | None = None,
    seed_dir: str | os.PathLike | None = None,
) -> ItemFeatures:
    """Image features and text embeddings of ``items``, in order, cached under ``cache_dir``.

    Raises :class:`~retrieval.images.ImageLoadError` for a missing or unreadable image (naming
    it), ``ValueError`` for a blank text or duplicate keys: the caller decides what to skip.
    """
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"duplicate item key {dup!r}")
    for item in items:
        if not isinstance(item.text, str) or not item.text.strip():
            raise ValueError(f"item {item.key!r} has an empty text")
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    image_hashes = [image_fingerprint(item.image) for item in items]
    text_hashes = [text_hash(item.text) for item in items]
    images = cached_encode(
        image_encoder,
        [item.image for item in items],
        image_hashes,
        cache_file(cache_dir, image_encoder.name) if cache_dir is not None else None,
        progress=progress,
        seed_dir=seed_dir,
    )
    texts = cached_encode(
        text_encoder,
        [item.text for item in items],
        text_hashes,
        cache_file(cache_dir, text_encoder.name) if cache_dir is not None else None,
        progress=progress,
        seed_dir=seed_dir,
    )
    return ItemFeatures(
        keys=keys,
        image=images.vectors,
        text=texts.vectors,
        image_encoder=image_encoder.name,
        text_encoder=text_encoder.name,
        image_hashes=image_hashes,
        text_hashes=text_hashes,
        label_ids=images.label_ids,
        label_probs=images.label_probs,
        computed_images=images.computed,
        computed_texts=texts.computed,
    )


# -- the cache file ------------------------------------------------------------------------------

_Row = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


def _read_cache(path: Path, encoder: Encoder, *, with_labels: bool) -> dict[str, _Row]:
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["version"])
            name = str(data["encoder"])
            hashes = [str(h) for h in data["hashes"]]
            vectors = np.asarray(data["vectors"], dtype=np.float32)
            ids = np.asarray(data["label_ids"]) if with_labels else None
            probs = np.asarray(data["label_probs"], dtype=np.float32) if with_labels else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("feature cache %s is unreadable (%s); recomputing", path, exc)
        return {}
    n = len(hashes)
    problems = []
    if version != _CACHE_VERSION:
        problems.append(f"version {version}")
    if name != encoder.name:
        problems.append(f"encoder {name!r}")
    if vectors.shape != (n, encoder.dim) or not np.isfinite(vectors).all():
        problems.append(f"vectors of shape {vectors.shape}")
    if with_labels and (ids.shape != (n, LABELS_TOP) or probs.shape != (n, LABELS_TOP)):
        problems.append("labels of the wrong shape")
    if problems:
        log.warning("feature cache %s does not match (%s); recomputing", path, ", ".join(problems))
        return {}
    return {
        h: (vectors[i], ids[i] if ids is not None else None, probs[i] if probs is not None else None)
        for i, h in enumerate(hashes)
    }


def _write_cache(path: Path, encoder: Encoder, rows: dict[str, _Row], with_labels: bool) -> None:
    hashes = list(rows)
    arrays: dict[str, np.ndarray] = {
        "version": np.array(_CACHE_VERSION),
        "encoder": np.array(encoder.name),
        "hashes": np.array(hashes, dtype=str) if hashes else np.zeros((0,), dtype="<U1"),
        "vectors": np.stack([rows[h][0] for h in hashes]).astype(np.float32)
        if hashes
        else np.zeros((0, encoder.dim), np.float32),
    }
    if with_labels:
        arrays["label_ids"] = (
            np.stack([rows[h][1] for h in hashes]).astype(np.int16)
            if hashes
            else np.zeros((0, LABELS_TOP), np.int16)
        )
        arrays["label_probs"] = (
            np.stack([rows[h][2] for h in hashes]).astype(np.float32)
            if hashes
            else np.zeros((0, LABELS_TOP), np.float32)
        )
    save_npz_atomically(path, arrays)

