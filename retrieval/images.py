"""Loading images safely, the one way every encoder sees them.

Every image that reaches an encoder goes through :func:`load_image`, so a catalog photo, an
uploaded file and a PIL image from a UI all become the same thing: an RGB image in which
transparent pixels were composited on WHITE. White matters: EfficientNet features of emoji drawn
by different artists matched best that way (shared RESEARCH notes), and sticker/clip-art catalogs
are mostly transparent PNGs.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["ImageLoadError", "ImageSource", "DEFAULT_MAX_PIXELS", "load_image", "image_fingerprint"]

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | Image.Image

DEFAULT_MAX_PIXELS = 40_000_000

_WHITE = (255, 255, 255, 255)
_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}


class ImageLoadError(ValueError):
    """The input is not a usable image: missing, not an image, corrupt, empty or too large.

    A ValueError because it is the caller's data that is wrong, not the code: ingestion records
    it against the item and goes on, the chat tells the user their upload could not be read.
    """


def _describe(source: ImageSource) -> str:
    if isinstance(source, Image.Image):
        fname = getattr(source, "filename", "") or ""
        return f"PIL image {fname!r}" if fname else f"PIL image {source.size[0]}x{source.size[1]}"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    return repr(os.fspath(source))


def load_image(source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Return ``source`` as a fully decoded RGB image, transparency composited on white.

    ``source`` is a path, the raw bytes of an encoded file, or a PIL image. EXIF orientation is
    applied (phone photos would otherwise reach the model sideways); animated images give their
    first frame. The size is checked against ``max_pixels`` from the header, before decoding, so
    a decompression bomb costs nothing.

    Raises :class:`ImageLoadError` naming the file and the cause; ``TypeError`` for an argument
    of the wrong type (a bug, not bad data).
    """
    if not isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview, Image.Image)):
        raise TypeError(
            f"load_image expects a path, bytes or a PIL image, got {type(source).__name__}"
        )
    what = _describe(source)
    if isinstance(source, Image.Image):
        return _finish(source, what, max_pixels)

    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageLoadError(f"{what}: empty input, not an image")
        fp: object = io.BytesIO(bytes(source))
    else:
        if str(source).startswith(("http://", "https://")):
            raise ImageLoadError(
                f"{what}: is a URL; download it first (load_image reads local files)"
            )
        path = Path(os.fspath(source))
        if not path.exists():
            raise ImageLoadError(f"{what}: file not found")
        if not path.is_file():
            raise ImageLoadError(f"{what}: not a regular file")
        if path.stat().st_size == 0:
            raise ImageLoadError(f"{what}: empty file (0 bytes), not an image")
        fp = path

    with warnings.catch_warnings():
        # PIL only WARNS between MAX_IMAGE_PIXELS and twice that; a bomb must stop here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(fp)  # reads the header only
        except UnidentifiedImageError:
            raise ImageLoadError(f"{what}: not an image (unrecognised format)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageLoadError(f"{what}: too many pixels (decompression bomb): {exc}") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageLoadError(f"{what}: cannot read image header: {exc}") from None
        with image:
            return _finish(image, what, max_pixels)


def _finish(image: Image.Image, what: str, max_pixels: int) -> Image.Image:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageLoadError(f"{what}: zero-size image ({width}x{height})")
    if width * height > max_pixels:
        raise ImageLoadError(
            f"{what}: too many pixels ({width}x{height} = {width * height:,} > max_pixels "
            f"{max_pixels:,}); refusing to decode (possible decompression bomb)"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image.load()
            image = ImageOps.exif_transpose(image) or image
            return _to_rgb_on_white(image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageLoadError(f"{what}: too many pixels (decompression bomb): {exc}") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
            raise ImageLoadError(f"{what}: truncated or corrupt image data: {exc}") from None


def _to_rgb_on_white(image: Image.Image) -> Image.Image:
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        # convert("RGB") clips 16-bit values at 255, so a 16-bit grey PNG would come out white.
        arr = np.asarray(image, dtype=np.float32)
        scale = 255.0 / 65535.0 if image.mode != "F" else 255.0 / max(float(arr.max()), 1e-12)
        image = Image.fromarray(np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8), "L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE)
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "RGB":
        return image.copy()  # detach from the file object the caller may close
    return image.convert("RGB")


def image_fingerprint(path: str | os.PathLike) -> str:
    """sha1 of the file's bytes (hex): a cheap key for caching features of unchanged images."""
    digest = hashlib.sha1()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except FileNotFoundError:
        raise ImageLoadError(f"{os.fspath(path)!r}: file not found") from None
    except IsADirectoryError:
        raise ImageLoadError(f"{os.fspath(path)!r}: not a regular file") from None
    return digest.hexdigest()
