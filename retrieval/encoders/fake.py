"""Deterministic, model-free encoders for fast tests in other modules (spec ``fake``).

They behave like real encoders where tests need it, with answers one can predict:

* :class:`FakeTextEncoder`: a signed, hashed bag of lower-cased words, so texts that share words
  are similar and texts with no word in common are (almost) orthogonal.
* :class:`FakeImageEncoder`: a colour histogram of the pixels, so two red images are close and a
  red and a blue one are far, whatever their size or position.

Hashing uses blake2b, not ``hash()``: Python salts ``hash`` per process, fakes must not drift.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
from PIL import Image

from retrieval.encoders.base import ImageEncoder, TextEncoder

__all__ = ["FakeTextEncoder", "FakeImageEncoder"]

_WORD = re.compile(r"\w+", re.UNICODE)


def _bucket(token: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, (1.0 if (value >> 63) & 1 else -1.0)


class FakeTextEncoder(TextEncoder):
    """Hashed bag of words, ``dim`` buckets (default 64). A text without word characters
    ("!!!") is hashed whole, so every non-blank text gets a non-zero vector."""

    def __init__(self, dim: int = 64, *, batch_size: int = 256) -> None:
        if dim < 2:
            raise ValueError(f"dim must be >= 2, got {dim}")
        self._dim = int(dim)
        self.batch_size = batch_size
        self.name = f"fake-text-{self._dim}"
        self.calls: list[int] = []  # batch sizes seen by encode_batch, for tests of batching

    def encode_batch(self, batch: list[str]) -> np.ndarray:
        self.calls.append(len(batch))
        out = np.zeros((len(batch), self._dim), dtype=np.float32)
        for row, text in enumerate(batch):
            tokens = _WORD.findall(text.lower()) or [text.strip()]
            for token in tokens:
                index, sign = _bucket(token, self._dim)
                out[row, index] += sign
        return out


class FakeImageEncoder(ImageEncoder):
    """Joint RGB histogram with ``bins`` levels per channel (default 4 -> 64-d), of the image
    shrunk to 32x32. Square roots of the frequencies (Hellinger), so the white background every
    transparent image gets does not swamp the colours that tell images apart."""

    def __init__(self, bins: int = 4, *, batch_size: int = 64) -> None:
        if not 2 <= bins <= 16:
            raise ValueError(f"bins must be in 2..16, got {bins}")
        self.bins = int(bins)
        self._dim = self.bins**3
        self.batch_size = batch_size
        self.name = f"fake-image-{self._dim}"
        self.calls: list[int] = []

    def encode_batch(self, batch: list[Image.Image]) -> np.ndarray:
        self.calls.append(len(batch))
        out = np.zeros((len(batch), self._dim), dtype=np.float32)
        for row, image in enumerate(batch):
            pixels = np.asarray(image.convert("RGB").resize((32, 32), Image.Resampling.BILINEAR))
            levels = (pixels.reshape(-1, 3).astype(np.int64) * self.bins) // 256
            codes = (levels[:, 0] * self.bins + levels[:, 1]) * self.bins + levels[:, 2]
            hist = np.bincount(codes, minlength=self._dim).astype(np.float32)
            out[row] = np.sqrt(hist / hist.sum())
        return out
