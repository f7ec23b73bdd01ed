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
does so unless the spec names one. Backends are registered explicitly below in two
:class:`~retrieval.registry.Registry` instances (the project's one registry style);
:func:`register_text_encoder` / :func:`register_image_encoder` add more, and installed packages
add theirs through the entry-point groups ``crs.text_encoders`` / ``crs.image_encoders``.
Importing this package imports neither torch nor transformers: each factory imports its backend
when called.
"""

from __future__ import annotations

from collections.abc import Callable

from retrieval.encoders.base import Encoder, ImageEncoder, TextEncoder, l2_normalize
from retrieval.encoders.fake import FakeImageEncoder, FakeTextEncoder
from retrieval.images import ImageLoadError
from retrieval.registry import Registry

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

DEFAULT_TEXT_ENCODER = "minilm"
DEFAULT_IMAGE_ENCODER = "efficientnet-lite0"

# factory(arg) builds the encoder; arg follows "key:" in the spec, or is None.
TEXT_ENCODERS: Registry[TextEncoder] = Registry("text encoder", "crs.text_encoders")
IMAGE_ENCODERS: Registry[ImageEncoder] = Registry("image encoder", "crs.image_encoders")


def register_text_encoder(
    key: str, factory: Callable[[str | None], TextEncoder], usage: str | None = None
) -> None:
    TEXT_ENCODERS.register(key, factory, usage)


def register_image_encoder(
    key: str, factory: Callable[[str | None], ImageEncoder], usage: str | None = None
) -> None:
    IMAGE_ENCODERS.register(key, factory, usage)


def load_text_encoder(spec: str = DEFAULT_TEXT_ENCODER) -> TextEncoder:
    """Build the text encoder named by ``spec`` (see the module docstring)."""
    return TEXT_ENCODERS.create(spec)


def load_image_encoder(spec: str = DEFAULT_IMAGE_ENCODER) -> ImageEncoder:
    """Build the image encoder named by ``spec`` (see the module docstring)."""
    return IMAGE_ENCODERS.create(spec)


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
