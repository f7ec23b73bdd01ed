"""Text and image encoders, and the factory that picks one from a spec string.

Specs::

    load_text_encoder("minilm")                              # offline default, 384-d
    load_text_encoder("sentence-transformers:/models/e5")    # any sentence-transformers model
    load_text_encoder("clip:/models/clip-vit-b32")           # CLIP text tower (joint space)
    load_text_encoder("fake")  /  "fake:32"                  # hashed bag of words, for tests
    load_image_encoder("efficientnet-lite0")                 # offline default, 1280-d, max pool
    load_image_encoder("efficientnet-lite0:mean")            # mean pooling instead
    load_image_encoder("clip:/models/clip-vit-b32")          # CLIP image tower (joint space)
    load_image_encoder("fake")  /  "fake:8"                  # colour histogram, BINS per channel
    load_text_encoder("aligned") / load_image_encoder("aligned")  # the joint space trained here
    load_image_encoder("aligned:/path/to/weights")           # other weights (crs train-align --out)

A hub name after ``clip:`` or ``sentence-transformers:`` downloads weights; nothing here ever
does so unless the spec names one. Backends are registered explicitly below with
:func:`register_text_encoder` / :func:`register_image_encoder`; a plugin registers its own the
same way. Importing this package imports neither torch nor transformers: each factory imports
its backend when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from retrieval.encoders.base import Encoder, ImageEncoder, TextEncoder, l2_normalize
from retrieval.encoders.fake import FakeImageEncoder, FakeTextEncoder
from retrieval.images import ImageLoadError

__all__ = [
    "Encoder",
    "TextEncoder",
    "ImageEncoder",
    "ImageLoadError",
    "FakeTextEncoder",
    "FakeImageEncoder",
    "l2_normalize",
    "TEXT_ENCODERS",
    "IMAGE_ENCODERS",
    "DEFAULT_TEXT_ENCODER",
    "DEFAULT_IMAGE_ENCODER",
    "register_text_encoder",
    "register_image_encoder",
    "load_text_encoder",
    "load_image_encoder",
]

E = TypeVar("E", bound=Encoder)

DEFAULT_TEXT_ENCODER = "minilm"
DEFAULT_IMAGE_ENCODER = "efficientnet-lite0"


@dataclass(frozen=True)
class Registration(Generic[E]):
    """``factory(arg)`` builds the encoder; ``arg`` follows ``key:`` in the spec, or is None."""

    factory: Callable[[str | None], E]
    usage: str  # how the spec is written, for error messages: "clip:PATH_OR_NAME"


TEXT_ENCODERS: dict[str, Registration[TextEncoder]] = {}
IMAGE_ENCODERS: dict[str, Registration[ImageEncoder]] = {}


def register_text_encoder(
    key: str, factory: Callable[[str | None], TextEncoder], usage: str | None = None
) -> None:
    _register(TEXT_ENCODERS, key, factory, usage)


def register_image_encoder(
    key: str, factory: Callable[[str | None], ImageEncoder], usage: str | None = None
) -> None:
    _register(IMAGE_ENCODERS, key, factory, usage)


def _register(registry: dict, key: str, factory: Callable, usage: str | None) -> None:
    if not key or ":" in key or key != key.strip():
        raise ValueError(
            f"encoder key must be non-empty with no ':' or surrounding spaces: {key!r}"
        )
    if key in registry:
        raise ValueError(f"encoder {key!r} is already registered")
    registry[key] = Registration(factory, usage or key)


def load_text_encoder(spec: str = DEFAULT_TEXT_ENCODER) -> TextEncoder:
    """Build the text encoder named by ``spec`` (see the module docstring)."""
    return _load(TEXT_ENCODERS, "text", spec)


def load_image_encoder(spec: str = DEFAULT_IMAGE_ENCODER) -> ImageEncoder:
    """Build the image encoder named by ``spec`` (see the module docstring)."""
    return _load(IMAGE_ENCODERS, "image", spec)


def _load(registry: dict[str, Registration[E]], kind: str, spec: str) -> E:
    if not isinstance(spec, str):
        raise TypeError(f"{kind} encoder spec must be a str, got {type(spec).__name__}")
    key, sep, arg = spec.strip().partition(":")
    registration = registry.get(key)
    if registration is None:
        valid = ", ".join(r.usage for r in registry.values())
        raise ValueError(f"unknown {kind} encoder {spec!r}; valid: {valid}")
    return registration.factory(arg if sep else None)


# -- the built-in backends ---------------------------------------------------------------------


def _no_arg(key: str, arg: str | None) -> None:
    if arg is not None:
        raise ValueError(f"encoder {key!r} takes no argument, got {key}:{arg}")


def _required(key: str, arg: str | None, what: str) -> str:
    if not arg or not arg.strip():
        raise ValueError(f"encoder {key!r} needs {what}: {key}:{what}")
    return arg.strip()


def _int_arg(key: str, arg: str | None, default: int) -> int:
    if arg is None:
        return default
    try:
        return int(arg)
    except ValueError:
        raise ValueError(f"encoder {key!r} takes an integer argument, got {key}:{arg}") from None


def _minilm(arg: str | None) -> TextEncoder:
    _no_arg("minilm", arg)
    from retrieval.encoders.minilm import MiniLMTextEncoder

    return MiniLMTextEncoder()


def _sentence_transformers(arg: str | None) -> TextEncoder:
    from retrieval.encoders.minilm import SentenceTransformerTextEncoder

    return SentenceTransformerTextEncoder(_required("sentence-transformers", arg, "PATH_OR_NAME"))


def _clip_text(arg: str | None) -> TextEncoder:
    from retrieval.encoders.clip import ClipTextEncoder

    return ClipTextEncoder(_required("clip", arg, "PATH_OR_NAME"))


def _clip_image(arg: str | None) -> ImageEncoder:
    from retrieval.encoders.clip import ClipImageEncoder

    return ClipImageEncoder(_required("clip", arg, "PATH_OR_NAME"))


def _efficientnet(arg: str | None) -> ImageEncoder:
    from retrieval.encoders.efficientnet import EfficientNetImageEncoder

    return EfficientNetImageEncoder(pooling=arg or "max")


def _aligned_text(arg: str | None) -> TextEncoder:
    from retrieval.encoders.aligned import AlignedTextEncoder

    return AlignedTextEncoder(arg.strip() if arg and arg.strip() else None)


def _aligned_image(arg: str | None) -> ImageEncoder:
    from retrieval.encoders.aligned import AlignedImageEncoder

    return AlignedImageEncoder(arg.strip() if arg and arg.strip() else None)


register_text_encoder("minilm", _minilm)
register_text_encoder(
    "sentence-transformers", _sentence_transformers, "sentence-transformers:PATH_OR_NAME"
)
register_text_encoder("clip", _clip_text, "clip:PATH_OR_NAME")
register_text_encoder("aligned", _aligned_text, "aligned[:PATH]")
register_text_encoder("fake", lambda arg: FakeTextEncoder(_int_arg("fake", arg, 64)), "fake[:DIM]")

register_image_encoder("efficientnet-lite0", _efficientnet, "efficientnet-lite0[:max|mean]")
register_image_encoder("clip", _clip_image, "clip:PATH_OR_NAME")
register_image_encoder("aligned", _aligned_image, "aligned[:PATH]")
register_image_encoder(
    "fake", lambda arg: FakeImageEncoder(_int_arg("fake", arg, 4)), "fake[:BINS]"
)
