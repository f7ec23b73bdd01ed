"""The attribute schema a catalog declares: which attributes exist, their kind and vocabulary."""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import UserError

Kind = Literal["categorical", "tags", "numeric"]
KINDS: tuple[Kind, ...] = ("categorical", "tags", "numeric")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SPEC_KEYS = {"name", "kind", "description", "askable", "values", "order", "label", "display"}
_SCHEMA_KEYS = {"name", "title", "attributes"}


class SchemaError(UserError, ValueError):
    """A schema file or an attribute declaration is invalid; the message names the file and key."""


@dataclass(frozen=True)
class AttributeSpec:
    name: str
    kind: Kind
    description: str = ""
    askable: bool = True
    values: tuple[str, ...] | None = None  # closed vocabulary; None = any value
    order: tuple[str, ...] | None = None  # categorical values from low to high, for relative critiques
    label: str | None = None  # what people call the attribute ("MPAA rating"); None = from the name
    # Display names of (normalised) values, as (value, name) pairs: ("united states", "United States").
    # Pairs, not a dict, so the spec stays hashable. Values without one are shown as stored.
    display: tuple[tuple[str, str], ...] | None = None

    @property
    def display_label(self) -> str:
        """The attribute's label for people: `label`, else the name with spaces ("mpaa rating")."""
        return self.label or self.name.replace("_", " ")

    def display_value(self, value: str) -> str:
        """A value's display name, else the value as stored."""
        return dict(self.display or ()).get(value, value)


@dataclass
class CatalogSchema:
    name: str = ""
    title: str = ""
    attributes: list[AttributeSpec] = field(default_factory=list)

    def get(self, name: str) -> AttributeSpec | None:
        return next((a for a in self.attributes if a.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "attributes": [_spec_json(a) for a in self.attributes],
        }


def _spec_json(spec: AttributeSpec) -> dict[str, Any]:
    # Keys left at None are left out, so a schema without labels serialises as it always did.
    data = {k: v for k, v in asdict(spec).items() if v is not None}
    if spec.display is not None:
        data["display"] = dict(spec.display)
    return data


def normalise_name(raw: str) -> str:
    """Attribute names are lower-case identifiers: 'Main Category' -> 'main_category'."""
    return re.sub(r"[^a-z0-9]+", "_", raw.strip().lower()).strip("_")


def normalise_value(raw: str) -> str:
    return " ".join(raw.split()).lower()


def _check_object(data: Any, allowed: set[str], where: str, what: str) -> None:
    """Unknown keys are errors, not silently ignored: a typo like 'kinds' must not pass."""
    if not isinstance(data, dict):
        raise SchemaError(f"{where}: {what} must be a JSON object, got {type(data).__name__}")
    unknown = set(data) - allowed
    if unknown:
        raise SchemaError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def parse_spec(data: Any, where: str) -> AttributeSpec:
    _check_object(data, _SPEC_KEYS, where, "an attribute")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise SchemaError(f"{where}: 'name' must be a lower-case identifier like 'main_category', got {name!r}")
    kind = data.get("kind")
    if kind not in KINDS:
        raise SchemaError(f"{where} ({name}): 'kind' must be one of {list(KINDS)}, got {kind!r}")
    values = _value_list(data.get("values"), f"{where} ({name}).values")
    order = _value_list(data.get("order"), f"{where} ({name}).order")
    if order is not None and kind != "categorical":
        raise SchemaError(f"{where} ({name}): 'order' applies to categorical attributes only")
    if order is not None and values is not None and set(order) - set(values):
        raise SchemaError(f"{where} ({name}): 'order' has values not in 'values': {sorted(set(order) - set(values))}")
    askable = data.get("askable", True)
    if not isinstance(askable, bool):
        raise SchemaError(f"{where} ({name}): 'askable' must be true or false")
    label = data.get("label")
    if label is not None and (not isinstance(label, str) or not label.strip()):
        raise SchemaError(f"{where} ({name}): 'label' must be a non-empty string, got {label!r}")
    display = _display_map(data.get("display"), values, f"{where} ({name}).display")
    return AttributeSpec(name, kind, str(data.get("description", "")), askable, values, order,
                         " ".join(label.split()) if label is not None else None, display)


def _display_map(raw: Any, values: tuple[str, ...] | None, where: str) -> tuple[tuple[str, str], ...] | None:
    """`display`: an object of value -> display name; keys are normalised like the values themselves."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and k.strip() and isinstance(v, str) and v.strip()
                                            for k, v in raw.items()):
        raise SchemaError(f"{where}: must be an object of value -> display name (non-empty strings), "
                          'e.g. {"united states": "United States"}')
    pairs = {normalise_value(k): " ".join(v.split()) for k, v in raw.items()}
    if len(pairs) != len(raw):
        raise SchemaError(f"{where}: two keys name the same value once lower-cased")
    if values is not None and set(pairs) - set(values):
        raise SchemaError(f"{where}: names values not in 'values': {sorted(set(pairs) - set(values))}")
    return tuple(sorted(pairs.items()))


def _value_list(raw: Any, where: str) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(v, str) and v.strip() for v in raw):
        raise SchemaError(f"{where}: must be a list of non-empty strings")
    return tuple(normalise_value(v) for v in raw)


def parse_schema(data: Any, where: str) -> CatalogSchema:
    _check_object(data, _SCHEMA_KEYS, where, "the schema")
    specs = data.get("attributes", [])
    if not isinstance(specs, list):
        raise SchemaError(f"{where}: 'attributes' must be a list")
    attributes = [parse_spec(spec, f"{where}: attributes[{i}]") for i, spec in enumerate(specs)]
    names = [a.name for a in attributes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SchemaError(f"{where}: attribute(s) declared twice: {duplicates}")
    return CatalogSchema(str(data.get("name", "")), str(data.get("title", "")), attributes)


def load_schema(path: Path) -> CatalogSchema:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot read the schema file: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}: line {exc.lineno}: not valid JSON: {exc.msg}") from exc
    return parse_schema(data, str(path))
