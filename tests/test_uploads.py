"""Upload checks (crs/uploads.py) on their own: what is accepted, what is refused, with which status and why."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from crs.uploads import (CheckedImage, UploadError, UploadLimits, check_image, check_message, label,
                         read_limited)
from tests.test_api import png_header_only

LIMITS = UploadLimits()


def encoded(fmt: str, size: tuple[int, int] = (32, 24), **save: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, fmt, **save)
    return out.getvalue()


def refusal(data: bytes, limits: UploadLimits = LIMITS, what: str = "image 1 ('x')") -> UploadError:
    with pytest.raises(UploadError) as caught:
        check_image(data, what, limits)
    assert str(caught.value).startswith(what)  # every message names the file
    return caught.value


class CountingStream(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.consumed = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.consumed += len(chunk)
        return chunk


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_accepted_formats_are_decoded(fmt: str) -> None:
    checked = check_image(encoded(fmt), "image 1", LIMITS)
    assert isinstance(checked, CheckedImage) and checked.format == fmt
    assert (checked.width, checked.height) == (32, 24) and checked.image.size == (32, 24)
    checked.image.getpixel((0, 0))  # loaded: usable without the original bytes


def test_formats_are_sniffed_not_taken_from_names() -> None:
    # a GIF signature with no GIF behind it is no GIF either
    for data in (b"hello, I am text\n" * 5, encoded("BMP"), encoded("TIFF"), b"%PDF-1.7\n", b"GIF89a text" * 3):
        error = refusal(data)
        assert error.status == 415 and "not a PNG, JPEG, WebP or GIF image" in str(error)


def test_read_limited_never_reads_more_than_the_limit_plus_one() -> None:
    stream = CountingStream(b"x" * 1_000_000)
    with pytest.raises(UploadError) as caught:
        read_limited(stream, "image 2 ('big.png')", 100_000)
    assert caught.value.status == 413 and stream.consumed == 100_001
    assert "image 2 ('big.png')" in str(caught.value) and "100,000 bytes" in str(caught.value)
    exact = CountingStream(b"y" * 100_000)
    assert read_limited(exact, "ok", 100_000) == b"y" * 100_000


def test_pixel_limit_is_checked_from_the_header() -> None:
    error = refusal(png_header_only(5000, 5000))  # 25 MP declared, a few bytes of data
    assert error.status == 413 and "5000x5000" in str(error) and "20,000,000" in str(error)
    assert refusal(encoded("PNG", (300, 300)), UploadLimits(max_pixels=80_000)).status == 413


def test_decompression_bombs_are_413_even_above_the_apps_pixel_limit() -> None:
    generous = UploadLimits(max_pixels=10**10)  # only Pillow's own bomb checks are left
    warned = refusal(png_header_only(10_000, 10_000), generous)  # between Pillow's limit and twice it: a warning
    assert warned.status == 413 and "decompression bomb" in str(warned)
    errored = refusal(png_header_only(40_000, 40_000), generous)  # beyond twice it: Pillow's error
    assert errored.status == 413 and "decompression bomb" in str(errored)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_truncated_files_are_400(fmt: str) -> None:
    noise = Image.effect_noise((96, 96), 60).convert("RGB")
    out = io.BytesIO()
    noise.save(out, fmt)
    data = out.getvalue()
    error = refusal(data[: len(data) // 2])
    assert error.status == 400 and ("truncated or corrupt" in str(error) or "header" in str(error))


def test_a_png_with_a_bad_checksum_is_400() -> None:
    data = bytearray(encoded("PNG", (64, 64)))
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0xFF  # one byte of pixel data: the chunk's CRC no longer matches
    error = refusal(bytes(data))
    assert error.status == 400 and "corrupt" in str(error)


def test_empty_and_oversized_bytes() -> None:
    assert refusal(b"").status == 400
    error = refusal(encoded("PNG", (64, 64)), UploadLimits(max_bytes=100))
    assert error.status == 413 and "too large" in str(error)


def test_message_rules() -> None:
    limits = UploadLimits(max_images=2, max_text_chars=10)
    check_message("0123456789", 2, limits)
    check_message("", 1, limits)  # a picture alone is a message
    for text, count, needle in (("0123456789X", 0, "too long"), ("hi", 3, "too many images: 3"),
                                ("  ", 0, "empty message")):
        with pytest.raises(UploadError) as caught:
            check_message(text, count, limits)
        assert caught.value.status == 422 and needle in str(caught.value)


def test_labels_and_limits() -> None:
    assert label(2, "cat.png") == "image 2 ('cat.png')" and label(1, "") == label(1, None) == "image 1"
    assert len(label(1, "a" * 500)) < 100
    assert UploadLimits(max_bytes=1000, max_images=3).max_request_bytes == 3000 + 1024 * 1024
    with pytest.raises(ValueError, match="max_images"):
        UploadLimits(max_images=0)
