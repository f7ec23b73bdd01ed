"""Attribute filters ("colour=blue", "added_in>=2015") checked against the catalog's schema and
turned into the set of item ids the index may return (pre-filtering: never post-hoc)."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select

from .catalog.schema import normalise_value
from .errors import UserError
from .store import Store
from .store.models import Attribute, Catalog, Item, ItemValue

# Longest operators first, so "a<=1" is not read as "a<" "=1".
_OPERATOR = re.compile(r"^\s*([^<>=!]+?)\s*(<=|>=|!=|=|<|>)\s*(.*?)\s*$")
NUMERIC_OPS = ("<", "<=", ">", ">=")


class FilterError(UserError, ValueError):
    """A filter names an unknown attribute or value, or compares the wrong kind of value."""


@dataclass(frozen=True)
class Condition:
    attribute: str
    op: str  # "=", "!=", "<", "<=", ">", ">="
    value: str | float

    def __str__(self) -> str:
        value = f"{self.value:g}" if isinstance(self.value, float) else self.value
        return f"{self.attribute}{self.op}{value}"


def parse_where(where: Iterable[str] | Mapping[str, Any] | None) -> list[Condition]:
    """Conditions from ``["colour=blue", "added_in>=2015"]`` or ``{"colour": "blue"}``.

    A mapping means equality; a list value in a mapping means every value (tags: all of them).
    Values are compared as the catalog stores them: lower-case, single spaces.
    """
    if not where:
        return []
    if isinstance(where, Mapping):
        pairs = [(str(k), "=", v) for k, vs in where.items() for v in (vs if isinstance(vs, list) else [vs])]
    else:
        pairs = []
        for expression in where:
            match = _OPERATOR.match(str(expression))
            if not match or not match.group(3):
                raise FilterError(f"cannot read filter {expression!r}: write attribute=value "
                                  "(or !=, <, <=, >, >= for numbers), e.g. colour=blue")
            pairs.append((match.group(1), match.group(2), match.group(3)))
    out = []
    for name, op, value in pairs:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append(Condition(name.strip(), op, float(value)))
        else:  # numbers in text stay text here: only the attribute's kind says what the value must be
            out.append(Condition(name.strip(), op, normalise_value(str(value))))
    return out


def allowed_item_ids(store: Store, catalog: Catalog, conditions: list[Condition]) -> np.ndarray | None:
    """Ids of the catalog's items meeting every condition; None when there are no conditions
    (everything allowed). Raises :class:`FilterError` for a condition the catalog cannot mean."""
    if not conditions:
        return None
    with store.session() as session:
        attributes = {a.name: a for a in session.scalars(select(Attribute).where(Attribute.catalog_id == catalog.id))}
        query = select(Item.id).where(Item.catalog_id == catalog.id)
        for condition in conditions:
            attribute, value = _check(condition, attributes, catalog.name)
            matching = select(ItemValue.item_id).where(ItemValue.attribute_id == attribute.id)
            if attribute.kind == "numeric":
                column = ItemValue.number
                test = {"=": column == value, "!=": column == value, "<": column < value, "<=": column <= value,
                        ">": column > value, ">=": column >= value}[condition.op]
            else:
                test = ItemValue.value == value
            subquery = matching.where(test)
            query = query.where(Item.id.not_in(subquery) if condition.op == "!=" else Item.id.in_(subquery))
        return np.array(session.scalars(query.order_by(Item.id)).all(), dtype=np.int64)


def _check(condition: Condition, attributes: dict[str, Attribute], catalog: str) -> tuple[Attribute, str | float]:
    """The attribute a condition names and the value to compare, or FilterError saying why not."""
    attribute = attributes.get(condition.attribute) or attributes.get(normalise_value(condition.attribute))
    if attribute is None:
        raise FilterError(f"unknown attribute {condition.attribute!r} in filter '{condition}'; "
                          f"catalog {catalog!r} has: {', '.join(sorted(attributes)) or 'no attributes'}")
    if attribute.kind == "numeric":
        try:
            return attribute, float(condition.value)
        except ValueError:
            raise FilterError(f"filter '{condition}': {attribute.name} is numeric, "
                              f"{condition.value!r} is not a number") from None
    if condition.op in NUMERIC_OPS:
        raise FilterError(f"filter '{condition}': {attribute.name} is {attribute.kind}, "
                          "compare it with = or != only")
    value = normalise_value(str(condition.value))
    if attribute.allowed_values is not None and value not in attribute.allowed_values:
        shown = ", ".join(attribute.allowed_values[:30])
        raise FilterError(f"filter '{condition}': {attribute.name} has no value {value!r}; values: {shown}")
    return attribute, value
