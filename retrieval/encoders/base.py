"""The two encoder base classes: a backend writes ``encode_batch``, the base does the rest.

What the base guarantees to every caller, whatever the backend:

* ``encode(items)`` returns a C-contiguous float32 array of shape ``(len(items), dim)``; an
  empty list gives ``(0, dim)``. float32 on purpose: faiss rejects float64, and numpy 2 turns
  ``float32_array * np.float64(x)`` into float64 without a word.
* rows are L2-normalised (a zero row stays zero instead of becoming NaN), so inner product is
  cosine similarity;
* input is validated before any model runs: a blank text raises ValueError naming its index,
  an unreadable image raises :class:`~retrieval.images.ImageLoadError` naming its index and file;
* backends are called under ``torch.inference_mode()`` when torch is in use. The number of
  torch threads is the caller's decision (``torch.set_num_threads``): a library that changes a
  process-wide setting surprises the application that embeds it.
"""

from __future__ import annotations

import contextlib
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
from PIL import Image

from retrieval.images import DEFAULT_MAX_PIXELS, ImageLoadError, ImageSource, load_image

__all__ = ["Encoder", "TextEncoder", "ImageEncoder", "l2_normalize", "check_model_source"]

T = TypeVar("T")

_EPS = 1e-12


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation into a new C-contiguous float32 array; zero rows stay zero."""
    out = np.array(x, dtype=np.float32, order="C", copy=True)
    if out.ndim != 2:
        raise ValueError(f"expected a 2-d array, got shape {out.shape}")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > _EPS)
    return out


def check_model_source(source: str, kind: str) -> str:
    """Return how ``source`` will be read, for error messages; refuse a path that is missing.

    A string that looks like a filesystem path (absolute, ``./``, ``../``, ``~``) must exist:
    trying it as a hub name would only add a confusing network error.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return "local directory"
    if path.exists():
        raise NotADirectoryError(
            f"could not load {kind} model {source!r}: a file, not a model directory"
        )
    if source.startswith(("/", "./", "../", "~", ".\\", "..\\")) or path.is_absolute():
        raise FileNotFoundError(f"could not load {kind} model {source!r}: no such directory")
    return "hub name (not a local directory)"


def _inference_context() -> contextlib.AbstractContextManager:
    # Only torch-backed encoders have imported torch by now; fakes must not pay its import.
    torch = sys.modules.get("torch")
    return torch.inference_mode() if torch is not None else contextlib.nullcontext()


class Encoder(ABC, Generic[T]):
    """What text and image encoders share. Subclass :class:`TextEncoder` or :class:`ImageEncoder`.

    A subclass sets ``self.name`` (a stable identifier: index caches are keyed by it, so two
    encoders whose vectors differ must never share a name) and either sets ``self._dim`` or
    overrides the ``dim`` property (e.g. to learn it from a lazily loaded model).
    """

    name: str
    batch_size: int = 32
    _dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            raise NotImplementedError(f"{type(self).__name__} must set self._dim or override dim")
        return self._dim

    @abstractmethod
    def encode_batch(self, batch: list[T]) -> np.ndarray:
        """Encode one batch of already-validated items into a ``(len(batch), dim)`` array.

        Need not normalise, need not be float32: ``encode`` takes care of both.
        """

    # -- shared behaviour -------------------------------------------------------------------

    def encode(self, items: Iterable[Any], *, batch_size: int | None = None) -> np.ndarray:
        """Encode ``items`` into unit-norm float32 rows, ``batch_size`` at a time."""
        items = self._as_list(items)
        batch_size = self._batch_size(batch_size)
        dim = self.dim
        if not items:
            return np.zeros((0, dim), dtype=np.float32)
        out = np.empty((len(items), dim), dtype=np.float32)
        for start in range(0, len(items), batch_size):
            raw = items[start : start + batch_size]
            batch = [self._prepare(item, start + i) for i, item in enumerate(raw)]
            with _inference_context():
                vectors = self.encode_batch(batch)
            out[start : start + len(batch)] = self._check_batch(vectors, len(batch), dim, start)
        return l2_normalize(out)

    def encode_one(self, item: Any) -> np.ndarray:
        """Encode a single item into a ``(dim,)`` unit vector (a query, typically)."""
        return self.encode([item])[0]

    def _batch_size(self, batch_size: int | None) -> int:
        size = self.batch_size if batch_size is None else int(batch_size)
        if size < 1:
            raise ValueError(f"batch_size must be >= 1, got {size}")
        return size

    def _as_list(self, items: Iterable[Any]) -> list[Any]:
        if isinstance(items, (str, bytes, bytearray)) or not isinstance(items, Iterable):
            raise TypeError(
                f"{type(self).__name__}.encode expects a list of items, got "
                f"{type(items).__name__}; wrap a single item in a list or use encode_one"
            )
        return list(items)

    def _prepare(self, item: Any, index: int) -> T:
        """Validate (and convert) one item; raise naming ``index``. Overridden per modality."""
        return item

    def _check_batch(self, vectors: Any, n: int, dim: int, start: int) -> np.ndarray:
        arr = np.asarray(vectors, dtype=np.float32)
        if arr.shape != (n, dim):
            raise RuntimeError(
                f"{type(self).__name__}.encode_batch returned shape {arr.shape}, "
                f"expected {(n, dim)}"
            )
        if not np.isfinite(arr).all():
            bad = start + int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
            raise RuntimeError(f"{type(self).__name__} produced a non-finite vector for item {bad}")
        return arr

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={getattr(self, 'name', '?')!r})"


class TextEncoder(Encoder[str]):
    """Encodes texts. ``encode_batch`` receives a list of non-blank ``str``."""

    def _as_list(self, items: Iterable[Any]) -> list[Any]:
        # Checking every text first is cheap, and a blank text 9,000 items into a catalog
        # should not be found after minutes of encoding.
        texts = super()._as_list(items)
        for index, text in enumerate(texts):
            self._prepare(text, index)
        return texts

    def _prepare(self, item: Any, index: int) -> str:
        if not isinstance(item, str):
            raise TypeError(f"text {index} is a {type(item).__name__}, expected str")
        if not item.strip():
            raise ValueError(f"text {index} is empty or whitespace only")
        return item


class ImageEncoder(Encoder[Image.Image]):
    """Encodes images. ``encode`` accepts paths, encoded bytes or PIL images;
    ``encode_batch`` receives RGB PIL images (transparency already composited on white)."""

    max_pixels: int = DEFAULT_MAX_PIXELS

    def _as_list(self, items: Iterable[Any]) -> list[Any]:
        if isinstance(items, Image.Image) or hasattr(items, "__fspath__"):
            raise TypeError(
                f"{type(self).__name__}.encode expects a list of images, got one "
                f"{type(items).__name__}; wrap it in a list or use encode_one"
            )
        return super()._as_list(items)

    def _prepare(self, item: ImageSource, index: int) -> Image.Image:
        try:
            return load_image(item, max_pixels=self.max_pixels)
        except ImageLoadError as exc:
            raise ImageLoadError(f"image {index}: {exc}") from exc
        except TypeError as exc:
            raise TypeError(f"image {index}: {exc}") from exc
