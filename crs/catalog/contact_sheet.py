"""A contact sheet of catalog thumbnails labelled with their computed colours and style.

For checking by eye that the colour names computed from pixels match the pictures (no metadata
says what colour a sticker is, so there is nothing else to check them against).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

CELL = 128  # thumbnail area; thumbnails are at most this size
LABEL_HEIGHT = 26  # two lines of PIL's default bitmap font
PADDING = 6
COLUMNS = 8
BACKGROUND = (216, 216, 216)  # light grey: white and black stickers both stay visible
TEXT = (20, 20, 20)


def write_contact_sheet(
    items: Sequence[dict], images_dir: Path, out_path: Path, n: int = 48, seed: int = 0
) -> Path:
    """Write a grid of `n` random items (stratified over `attributes.set`) to `out_path` (PNG).

    `items` are catalog.jsonl objects; each `image` is read relative to `images_dir`'s parent
    when it starts with "images/", else as a path under `images_dir`.
    """
    chosen = stratified_sample(items, n, seed)
    rows = (len(chosen) + COLUMNS - 1) // COLUMNS
    width = COLUMNS * (CELL + PADDING) + PADDING
    height = rows * (CELL + LABEL_HEIGHT + PADDING) + PADDING
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for index, item in enumerate(chosen):
        left = PADDING + (index % COLUMNS) * (CELL + PADDING)
        top = PADDING + (index // COLUMNS) * (CELL + LABEL_HEIGHT + PADDING)
        with Image.open(images_dir / Path(item["image"]).name) as opened:
            thumbnail = opened.convert("RGBA")
        offset = (left + (CELL - thumbnail.width) // 2, top + (CELL - thumbnail.height) // 2)
        sheet.paste(thumbnail, offset, thumbnail)
        attributes = item["attributes"]
        colours = ",".join(attributes.get("colour", [])) or "-"
        label = f"{colours}\n{attributes.get('style', '')} {item['title'][:14]}"
        draw.multiline_text((left, top + CELL + 1), label, fill=TEXT, font=font, spacing=1)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # An adaptive palette keeps the PNG small enough to commit; thumbnails stay recognisable.
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out_path, optimize=True)
    return out_path


def stratified_sample(items: Sequence[dict], n: int, seed: int = 0) -> list[dict]:
    """`n` items spread evenly over sets (round robin over shuffled per-set lists)."""
    by_set: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        by_set[item["attributes"].get("set", "")].append(item)
    rng = random.Random(seed)
    pools = []
    for name in sorted(by_set):
        pool = list(by_set[name])
        rng.shuffle(pool)
        pools.append(pool)
    chosen: list[dict] = []
    while len(chosen) < n and any(pools):
        for pool in pools:
            if pool and len(chosen) < n:
                chosen.append(pool.pop())
    return chosen
