"""Optional CLIP backend: a text encoder and an image encoder in ONE joint space.

Both encoders of a source share one loaded ``transformers.CLIPModel`` (loaded lazily, once per
process). The source is a local directory, or a hub name the user passes explicitly (that
downloads; nothing here ever picks a hub name by default). No CLIP weights ship on PyPI, so the
offline default image+text space is built elsewhere; this is the option for users with internet
or their own checkpoint.

Images are preprocessed with transformers' PIL/numpy image processor (``CLIPImageProcessorPil``
in transformers 5, the slow ``CLIPImageProcessor`` in 4.x), never the torchvision one.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from PIL import Image

from retrieval.encoders.base import ImageEncoder, TextEncoder, check_model_source

__all__ = ["ClipBackend", "ClipTextEncoder", "ClipImageEncoder", "load_clip", "clip_encoders"]

_PIP = "pip install 'transformers>=4.44' 'torch>=2.2,<2.14'"
_LOCK = threading.Lock()


@dataclass(frozen=True)
class ClipBackend:
    """A loaded CLIP model with its tokenizer and image processor."""

    source: str
    device: str
    model: Any
    tokenizer: Any
    image_processor: Any
    dim: int
    max_length: int

    @property
    def name(self) -> str:
        return f"clip:{self.source}"

    def text_features(self, texts: list[str]) -> np.ndarray:
        tokens = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        out = self.model.get_text_features(
            input_ids=tokens["input_ids"], attention_mask=tokens.get("attention_mask")
        )
        return _to_numpy(out)

    def image_features(self, images: list[Image.Image]) -> np.ndarray:
        pixels = self.image_processor(images=images, return_tensors="pt")["pixel_values"]
        out = self.model.get_image_features(pixel_values=pixels.to(self.device, self.model.dtype))
        return _to_numpy(out)


def _to_numpy(out: Any) -> np.ndarray:
    # transformers 4.x returns the projected tensor, 5.x a ModelOutput with it as pooler_output
    tensor = out if hasattr(out, "detach") else out.pooler_output
    return tensor.detach().float().cpu().numpy()


def _import_transformers() -> Any:
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError as exc:
        raise ImportError(f"the CLIP encoders need transformers and torch: {_PIP}") from exc
    except RuntimeError as exc:  # e.g. "operator torchvision::nms does not exist"
        raise ImportError(
            f"transformers failed to import ({exc}); a torchvision build that does not match "
            "torch breaks it: pip uninstall torchvision"
        ) from exc
    return transformers


def _image_processor(transformers: Any, source: str, config: Any) -> Any:
    cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    try:
        return cls.from_pretrained(source)
    except OSError:
        # a checkpoint saved without preprocessor_config.json: CLIP's defaults at the model's size
        size = int(config.vision_config.image_size)
        return cls(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


@cache
def _load(source: str, device: str) -> ClipBackend:
    transformers = _import_transformers()
    where = check_model_source(source, "CLIP")
    try:
        path = os.path.expanduser(source)
        model = transformers.CLIPModel.from_pretrained(path)
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    except OSError as exc:
        raise OSError(
            f"could not load CLIP model {source!r} as a {where}: {exc}. "
            "Hub names need internet or a filled hub cache."
        ) from exc
    model = model.float().to(device).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    processor = _image_processor(transformers, path, model.config)
    return ClipBackend(
        source=source,
        device=device,
        model=model,
        tokenizer=tokenizer,
        image_processor=processor,
        dim=int(model.config.projection_dim),
        max_length=int(model.config.text_config.max_position_embeddings),
    )


def load_clip(source: str | os.PathLike, device: str = "cpu") -> ClipBackend:
    """The CLIP model at ``source``, loaded once per (source, device) per process."""
    with _LOCK:
        return _load(os.fspath(source), device)


class _ClipEncoderMixin:
    source: str
    device: str
    _dim: int | None

    def _init(self, source: str | os.PathLike, device: str, batch_size: int) -> None:
        self.source = os.fspath(source)
        self.device = device
        self.batch_size = batch_size
        self.name = f"clip:{self.source}"

    @property
    def backend(self) -> ClipBackend:
        return load_clip(self.source, self.device)

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = self.backend.dim
        return self._dim


class ClipTextEncoder(_ClipEncoderMixin, TextEncoder):
    """CLIP's text tower (projected): lands in the same space as :class:`ClipImageEncoder`."""

    def __init__(
        self, source: str | os.PathLike, *, device: str = "cpu", batch_size: int = 64
    ) -> None:
        self._init(source, device, batch_size)

    def encode_batch(self, batch: list[str]) -> np.ndarray:
        return self.backend.text_features(batch)


class ClipImageEncoder(_ClipEncoderMixin, ImageEncoder):
    """CLIP's image tower (projected): lands in the same space as :class:`ClipTextEncoder`."""

    def __init__(
        self, source: str | os.PathLike, *, device: str = "cpu", batch_size: int = 32
    ) -> None:
        self._init(source, device, batch_size)

    def encode_batch(self, batch: list[Image.Image]) -> np.ndarray:
        return self.backend.image_features(batch)


def clip_encoders(
    source: str | os.PathLike, *, device: str = "cpu"
) -> tuple[ClipTextEncoder, ClipImageEncoder]:
    """Both towers of one CLIP checkpoint, sharing the loaded model."""
    return ClipTextEncoder(source, device=device), ClipImageEncoder(source, device=device)
