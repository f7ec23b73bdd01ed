"""Name the dominant colours of a picture from its pixels.

Used when the demo catalog is built (no source metadata says what colour a sticker is) and at
chat time on photos people upload ("like this, but in blue"). Both uses need it fast, so the
image is shrunk to a few thousand pixels first, and both need the background ignored: stickers
carry it as transparency, product photos as a plain border (usually white), which must not make
every photo "white".

Pixels are named with gates in HSV rather than by nearest hue alone: low saturation means
black / white / grey whatever the hue, dark orange and dark red read as brown, and pale red
reads as pink. Plain hue binning calls a grey-blue shadow "blue" and a brown bear "orange".
"""

from __future__ import annotations

import numpy as np
from PIL import Image

PALETTE: tuple[str, ...] = (
    "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey",
)
ACHROMATIC = frozenset({"black", "white", "grey"})

WORK_SIZE = 64  # longest side while naming; 4k samples are plenty and keep a call near 1 ms
ALPHA_MIN = 128  # pixels at least half opaque are foreground; fainter ones are edge blur
FAINT_ALPHA_MIN = 16  # ...unless that leaves nothing: hairline drawings shrink to faint pixels
BORDER_TOLERANCE = 32.0  # RGB distance to the border colour still counted as background
BORDER_UNIFORM_SHARE = 0.6  # border is "a plain background" when this share matches its median
MIN_FOREGROUND_SHARE = 0.01  # a mask keeping less than this missed the picture
MAX_FILL_STEPS = 4 * WORK_SIZE  # bound on flood-fill steps; real background fills need far fewer

_INDEX = {name: i for i, name in enumerate(PALETTE)}


def colour_shares(image: Image.Image) -> dict[str, float]:
    """Share of foreground pixels per palette colour, largest first; empty if nothing is visible."""
    rgb = _foreground_pixels(image)
    if rgb.shape[0] == 0:
        return {}
    counts = np.bincount(_name_indices(rgb), minlength=len(PALETTE))
    total = float(counts.sum())
    # Ties are broken by palette order so the result is deterministic.
    order = sorted(range(len(PALETTE)), key=lambda i: (-counts[i], i))
    return {PALETTE[i]: float(counts[i] / total) for i in order if counts[i] > 0}


def dominant_colours(image: Image.Image, min_share: float = 0.12, max_colours: int = 3) -> list[str]:
    """The colours covering at least `min_share` of the foreground, most dominant first.

    The top colour is always returned when anything is visible, so a very busy picture (no colour
    above the threshold) still gets a name.
    """
    return dominant_from_shares(colour_shares(image), min_share, max_colours)


def dominant_from_shares(shares: dict[str, float], min_share: float = 0.12, max_colours: int = 3) -> list[str]:
    """`dominant_colours` for shares already computed (largest first, as colour_shares gives)."""
    names = [name for name, share in shares.items() if share >= min_share][:max_colours]
    if not names and shares:
        names = [next(iter(shares))]
    return names


def chromatic_share(shares: dict[str, float]) -> float:
    """Share of pixels that have a real colour (not black, white or grey)."""
    return sum(share for name, share in shares.items() if name not in ACHROMATIC)


def _foreground_pixels(image: Image.Image) -> np.ndarray:
    """N x 3 uint8 RGB of the foreground pixels of the shrunk image."""
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    small = _shrink(image)  # first: converting a full-size photo would cost more than the rest
    small = small.convert("RGBA") if small.mode != "RGBA" else small
    pixels = np.asarray(small)
    rgb, alpha = pixels[..., :3], pixels[..., 3]
    if has_alpha and (alpha < ALPHA_MIN).any():
        mask = alpha >= ALPHA_MIN
        if mask.sum() < MIN_FOREGROUND_SHARE * mask.size:
            mask = alpha >= FAINT_ALPHA_MIN
    else:
        # No transparency to go by: a photo or a drawing on an opaque background.
        mask = ~_border_background(rgb)
        if mask.sum() < MIN_FOREGROUND_SHARE * mask.size:
            mask = np.ones_like(mask)  # one plain colour all over: that colour is the answer
    return rgb[mask]


def _shrink(image: Image.Image) -> Image.Image:
    """Nearest-neighbour downscale: it samples real pixels, so edges between a black outline and a
    yellow fill do not invent a muddy third colour the way area averaging does."""
    if max(image.size) <= WORK_SIZE:
        return image
    scale = WORK_SIZE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.NEAREST)


def _border_background(rgb: np.ndarray) -> np.ndarray:
    """Mask of background pixels: those connected to the border and close to its median colour.

    Only a near-uniform border counts as a background (a studio photo on white, a drawing on a
    plain sheet); a photo whose border is a busy scene keeps every pixel. Flood filling from the
    border, rather than removing that colour everywhere, keeps a white shirt on a white background.
    """
    height, width = rgb.shape[:2]
    border = np.zeros((height, width), dtype=bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    values = rgb.astype(np.float32)
    background_colour = np.median(values[border], axis=0)
    near = np.linalg.norm(values - background_colour, axis=-1) <= BORDER_TOLERANCE
    if near[border].mean() < BORDER_UNIFORM_SHARE:
        return np.zeros((height, width), dtype=bool)
    return _flood(border & near, near)


def _flood(seed: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Grow `seed` through 4-connected `allowed` pixels (numpy dilation, no scipy needed)."""
    filled = seed
    for _ in range(MAX_FILL_STEPS):
        grown = filled.copy()
        grown[1:, :] |= filled[:-1, :]
        grown[:-1, :] |= filled[1:, :]
        grown[:, 1:] |= filled[:, :-1]
        grown[:, :-1] |= filled[:, 1:]
        grown &= allowed
        if np.array_equal(grown, filled):
            break
        filled = grown
    return filled


def _name_indices(rgb: np.ndarray) -> np.ndarray:
    """Palette index of each RGB pixel (N x 3 uint8)."""
    values = rgb.astype(np.float32) / 255.0
    high = values.max(axis=1)
    low = values.min(axis=1)
    chroma = high - low
    saturation = np.divide(chroma, high, out=np.zeros_like(chroma), where=high > 0)
    hue = _hue_degrees(values, high, chroma)

    names = np.full(values.shape[0], _INDEX["grey"], dtype=np.int64)
    # Chromatic pixels by hue first; the gates below overwrite them where they do not apply.
    names[(hue < 13) | (hue >= 345)] = _INDEX["red"]
    names[(hue >= 13) & (hue < 40)] = _INDEX["orange"]
    names[(hue >= 40) & (hue < 70)] = _INDEX["yellow"]
    names[(hue >= 70) & (hue < 165)] = _INDEX["green"]
    names[(hue >= 165) & (hue < 255)] = _INDEX["blue"]
    names[(hue >= 255) & (hue < 290)] = _INDEX["purple"]
    names[(hue >= 290) & (hue < 345)] = _INDEX["pink"]
    # Magenta that is dark reads as purple (plum, aubergine), not pink.
    names[(hue >= 290) & (hue < 330) & (high < 0.65)] = _INDEX["purple"]
    # Pale red is pink (rose, salmon-pink); saturated red stays red.
    reddish = (hue < 13) | (hue >= 345)
    names[reddish & (saturation < 0.5) & (high > 0.75)] = _INDEX["pink"]
    # Brown: dark or muted orange, dull or very dark red, dark yellow with an orange lean.
    orangeish = (hue >= 13) & (hue < 40)
    # Tan leather and beige are muted orange: the less saturated, the brighter it may be.
    muted = ((saturation < 0.6) & (high < 0.8)) | ((saturation < 0.45) & (high < 0.85))
    brown = orangeish & ((high < 0.65) | muted)
    # Reddish brown (wood, chestnut) is darker and duller than any red people call red.
    brown |= reddish & ((high < 0.40) | ((high < 0.65) & (saturation < 0.75)))
    brown |= (hue >= 40) & (hue < 55) & (high < 0.55)
    names[brown] = _INDEX["brown"]
    # Dark yellow with a green lean is olive: green.
    names[(hue >= 55) & (hue < 70) & (high < 0.55)] = _INDEX["green"]
    # Too little colour to have a hue: black, grey or white by brightness.
    achromatic = (chroma < 0.10) | (saturation < 0.18)
    names[achromatic] = _INDEX["grey"]
    names[achromatic & (high >= 0.85)] = _INDEX["white"]
    # Dark grey up to ~#5c5c5c is what people call black (a bomb, a tyre, a top hat).
    names[achromatic & (high < 0.36)] = _INDEX["black"]
    names[high < 0.18] = _INDEX["black"]
    return names


def _hue_degrees(values: np.ndarray, high: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """HSV hue in degrees [0, 360) of N x 3 RGB floats; 0 where there is no chroma."""
    red, green, blue = values[:, 0], values[:, 1], values[:, 2]
    safe = np.where(chroma > 0, chroma, 1.0)
    hue = np.where(
        high == red,
        ((green - blue) / safe) % 6.0,
        np.where(high == green, (blue - red) / safe + 2.0, (red - green) / safe + 4.0),
    )
    return np.where(chroma > 0, hue * 60.0, 0.0)
