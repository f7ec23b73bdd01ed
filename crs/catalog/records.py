"""Rows as read from a catalog file, the validated item records made from them, and row errors."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import UserError
from .schema import AttributeSpec, CatalogSchema, normalise_value

AttributeValue = str | list[str] | float
_ITEM_KEYS = {"id", "title", "description", "image", "source", "license", "attributes", "extra"}
MAX_ERRORS_SHOWN = 20


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: field '{self.field}': {self.message}"


class IngestError(UserError):
    """The ingest was refused; nothing was written. `errors` has one entry per bad field."""

    def __init__(self, errors: list[RowError], note: str = "") -> None:
        self.errors = errors
        shown = "\n".join(f"  {e}" for e in errors[:MAX_ERRORS_SHOWN])
        more = f"\n  ... and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
        tail = f"\n{note}" if note else ""
        super().__init__(f"{len(errors)} problem(s), nothing was written:\n{shown}{more}{tail}")


@dataclass(frozen=True)
class RawRow:
    """One row of a source file, already shaped like a JSONL item (see docs/catalog-format.md)."""

    file: str
    line: int
    data: dict[str, Any]


@dataclass
class ItemRecord:
    external_id: str
    title: str
    description: str = ""
    image_ref: str = ""
    source: str = ""
    license: str = ""
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    extra: dict[str, Any] | None = None
    file: str = ""
    line: int = 0

    def content_hash(self, salt: str = "") -> str:
        body = [self.external_id, self.title, self.description, self.image_ref, self.source, self.license,
                self.attributes, self.extra, salt]
        return hashlib.sha1(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def kind_of(value: Any) -> str | None:
    """The attribute kind a raw JSON value implies, for schema inference."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return "numeric"
    if isinstance(value, list):
        return "tags"
    if isinstance(value, str):
        return "categorical"
    return None


def parse_row(raw: RawRow, schema: CatalogSchema) -> tuple[ItemRecord | None, list[RowError]]:
    """Validate one row against the schema; returns the record or the errors (never both)."""
    errors: list[RowError] = []

    def bad(name: str, message: str) -> None:
        errors.append(RowError(raw.file, raw.line, name, message))

    data = raw.data
    for name, value in data.items():
        if _has_nul(name) or _has_nul(value):  # JSON can spell one (\u0000); no title or value needs it
            bad(repr(name)[1:-1], "contains a NUL character (\\u0000); remove it")
    if errors:
        return None, errors
    unknown = set(data) - _ITEM_KEYS
    if unknown:
        bad(sorted(unknown)[0], f"unknown field(s) {sorted(unknown)}; allowed: {sorted(_ITEM_KEYS)}")
    item_id = data.get("id")
    if isinstance(item_id, (int, float)) and not isinstance(item_id, bool):
        item_id = str(item_id)
    if not isinstance(item_id, str) or not item_id.strip():
        bad("id", f"required, a non-empty string (got {item_id!r})")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        bad("title", f"required, a non-empty string (got {title!r})")
    texts = {}
    for name in ("description", "image", "source", "license"):
        value = data.get(name) or ""
        if not isinstance(value, str):
            bad(name, f"must be a string (got {type(value).__name__})")
            value = ""
        texts[name] = value.strip()
    extra = data.get("extra")
    if extra is not None and not isinstance(extra, dict):
        bad("extra", "must be an object")
    attributes: dict[str, AttributeValue] = {}
    raw_attributes = data.get("attributes") or {}
    if not isinstance(raw_attributes, dict):
        bad("attributes", f"must be an object of name -> value (got {type(raw_attributes).__name__})")
        raw_attributes = {}
    for name, value in raw_attributes.items():
        spec = schema.get(name)
        if spec is None:
            bad(f"attributes.{name}", f"attribute is not declared in the schema (declared: {[a.name for a in schema.attributes]})")
            continue
        parsed, message = parse_value(spec, value)
        if message:
            bad(f"attributes.{name}", message)
        elif parsed is not None:
            attributes[name] = parsed
    if errors:
        return None, errors
    return ItemRecord(
        external_id=str(item_id).strip(), title=" ".join(str(title).split()), description=texts["description"],
        image_ref=texts["image"], source=texts["source"], license=texts["license"], attributes=attributes,
        extra=extra, file=raw.file, line=raw.line,
    ), []


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


def parse_value(spec: AttributeSpec, value: Any) -> tuple[AttributeValue | None, str]:
    """Normalise one attribute value for its declared kind: (value or None if empty, error message)."""
    if value is None or value == "" or value == []:
        return None, ""
    if spec.kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                value = float(str(value).replace(",", "").strip().lstrip("$€£"))
            except ValueError:
                return None, f"numeric attribute, got {value!r}"
        if not math.isfinite(value):
            return None, f"numeric attribute must be finite, got {value!r}"
        return float(value), ""
    if spec.kind == "categorical":
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            return None, f"categorical attribute takes one string value, got {type(value).__name__} {value!r}"
        values = [normalise_value(str(value))]
    else:
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in items):
            return None, f"tags attribute takes a list of strings, got {value!r}"
        values = list(dict.fromkeys(normalise_value(str(v)) for v in items if str(v).strip()))
    if spec.values is not None:
        outside = [v for v in values if v not in spec.values]
        if outside:
            return None, f"value(s) {outside} not in the declared vocabulary {list(spec.values)}"
    if not values:
        return None, ""
    return (values[0] if spec.kind == "categorical" else values), ""
