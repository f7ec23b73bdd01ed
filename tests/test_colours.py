"""Colour naming from pixels, on synthetic pictures whose answer is known."""

from __future__ import annotations

import time

import pytest
from PIL import Image, ImageDraw

from crs.catalog.colours import PALETTE, chromatic_share, colour_shares, dominant_colours, dominant_from_shares


def _transparent(size: int = 200) -> Image.Image:
    return Image.new("RGBA", (size, size), (0, 0, 0, 0))


def test_red_disc_on_transparent_is_red() -> None:
    image = _transparent()
    ImageDraw.Draw(image).ellipse((20, 20, 180, 180), fill=(220, 30, 30, 255))
    assert dominant_colours(image) == ["red"]


def test_blue_shirt_on_white_photo_background_is_blue_not_white() -> None:
    image = Image.new("RGB", (240, 240), (252, 252, 250))  # a product shot: no alpha, white sweep
    draw = ImageDraw.Draw(image)
    draw.polygon([(60, 40), (100, 30), (140, 30), (180, 40), (220, 90), (185, 115), (170, 100),
                  (170, 215), (70, 215), (70, 100), (55, 115), (20, 90)], fill=(30, 70, 200))
    draw.line([(100, 30), (120, 55), (140, 30)], fill=(250, 250, 250), width=4)  # white collar
    colours = dominant_colours(image)
    assert colours[0] == "blue"
    assert "white" not in colours


def test_white_shirt_on_white_background_is_still_white() -> None:
    """Only background connected to the border is removed, not the same colour inside."""
    image = Image.new("RGB", (200, 200), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((50, 50, 150, 150), fill=(245, 245, 245), outline=(20, 20, 20), width=3)
    assert dominant_colours(image)[0] == "white"


def test_black_outline_drawing_is_black() -> None:
    image = _transparent()
    draw = ImageDraw.Draw(image)
    draw.ellipse((30, 30, 170, 170), outline=(0, 0, 0, 255), width=4)
    draw.line([(60, 100), (140, 100)], fill=(10, 10, 10, 255), width=4)
    assert dominant_colours(image) == ["black"]
    assert chromatic_share(colour_shares(image)) == 0.0


def test_hairline_drawing_shrunk_to_faint_pixels_still_has_a_colour() -> None:
    image = _transparent(128)
    ImageDraw.Draw(image).ellipse((10, 10, 118, 118), outline=(0, 0, 0, 90), width=2)
    assert dominant_colours(image) == ["black"]


@pytest.mark.parametrize("rgb", [(139, 69, 19), (150, 80, 20), (110, 60, 40), (120, 55, 45), (197, 134, 90)])
def test_dark_orange_dark_red_and_tan_are_brown(rgb: tuple[int, int, int]) -> None:
    image = _transparent(64)
    ImageDraw.Draw(image).rectangle((8, 8, 56, 56), fill=(*rgb, 255))
    assert dominant_colours(image) == ["brown"]


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((255, 140, 0), "orange"), ((255, 204, 77), "yellow"), ((40, 160, 60), "green"),
        ((0, 0, 128), "blue"), ((120, 60, 180), "purple"), ((255, 182, 193), "pink"),
        ((255, 20, 147), "pink"), ((200, 20, 30), "red"), ((128, 128, 128), "grey"),
        ((60, 60, 60), "black"), ((250, 250, 245), "white"),
    ],
)
def test_plain_colours_are_named(rgb: tuple[int, int, int], name: str) -> None:
    image = Image.new("RGB", (32, 32), rgb)  # one colour all over: nothing is background
    assert dominant_colours(image) == [name]


def test_fully_transparent_image_has_no_colours() -> None:
    assert colour_shares(_transparent()) == {}
    assert dominant_colours(_transparent()) == []


def test_shares_sum_to_one_and_use_the_palette() -> None:
    image = _transparent()
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 119, 199), fill=(30, 70, 200, 255))
    draw.rectangle((120, 0, 199, 199), fill=(255, 210, 0, 255))
    shares = colour_shares(image)
    assert set(shares) <= set(PALETTE)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert dominant_colours(image) == ["blue", "yellow"]  # most dominant first


def test_dominant_respects_min_share_and_max_colours() -> None:
    shares = {"blue": 0.5, "red": 0.3, "green": 0.15, "white": 0.05}
    assert dominant_from_shares(shares, min_share=0.12, max_colours=2) == ["blue", "red"]
    assert dominant_from_shares({"red": 0.09, "blue": 0.08}, min_share=0.12) == ["red"]


def test_naming_a_large_photo_takes_a_few_milliseconds() -> None:
    image = Image.new("RGB", (2000, 1500), (250, 250, 250))
    ImageDraw.Draw(image).ellipse((400, 300, 1600, 1200), fill=(200, 40, 40))
    colour_shares(image)  # warm up numpy
    started = time.perf_counter()
    for _ in range(5):
        colour_shares(image)
    assert (time.perf_counter() - started) / 5 < 0.05
