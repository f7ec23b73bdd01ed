"""Turns texts and images, of items or of queries, into the multimodal index's spaces.

An :class:`Embedder` pairs a text encoder and an image encoder that share one space (the
aligned space trained here, or CLIP). When the image encoder is the aligned one, the raw image
features it projects from are kept too, as the ``visual`` space, at no extra cost: one
backbone pass gives both.

Item vectors are cached per encoder and per input hash (:mod:`retrieval.features`); for the
aligned space the cache holds the *base* features (EfficientNet, MiniLM), shared with
``crs train-align``, and the cheap projection runs every time, so new head weights never need
the catalog encoded again.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.encoders import ImageEncoder, TextEncoder, load_image_encoder, load_text_encoder
from retrieval.features import Progress, cache_file, cached_encode, text_hash
from retrieval.images import ImageSource, image_fingerprint
from retrieval.multimodal import ItemVectors, Query

__all__ = ["Embedder", "EmbedItem", "load_embedder", "DEFAULT_EMBEDDER"]

DEFAULT_EMBEDDER = "aligned"


@dataclass(frozen=True)
class EmbedItem:
    id: int
    text: str
    image: str | os.PathLike | None  # None: the item has no picture (zero image vectors; none at all: no picture space)


class Embedder:
    def __init__(self, text: TextEncoder, image: ImageEncoder, *, query_text: TextEncoder | None = None) -> None:
        if text.dim != image.dim:
            raise ValueError(f"text encoder {text.name!r} ({text.dim}-d) and image encoder {image.name!r} "
                             f"({image.dim}-d) do not share a space")
        self.text = text
        self.image = image
        # Single query texts may use a faster approximation of ``text`` in the same space (int8,
        # retrieval/encoders/quantized.py); item texts always go through ``text``.
        self.query_text = query_text or text
        if self.query_text.dim != text.dim:
            raise ValueError(f"query text encoder {self.query_text.name!r} is {self.query_text.dim}-d, "
                             f"not {text.dim}-d like {text.name!r}")
        # The aligned encoder exposes its backbone and projection; others (CLIP) have no visual space.
        self._base_image: ImageEncoder | None = getattr(image, "base", None) if hasattr(image, "project") else None
        self._base_text: TextEncoder | None = getattr(text, "base", None) if hasattr(text, "project") else None

    @property
    def name(self) -> str:
        """Identifies the vectors this embedder makes: index caches are keyed by it."""
        return f"{self.text.name}+{self.image.name}"

    @property
    def cached_text_encoder(self) -> TextEncoder:
        """The encoder whose item vectors the cache (and the shipped seed) holds for texts."""
        return self._base_text or self.text

    @property
    def cached_image_encoder(self) -> ImageEncoder:
        """The encoder whose item vectors the cache (and the shipped seed) holds for pictures."""
        return self._base_image or self.image

    @property
    def has_visual(self) -> bool:
        return self._base_image is not None

    @property
    def dim(self) -> int:
        return self.text.dim

    # -- queries ---------------------------------------------------------------------------------

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.text.encode(list(texts))

    def encode_query_text(self, text: str) -> np.ndarray:
        """One query text, as a person typed it, through the (possibly int8) query encoder."""
        return self.query_text.encode([text])[0]

    def encode_images(self, images: Sequence[ImageSource]) -> tuple[np.ndarray, np.ndarray | None]:
        """``(joint vectors, raw visual features or None)``, one row per image."""
        if self._base_image is not None:
            features = self._base_image.encode(list(images))
            return self.image.project(features), features  # type: ignore[attr-defined]
        return self.image.encode(list(images)), None

    def query(self, text: str | None = None, images: Sequence[ImageSource] = (), *,
              liked: Sequence[int] = (), disliked: Sequence[int] = ()) -> Query:
        """A :class:`Query` from what a person gave: a blank text counts as none. The text is
        kept as typed too, for the lexical space."""
        given = text is not None and text.strip()
        text_vector = self.encode_query_text(text) if given else None
        joint, visual = self.encode_images(images) if images else (None, None)
        return Query(text=text_vector, words=text if given else None, images=joint, visual=visual,
                     liked=tuple(int(i) for i in liked), disliked=tuple(int(i) for i in disliked))

    # -- items -----------------------------------------------------------------------------------

    def item_vectors(self, items: Sequence[EmbedItem], cache_dir: str | os.PathLike | None,
                     progress: Progress | None = None, *, seed_dir: str | os.PathLike | None = None) -> ItemVectors:
        """Vectors of every item in every space, reusing the encoding cache under ``cache_dir``
        (and the shipped vectors in ``seed_dir`` for rows it lacks, see :mod:`retrieval.seed_vectors`).
        When no item has a picture there are no picture spaces: nothing is encoded or stored."""
        ids = np.array([item.id for item in items], dtype=np.int64)
        texts = [item.text for item in items]
        with_image = [row for row, item in enumerate(items) if item.image is not None]
        text_vectors = self._cached(self.cached_text_encoder, texts, [text_hash(t) for t in texts],
                                    cache_dir, progress, seed_dir)
        if self._base_text is not None:
            text_vectors = self.text.project(text_vectors)  # type: ignore[attr-defined]
        if not with_image:
            return ItemVectors(ids=ids, text=text_vectors, image=None, visual=None)
        paths = [items[row].image for row in with_image]
        base = self.cached_image_encoder
        features = self._cached(base, paths, [image_fingerprint(p) for p in paths], cache_dir, progress, seed_dir)
        image = np.zeros((len(items), self.dim), dtype=np.float32)
        visual = np.zeros((len(items), base.dim), dtype=np.float32) if self._base_image is not None else None
        image[with_image] = self.image.project(features) if self._base_image is not None else features  # type: ignore[attr-defined]
        if visual is not None:
            visual[with_image] = features
        return ItemVectors(ids=ids, text=text_vectors, image=image, visual=visual)

    @staticmethod
    def _cached(encoder, inputs: list, hashes: list[str], cache_dir, progress, seed_dir) -> np.ndarray:  # type: ignore[no-untyped-def]
        path = cache_file(cache_dir, encoder.name) if cache_dir is not None else None
        if path is not None:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
        return cached_encode(encoder, inputs, hashes, path, progress=progress, seed_dir=seed_dir).vectors


def load_embedder(spec: str = DEFAULT_EMBEDDER, *, int8_queries: bool = True) -> Embedder:
    """``aligned`` (default: MiniLM + EfficientNet-Lite0 + the head trained here),
    ``aligned:PATH`` (other head weights), ``clip:PATH_OR_NAME``, ``fake`` (tests).

    With ``int8_queries`` (the default) the aligned embedder encodes single query texts with an
    int8 copy of MiniLM: ~2.5x faster per query; the recall it costs is in retrieval_quality.py.
    """
    if spec.strip().partition(":")[0] == "aligned":
        from retrieval.encoders.aligned import AlignedTextEncoder, aligned_encoders
        from retrieval.encoders.minilm import SentenceTransformerTextEncoder
        from retrieval.encoders.quantized import Int8TextEncoder

        arg = spec.strip().partition(":")[2].strip() or None
        text, image = aligned_encoders(arg)
        query_text = None
        if int8_queries and isinstance(text.base, SentenceTransformerTextEncoder):
            query_text = AlignedTextEncoder(text.projection, dims=text.dim, base=Int8TextEncoder(text.base))
        return Embedder(text, image, query_text=query_text)
    return Embedder(load_text_encoder(spec), load_image_encoder(spec))
