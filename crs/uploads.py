"""Checks on images people upload, before anything decodes them for real.

An upload is judged by its bytes, never by its name or declared content type: a text file named
``cat.png`` is refused. The order matters for safety and cost: the byte count is capped while
reading (never more than the limit + 1 bytes), the format is sniffed by Pillow with only the
accepted formats' parsers enabled, the pixel count is checked from the header before any pixel
is decoded (a 100 KB PNG can declare 40,000 x 40,000 pixels), and only then is the file verified
and fully decoded, so that a truncated or corrupt file fails here, with its name, and not deep
inside the dialogue manager.

Memory is the scarce resource, not bytes: a one-colour 4470 x 4470 PNG is 19 KB on the wire and
80 MB decoded. So a message also has a pixel budget (all its images together, from the headers,
before any decoding), at most ``max_concurrent_decodes`` images are decoded at once in the whole
process (the rest wait their turn), and each image is kept only at the size the models need
(``decode_side``: JPEG is decoded at that scale directly with Pillow's ``draft``; other formats
are decoded once, then reduced with ``thumbnail``), so a full-size copy never outlives its check.

Each problem is an :class:`UploadError` carrying the HTTP status the API answers with:
413 too big (bytes or pixels, decompression bombs), 415 not an accepted image format,
400 empty, truncated or corrupt, 422 a message that breaks the per-message rules (too many
images, text too long, nothing at all).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import io
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from struct import error as struct_error  # Pillow lets it escape from some malformed headers
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from .errors import UserError

# Pillow format names -> what people call them. MPO is how Pillow names the JPEG files many
# phone cameras write (a JPEG with extra preview frames): its JPEG parser opens them, and
# refusing them would refuse phone photos.
ACCEPTED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WebP", "GIF": "GIF"}
PARSERS = ("PNG", "JPEG", "WEBP", "GIF")  # the only Pillow plugins an upload is offered to
ACCEPTED_TEXT = "PNG, JPEG, WebP or GIF"
CHUNK = 64 * 1024
MIB = 1024 * 1024


class UploadError(UserError):
    """An upload or message the API refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 8 * MIB  # per image
    max_images: int = 4  # per message
    max_pixels: int = 20_000_000  # per image, width x height
    max_text_chars: int = 2000  # per message
    max_message_pixels: int = 40_000_000  # all the images of one message together
    max_concurrent_decodes: int = 2  # images decoded at once in the process; others wait
    decode_side: int = 768  # longest side kept after decoding (the encoders use 224; VLMs ~512-768)

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_images", "max_pixels", "max_text_chars", "max_message_pixels",
                     "max_concurrent_decodes", "decode_side"):
            if getattr(self, name) < 1:
                raise ValueError(f"upload limit {name} must be at least 1, got {getattr(self, name)}")

    @property
    def max_request_bytes(self) -> int:
        """The most a whole message request may carry: every image at its limit, the text and
        the multipart framing (1 MiB is generous for both). Anything larger is refused while it
        is still arriving, before it is spooled to disk."""
        return self.max_images * self.max_bytes + MIB


@dataclass(frozen=True)
class CheckedImage:
    label: str  # how messages name it: image 2 ('cat.png')
    format: str  # Pillow's name: PNG, JPEG, MPO, WEBP, GIF
    width: int  # as uploaded
    height: int
    size_bytes: int
    image: Image.Image  # decoded (first frame of an animation), longest side at most decode_side


def label(number: int, filename: str | None) -> str:
    """``image 2 ('cat.png')``: the position says which when names repeat or are missing."""
    name = (filename or "").strip()
    return f"image {number} ({name[:80]!r})" if name else f"image {number}"


def check_message(text: str, image_count: int, limits: UploadLimits) -> None:
    """The per-message rules, checked before any image is read."""
    if len(text) > limits.max_text_chars:
        raise UploadError(422, f"the text is too long: {len(text):,} characters, at most "
                               f"{limits.max_text_chars:,} per message")
    if image_count > limits.max_images:
        raise UploadError(422, f"too many images: {image_count}, at most {limits.max_images} per message")
    if not text.strip() and image_count == 0:
        raise UploadError(422, "empty message: send a text, an image or both")


def check_uploads(text: str, uploads: Sequence[tuple[str | None, BinaryIO]],
                  limits: UploadLimits) -> list[CheckedImage]:
    """One message's text and ``(filename, stream)`` uploads, checked in the order the rules are
    cheapest: the message first (before any byte of an image is read), then every image's bytes
    and header, then the message's pixel budget, and only then the decoding, one image at a time."""
    check_message(text, len(uploads), limits)
    headers = []
    for number, (filename, stream) in enumerate(uploads, start=1):
        what = label(number, filename)
        data = read_limited(stream, what, limits.max_bytes)
        headers.append((what, data, check_header(data, what, limits)))
    total = sum(width * height for _, _, (_, width, height) in headers)
    if total > limits.max_message_pixels:
        raise UploadError(413, f"the images of this message have {total:,} pixels in all, more than the limit of "
                               f"{limits.max_message_pixels:,} per message; none was decoded")
    return [decode(data, what, header, limits) for what, data, header in headers]


def read_limited(stream: BinaryIO, what: str, max_bytes: int) -> bytes:
    """Read ``stream`` to its end, but never more than ``max_bytes`` + 1 bytes: one byte past
    the limit proves the file is too large without reading (or holding) the rest of it."""
    parts: list[bytes] = []
    size = 0
    while size <= max_bytes:
        chunk = stream.read(min(CHUNK, max_bytes + 1 - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    if size > max_bytes:
        raise UploadError(413, f"{what}: too large: more than the limit of {_size(max_bytes)} per image")
    return b"".join(parts)


def check_image(data: bytes, what: str, limits: UploadLimits) -> CheckedImage:
    """Sniff, size-check, verify and decode one uploaded image; :class:`UploadError` if it is unusable."""
    return decode(data, what, check_header(data, what, limits), limits)


def check_header(data: bytes, what: str, limits: UploadLimits) -> tuple[str, int, int]:
    """The format and size from the header alone (nothing is decoded): ``(format, width, height)``."""
    if not data:
        raise UploadError(400, f"{what}: empty file (0 bytes), not an image")
    if len(data) > limits.max_bytes:
        raise UploadError(413, f"{what}: too large: {_size(len(data))}, more than the limit of "
                               f"{_size(limits.max_bytes)} per image")
    with _bombs_are_errors(what):
        header = _open(data, what)
        fmt = header.format or "?"
        width, height = header.size
    # Pillow's own bomb check (above) uses its global limit; this one is the app's, lower,
    # and does not depend on the process-wide warnings filter (which threads share).
    if width * height > limits.max_pixels:
        raise UploadError(413, f"{what}: too many pixels: {width}x{height} = {width * height:,}, more than "
                               f"the limit of {limits.max_pixels:,}; it was not decoded")
    if width < 1 or height < 1:
        raise UploadError(400, f"{what}: zero-size image ({width}x{height})")
    return fmt, width, height


def decode(data: bytes, what: str, header: tuple[str, int, int], limits: UploadLimits) -> CheckedImage:
    """Verify and decode an image whose header passed :func:`check_header`, in one of the
    process's decode slots, keeping it at most ``decode_side`` pixels on its longest side."""
    fmt, width, height = header
    side = limits.decode_side
    with _decode_slots(limits.max_concurrent_decodes), _bombs_are_errors(what):
        try:
            _open(data, what).verify()  # checksums and structure (PNG CRCs) without decoding pixels
            image = _open(data, what)  # verify() leaves the image unusable: open it again
            image.draft(None, (side, side))  # JPEG decodes at 1/2..1/8 scale directly; others: no-op
            image.load()  # decodes the (first) frame: truncation and corrupt data show up here
            if max(image.size) > side:
                image.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
        except UploadError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct_error) as exc:
            raise UploadError(400, f"{what}: truncated or corrupt {ACCEPTED_FORMATS.get(fmt, fmt)} file: {exc}") from None
    if width * height > BIG_DECODE:
        release_memory()
    return CheckedImage(what, fmt, width, height, len(data), image)


def _open(data: bytes, what: str) -> Image.Image:
    try:
        # Only the accepted formats' parsers run: an upload never reaches Pillow's rarer decoders.
        return Image.open(io.BytesIO(data), formats=PARSERS)
    except UnidentifiedImageError:
        raise UploadError(415, f"{what}: not a {ACCEPTED_TEXT} image (judged by its content, "
                               "not its name)") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct_error) as exc:
        raise UploadError(400, f"{what}: cannot read the image header: {exc}") from None


@contextmanager
def _bombs_are_errors(what: str) -> Iterator[None]:
    """Pillow only WARNS between its pixel limit and twice that; here both are refusals (413)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UploadError(413, f"{what}: too many pixels (decompression bomb): {exc}") from None


BIG_DECODE = 4_000_000  # pixels: after decoding a larger image, hand freed memory back to the OS
_slots: dict[int, threading.BoundedSemaphore] = {}
_slots_guard = threading.Lock()


def _decode_slots(count: int) -> threading.BoundedSemaphore:
    """The process-wide decode slots for ``count`` (one semaphore per setting, shared by the
    API and the page), so N concurrent messages never decode more than ``count`` images at once."""
    with _slots_guard:
        return _slots.setdefault(count, threading.BoundedSemaphore(count))


def _libc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


_MALLOC_TRIM = _libc_trim()


def release_memory() -> None:
    """Hand freed heap pages back to the OS. glibc keeps them in its per-thread arenas; without
    this, a burst of big decodes (and the image turns after them) leaves the server's RSS far
    above where it started (measured in benchmarks/upload_burst.py). Called after each big
    decode and after each turn with images; a no-op where the C library has no malloc_trim."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _size(n: int) -> str:
    return f"{n / MIB:.1f} MiB ({n:,} bytes)" if n >= MIB else f"{n:,} bytes"
