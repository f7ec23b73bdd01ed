"""load_image: every way an image can be bad gives ImageLoadError naming the file and the cause;
transparency always ends up on white."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retrieval.images import ImageLoadError, image_fingerprint, load_image


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, followed by junk instead of pixel data:
    anything that tried to decode it would fail with a different error."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"junk") + chunk(b"IEND", b"")
    )


def noise(size=(64, 64), seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8))


# -- errors ------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path):
    path = tmp_path / "missing.png"
    with pytest.raises(ImageLoadError, match=r"missing\.png.*not found"):
        load_image(path)


def test_text_file_named_png(tmp_path: Path):
    path = tmp_path / "readme.png"
    path.write_text("this is not a picture")
    with pytest.raises(ImageLoadError, match=r"readme\.png.*not an image"):
        load_image(path)


def test_empty_file(tmp_path: Path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageLoadError, match=r"empty\.jpg.*empty"):
        load_image(path)


def test_directory(tmp_path: Path):
    with pytest.raises(ImageLoadError, match="not a regular file"):
        load_image(tmp_path)


def test_truncated_png_bytes():
    data = encode(noise((128, 128)))
    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


def test_truncated_jpeg_file(tmp_path: Path):
    path = tmp_path / "cut.jpg"
    data = encode(noise((128, 128)), "JPEG")
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageLoadError, match=r"cut\.jpg.*truncated or corrupt"):
        load_image(path)


def test_garbage_and_empty_bytes():
    with pytest.raises(ImageLoadError, match="not an image"):
        load_image(b"GIF? no, just bytes")
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(b"")


@pytest.mark.parametrize("side", [5_000, 20_000])  # below and above PIL's own hard limit
def test_bomb_refused_from_the_header(tmp_path: Path, side: int):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(side, side))
    with pytest.raises(ImageLoadError, match=r"bomb\.png.*too many pixels"):
        load_image(path, max_pixels=1_000_000)


def test_bomb_message_gives_the_size():
    with pytest.raises(ImageLoadError, match=r"5000x4000 = 20,000,000 > max_pixels 1,000,000"):
        load_image(png_header_only(5_000, 4_000), max_pixels=1_000_000)


def test_pil_bomb_warning_is_an_error_even_with_a_high_max_pixels():
    # above PIL's own MAX_IMAGE_PIXELS, PIL only warns; that must not let the image through
    declared = int((Image.MAX_IMAGE_PIXELS or 89_478_485) * 1.2) // 10_000 + 1
    with pytest.raises(ImageLoadError, match="too many pixels"):
        load_image(png_header_only(10_000, declared), max_pixels=10**12)


def test_max_pixels_applies_to_pil_images_and_bytes():
    image = Image.new("RGB", (200, 200))
    with pytest.raises(ImageLoadError, match="too many pixels"):
        load_image(image, max_pixels=39_999)
    with pytest.raises(ImageLoadError, match="too many pixels"):
        load_image(encode(image), max_pixels=39_999)
    assert load_image(image, max_pixels=40_000).size == (200, 200)


def test_zero_size_image():
    with pytest.raises(ImageLoadError, match="zero-size"):
        load_image(Image.new("RGB", (0, 5)))


def test_url_is_not_fetched():
    with pytest.raises(ImageLoadError, match="URL"):
        load_image("https://example.com/cat.png")


def test_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="int"):
        load_image(42)  # type: ignore[arg-type]


def test_error_is_a_value_error():
    assert issubclass(ImageLoadError, ValueError)


# -- what comes back ---------------------------------------------------------------------------


def test_path_bytes_and_pil_give_the_same_rgb(tmp_path: Path):
    image = noise()
    path = tmp_path / "noise.png"
    image.save(path)
    loaded = [
        load_image(path),
        load_image(str(path)),
        load_image(path.read_bytes()),
        load_image(image),
    ]
    for out in loaded:
        assert out.mode == "RGB" and out.size == (64, 64)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(image))


def test_result_outlives_the_file(tmp_path: Path):
    path = tmp_path / "gone.png"
    noise().save(path)
    image = load_image(path)
    path.unlink()
    assert np.asarray(image).shape == (64, 64, 3)


def test_transparent_pixels_become_white():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)  # transparent BLACK everywhere
    rgba[0, 0] = (255, 0, 0, 255)  # one opaque red pixel
    rgba[0, 1] = (0, 0, 255, 128)  # one half-transparent blue pixel
    out = np.asarray(load_image(encode(Image.fromarray(rgba, "RGBA"))))
    assert tuple(out[3, 3]) == (255, 255, 255)
    assert tuple(out[0, 0]) == (255, 0, 0)
    r, g, b = (int(c) for c in out[0, 1])
    assert abs(r - 127) <= 1 and abs(g - 127) <= 1 and b == 255


def test_grey_with_alpha_and_palette_transparency_become_white():
    la = Image.new("LA", (3, 3), (0, 0))
    assert tuple(np.asarray(load_image(la))[1, 1]) == (255, 255, 255)

    palette = Image.new("P", (3, 3), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.putpixel((0, 0), 1)
    data = encode(palette, "PNG", transparency=0)
    out = np.asarray(load_image(data))
    assert tuple(out[2, 2]) == (255, 255, 255) and tuple(out[0, 0]) == (255, 0, 0)


def test_sixteen_bit_grey_keeps_its_brightness():
    arr = np.full((4, 4), 32768, dtype=np.uint16)  # mid grey in 16 bits
    data = encode(Image.fromarray(arr))
    value = int(np.asarray(load_image(data))[0, 0, 0])
    assert 120 <= value <= 135


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    data = encode(Image.new("RGB", (40, 20), "white"), "JPEG", exif=exif)
    assert load_image(data).size == (20, 40)


def test_animated_gif_gives_the_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    out = np.asarray(load_image(buf.getvalue()))
    assert out[0, 0, 0] > 200 and out[0, 0, 2] < 50


# -- fingerprint -------------------------------------------------------------------------------


def test_fingerprint_is_sha1_of_the_bytes(tmp_path: Path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    noise(seed=1).save(a)
    noise(seed=2).save(b)
    assert image_fingerprint(a) == hashlib.sha1(a.read_bytes()).hexdigest()
    assert image_fingerprint(str(a)) == image_fingerprint(a)
    assert image_fingerprint(a) != image_fingerprint(b)


def test_fingerprint_of_missing_file(tmp_path: Path):
    with pytest.raises(ImageLoadError, match="not found"):
        image_fingerprint(tmp_path / "nothing.png")
