"""Pictures as chat models take them: a PNG data URL in an ``image_url`` content block.

Shared by the LLM image reader and the LLM simulated user, which must not import the reader
(it is part of the system's understanding; see the import contracts in pyproject.toml).
"""
from __future__ import annotations

import base64
import io

from PIL import Image

MAX_SIDE = 768  # pixels; larger pictures cost tokens and upload time without telling a model more


def data_url(image: Image.Image) -> str:
    """The picture as a PNG data URL, shrunk to at most MAX_SIDE pixels a side."""
    image = image.convert("RGB")
    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
