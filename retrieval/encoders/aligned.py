"""Encoders into the aligned joint space trained by :mod:`retrieval.align` (spec ``aligned``).

``AlignedImageEncoder`` runs the base image encoder (EfficientNet-Lite0 features) and the
trained projection head; ``AlignedTextEncoder`` runs the base text encoder (MiniLM) and the
trained adapter. Their vectors are comparable: text-to-image and image-to-image search in one
384-d space. ``dims`` (64, 128 or 384 by default) returns a Matryoshka prefix, re-normalised.

Names carry a short hash of the weights (and the prefix size), so an index built with one set
of weights is never mistaken for another's. The default weights are the ones shipped in
``assets/align/``; ``aligned:PATH`` names another folder or ``.safetensors`` file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from retrieval.align import AlignedProjection, AlignWeightsError, load_alignment
from retrieval.encoders.base import ImageEncoder, TextEncoder, l2_normalize

__all__ = [
    "AlignedImageEncoder",
    "AlignedTextEncoder",
    "DEFAULT_ALIGN_WEIGHTS",
    "aligned_encoders",
]

DEFAULT_ALIGN_WEIGHTS = Path(__file__).resolve().parents[2] / "assets" / "align"

Weights = str | os.PathLike | AlignedProjection | None


def _projection(weights: Weights) -> AlignedProjection:
    if isinstance(weights, AlignedProjection):
        return weights
    return load_alignment(DEFAULT_ALIGN_WEIGHTS if weights is None else weights)


def _check_base(base, expected_name: str, dim: int, kind: str) -> None:
    # base._dim, not base.dim: a lazily sized encoder would load its model just to answer
    known_dim = getattr(base, "_dim", None)
    # An int8 copy of the expected encoder (Int8TextEncoder) approximates the same features.
    name = getattr(base, "quantized_from", base.name)
    if name != expected_name or (known_dim is not None and known_dim != dim):
        raise AlignWeightsError(
            f"these aligned-space weights were trained on {kind} features of {expected_name!r} "
            f"({dim}-d), not {base.name!r} ({known_dim or '?'}-d)"
        )


def _suffix(projection: AlignedProjection, dims: int) -> str:
    return "" if dims == projection.config.text_dim else f"-d{dims}"


class AlignedImageEncoder(ImageEncoder):
    """Base image features -> trained projection head -> the joint space."""

    def __init__(
        self,
        weights: Weights = None,
        *,
        dims: int | None = None,
        base: ImageEncoder | None = None,
        batch_size: int = 32,
    ) -> None:
        self.projection = _projection(weights)
        self._dim = self.projection.check_dims(dims)
        if base is None:
            from retrieval.encoders import load_image_encoder

            base = load_image_encoder(self.projection.config.image_spec)
        config = self.projection.config
        _check_base(base, config.image_name, config.image_dim, "image")
        self.base = base
        self.batch_size = batch_size
        self.name = f"aligned-{self.projection.short_hash}-image{_suffix(self.projection, self._dim)}"

    def encode_batch(self, batch: list[Image.Image]) -> np.ndarray:
        features = self.base.encode(batch, batch_size=len(batch))
        return self.projection.project_images(features, self._dim)

    def project(self, features: np.ndarray) -> np.ndarray:
        """Project base features already computed (``base.encode`` output) into the space."""
        return self.projection.project_images(l2_normalize(features), self._dim)

    def encode_with_features(self, images: list, *, batch_size: int | None = None):
        """``(base features, joint-space vectors)`` from ONE backbone pass: an index keeps the
        raw visual vector for image-to-image search beside the projected one."""
        features = self.base.encode(images, batch_size=batch_size or self.batch_size)
        return features, self.project(features)


class AlignedTextEncoder(TextEncoder):
    """Base text embedding -> trained adapter -> the joint space."""

    def __init__(
        self,
        weights: Weights = None,
        *,
        dims: int | None = None,
        base: TextEncoder | None = None,
        batch_size: int = 64,
    ) -> None:
        self.projection = _projection(weights)
        self._dim = self.projection.check_dims(dims)
        if base is None:
            from retrieval.encoders import load_text_encoder

            base = load_text_encoder(self.projection.config.text_spec)
        config = self.projection.config
        _check_base(base, config.text_name, config.text_dim, "text")
        self.base = base
        self.batch_size = batch_size
        self.name = f"aligned-{self.projection.short_hash}-text{_suffix(self.projection, self._dim)}"

    def encode_batch(self, batch: list[str]) -> np.ndarray:
        embeddings = self.base.encode(batch, batch_size=len(batch))
        return self.projection.project_texts(embeddings, self._dim)

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """Project base text embeddings already computed into the space."""
        return self.projection.project_texts(l2_normalize(embeddings), self._dim)


def aligned_encoders(
    weights: Weights = None, *, dims: int | None = None
) -> tuple[AlignedTextEncoder, AlignedImageEncoder]:
    """Both towers sharing one loaded set of weights."""
    projection = _projection(weights)
    return (
        AlignedTextEncoder(projection, dims=dims),
        AlignedImageEncoder(projection, dims=dims),
    )
