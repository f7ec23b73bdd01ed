"""Amazon Reviews 2023 item metadata (`meta_*.jsonl`) mapped onto catalog items.

Field reference: the dataset's README (parent_asin, title, main_category, features, description,
categories, price, store, average_rating, rating_number, details, images). Both the raw files'
list-of-dicts `images` and the Hugging Face dict-of-lists layout are accepted.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .formats import read_jsonl
from .records import RawRow, RowError
from .schema import AttributeSpec, CatalogSchema

SCHEMA = CatalogSchema(
    name="amazon2023",
    title="Amazon Reviews 2023 items",
    attributes=[
        AttributeSpec("main_category", "categorical", "Top-level Amazon category"),
        AttributeSpec("categories", "tags", "Category path"),
        AttributeSpec("store", "categorical", "Seller or brand store", askable=False),
        AttributeSpec("brand", "categorical"),
        AttributeSpec("colour", "tags"),
        AttributeSpec("material", "categorical"),
        AttributeSpec("size", "categorical"),
        AttributeSpec("style", "categorical"),
        AttributeSpec("price", "numeric", "Price in US dollars"),
        AttributeSpec("average_rating", "numeric", askable=False),
        AttributeSpec("rating_number", "numeric", "Number of ratings", askable=False),
    ],
)
# details keys (lower-cased) -> attribute
_DETAILS = {"brand": "brand", "color": "colour", "colour": "colour", "material": "material", "size": "size",
            "style": "style"}
_NULLS = (None, "", "None", "null", [], {})


def read_amazon2023(path: Path) -> Iterator[RawRow | RowError]:
    for row in read_jsonl(path):
        if isinstance(row, RowError):
            yield row
            continue
        try:
            yield RawRow(row.file, row.line, _to_item(row.data))
        except _FieldError as exc:
            yield RowError(row.file, row.line, exc.field, exc.message)


class _FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message


def _to_item(meta: dict[str, Any]) -> dict[str, Any]:
    item_id = meta.get("parent_asin") or meta.get("asin")
    if not isinstance(item_id, str) or not item_id.strip():
        raise _FieldError("parent_asin", f"required, a non-empty string (got {item_id!r})")
    attributes: dict[str, Any] = {}
    for name in ("main_category", "store"):
        if meta.get(name) not in _NULLS:
            attributes[name] = _text(meta[name], name)
    categories = _text_list(meta.get("categories"), "categories")
    if categories:
        attributes["categories"] = categories
    for name in ("price", "average_rating", "rating_number"):
        if meta.get(name) not in _NULLS:
            attributes[name] = _number(meta[name], name)
    for key, value in _details(meta.get("details")).items():
        name = _DETAILS.get(key.strip().lower())
        if name and value not in _NULLS and name not in attributes:
            attributes[name] = [str(value)] if name == "colour" else str(value)
    description = " ".join(_text_list(meta.get("description"), "description"))
    features = _text_list(meta.get("features"), "features")
    if features:
        description = (description + " Features: " + "; ".join(features)).strip()
    images = _image_urls(meta.get("images"))
    return {
        "id": item_id.strip(),
        "title": meta.get("title"),
        "description": description,
        "image": images[0] if images else "",
        "source": "amazon-reviews-2023",
        "attributes": attributes,
        "extra": {"images": images[1:6]} if len(images) > 1 else None,
    }


def _text(value: Any, field: str) -> str:
    if not isinstance(value, (str, int, float)):
        raise _FieldError(field, f"expected a string, got {type(value).__name__}")
    return str(value)


def _text_list(value: Any, field: str) -> list[str]:
    if value in _NULLS:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _FieldError(field, f"expected a list of strings, got {value!r:.80}")
    return [v.strip() for v in value if v.strip()]


def _number(value: Any, field: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().lstrip("$").replace(",", "")
    try:
        return float(text.split("-")[0].strip())  # "12.99 - 19.99" -> the lower bound
    except ValueError:
        raise _FieldError(field, f"expected a number, got {value!r}") from None


def _details(value: Any) -> dict[str, Any]:
    if value in _NULLS:
        return {}
    if isinstance(value, str):  # the Hugging Face copy stores details as a JSON string
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _FieldError("details", "a string that is not a JSON object") from None
    if not isinstance(value, dict):
        raise _FieldError("details", f"expected an object, got {type(value).__name__}")
    return value


def _image_urls(value: Any) -> list[str]:
    """Image URLs, the MAIN variant first, each at the best resolution given."""
    if value in _NULLS:
        return []
    if isinstance(value, dict):  # dict of lists -> list of dicts
        keys = list(value)
        length = max((len(v) for v in value.values() if isinstance(v, list)), default=0)
        value = [{k: (value[k][i] if isinstance(value[k], list) and i < len(value[k]) else None) for k in keys}
                 for i in range(length)]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _FieldError("images", "expected a list of {thumb, large, hi_res, variant} objects")
    ordered = sorted(value, key=lambda image: image.get("variant") != "MAIN")
    urls = [image.get("hi_res") or image.get("large") or image.get("thumb") for image in ordered]
    return [u for u in urls if isinstance(u, str) and u.startswith(("http://", "https://"))]
