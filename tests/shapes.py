"""A small generated catalog of coloured shapes, for search and dialogue tests.

Every item is one shape (circle, square, triangle, star) in one colour, drawn flat or as an
outline, with a price: enough structure that filters, image queries and critiques have a
single right answer, yet small enough to encode in a second.
"""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "star")
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 170, 60)}
STYLES = ("flat", "outline")

SCHEMA = {
    "name": "shapes",
    "title": "Coloured shapes",
    "attributes": [
        {"name": "shape", "kind": "categorical", "values": list(SHAPES)},
        {"name": "colour", "kind": "tags", "values": list(COLOURS)},
        {"name": "style", "kind": "categorical", "values": list(STYLES), "order": ["outline", "flat"]},
        {"name": "price", "kind": "numeric"},
        {"name": "tags", "kind": "tags", "askable": False},
    ],
}


def _draw(shape: str, rgb: tuple[int, int, int], style: str) -> Image.Image:
    image = Image.new("RGB", (96, 96), "white")
    draw = ImageDraw.Draw(image)
    fill, outline, width = (rgb, rgb, 1) if style == "flat" else (None, rgb, 6)
    box = (14, 14, 82, 82)
    if shape == "circle":
        draw.ellipse(box, fill=fill, outline=outline, width=width)
    elif shape == "square":
        draw.rectangle(box, fill=fill, outline=outline, width=width)
    elif shape == "triangle":
        draw.polygon([(48, 10), (86, 84), (10, 84)], fill=fill, outline=outline, width=width)
    else:
        points = [(48, 8), (58, 36), (88, 36), (64, 54), (74, 86), (48, 66), (22, 86), (32, 54), (8, 36), (38, 36)]
        draw.polygon(points, fill=fill, outline=outline, width=width)
    return image


def write_shapes_catalog(folder: Path) -> Path:
    """Write items.jsonl, schema.json and images/ under ``folder``; returns the JSONL path."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for s, shape in enumerate(SHAPES):
        for c, (colour, rgb) in enumerate(COLOURS.items()):
            for t, style in enumerate(STYLES):
                item_id = f"{colour}-{shape}-{style}"
                _draw(shape, rgb, style).save(folder / "images" / f"{item_id}.png")
                rows.append({
                    "id": item_id,
                    "title": f"{colour.title()} {shape}" + (" outline" if style == "outline" else ""),
                    "description": f"A {style} {colour} {shape} sticker.",
                    "image": f"images/{item_id}.png",
                    "attributes": {"shape": shape, "colour": [colour], "style": style,
                                   "price": float(1 + s * 6 + c * 2 + t), "tags": [shape, colour]},
                })
    (folder / "schema.json").write_text(json.dumps(SCHEMA, indent=1))
    path = folder / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
