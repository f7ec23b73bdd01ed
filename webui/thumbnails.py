"""Small ``data:`` URL thumbnails of the pictures a person sent, for their own chat bubble.

The bubble shows the upload itself, as the widget does, so the picture stays beside the request
it belongs to. A ``data:`` URL keeps the upload folder's paths out of the page (gradio's own image
component would link ``/gradio_api/file=/tmp/...``) and needs no route of its own.
"""
from __future__ import annotations

import base64
import io
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageOps

SIDE = 160  # pixels: twice the bubble's 80 px, sharp on high-density screens
CACHED = 256  # thumbnails kept: the page renders every turn again on each event


def thumbnail_url(path: str) -> str:
    """A JPEG (or PNG, where the picture has transparency) of at most SIDE pixels a side, as a
    ``data:`` URL; "" when the file is gone (the janitor deleted an old upload)."""
    try:
        stat = Path(path).stat()
    except OSError:
        return ""
    return _thumbnail(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=CACHED)
def _thumbnail(path: str, mtime_ns: int, size: int) -> str:
    # mtime and size are in the key so a replaced file is not served from the cache.
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            image.thumbnail((SIDE, SIDE))
            clear = image.mode in ("RGBA", "LA", "P") and image.convert("RGBA").getextrema()[3][0] < 255
            out = io.BytesIO()
            if clear:
                image.convert("RGBA").save(out, "PNG", optimize=True)
            else:
                image.convert("RGB").save(out, "JPEG", quality=82)
    except OSError:  # checked when it was sent; unreadable now means it was removed meanwhile
        return ""
    kind = "png" if clear else "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(out.getvalue()).decode('ascii')}"
