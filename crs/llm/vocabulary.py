"""The catalog's vocabulary, written out for a prompt and checked in a model's answer.

Every LLM stage must answer in the catalog's own terms: attribute names and values that
:class:`~crs.facts.CatalogFacts` knows. A name or value outside them is an :class:`LLMError`
(the stage falls back to rules for the turn) rather than something silently dropped or
guessed at, so a half-understood answer never reaches the belief.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..facts import AttributeInfo, CatalogFacts
from .structured import LLMError, one_of

SMALL_VOCABULARY = 30  # a non-askable attribute with at most this many values is still something people say
MAX_VALUES = 300  # as the rule parser: larger vocabularies are identifiers or keywords, not wishes


def talked_about(facts: CatalogFacts) -> list[AttributeInfo]:
    """The attributes a message may name, chosen as the rule parser chooses them (askable ones and
    small closed vocabularies), plus the numeric ones for "more"/"less". Leaves out identifier-like
    attributes (a code point per item) that would fill the prompt and mean nothing to a person."""
    return [info for info in facts.attributes.values()
            if info.kind == "numeric" or (info.values and len(info.values) <= MAX_VALUES
                                          and (info.askable or len(info.values) <= SMALL_VOCABULARY))]


def format_value(value: str | float | Sequence[str], most: int = 3) -> str:
    """An item's value for a prompt line: a tag list shortened to its first few."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return format(value, "g")
    return ", ".join(list(value)[:most])


def attribute(facts: CatalogFacts, name: str, field: str, allowed: Sequence[str] | None = None) -> AttributeInfo:
    """The attribute ``name`` (spelling forgiven), if it is one of ``allowed`` (default: all)."""
    names = list(allowed) if allowed is not None else list(facts.attributes)
    return facts.attributes[one_of(field, name, names)]


def values(info: AttributeInfo, given: Iterable[str], field: str) -> list[str]:
    """``given`` in the attribute's own spelling, without repeats; numeric attributes have none."""
    if info.kind == "numeric":
        raise LLMError(f"field {field}: {info.name} is a number, not a list of values")
    out: list[str] = []
    for value in given:
        canonical = one_of(f"{field}.{info.name}", value, info.values)
        if canonical not in out:
            out.append(canonical)
    return out


def attribute_values(facts: CatalogFacts, given: dict[str, list[str]], field: str,
                     allowed: Sequence[str] | None = None) -> dict[str, list[str]]:
    """A model's ``{attribute: [values]}`` in the catalog's spelling; empty lists are left out."""
    out: dict[str, list[str]] = {}
    for name, items in given.items():
        info = attribute(facts, name, field, allowed)
        checked = values(info, items, field)
        if checked:
            out.setdefault(info.name, [])
            out[info.name] += [v for v in checked if v not in out[info.name]]
    return out
