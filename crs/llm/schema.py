"""The JSON schemas the stages' answers are held to: a critique's, built per message from the
prompt's :class:`Offer`; the policy's, from the questions its prompt lists; the image reader's,
from the vocabulary its prompt lists. Every enum holds exactly the values the prompt showed.

Backends with constrained decoding (llama.cpp's JSON-schema grammar, Ollama's ``format``,
OpenAI's structured output) can then only write attribute names and values the prompt offered,
item numbers that were shown, and keys of the Critique: the fallbacks a real 1.5B model caused
('any' as a category, an 'attribute' key) cannot be generated at all. Arrays have ``maxItems``
and the free text a ``maxLength``, so every answer the grammar allows is short: a small model
that starts repeating a value ("blue", "blue", ...) is stopped by the grammar, not cut off by
the token limit in the middle of the JSON.

Only what llama.cpp's ``json_schema_to_grammar`` supports is used (enum, const-free objects,
``additionalProperties: false``, min/maxItems, maxLength); no property is required, so an empty
object is a valid answer ("nothing understood").
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crs.facts import CatalogFacts

from .relevance import Offer

MAX_VALUES = 3  # values per attribute in one answer: "red, blue or green"
MAX_RELATIVE = 2
MAX_TEXT = 60  # characters of free text: a few words, not the message copied out
MAX_CAPTION = 200  # a picture's caption: a sentence or two
MAX_READ_VALUES = 3  # values per attribute read from one picture
MAX_COLOURS = 5


def critique_schema(offer: Offer, facts: CatalogFacts, shown: int) -> dict[str, Any]:
    """The schema of :class:`~crs.llm.parser.CritiqueAnswer` for this offer and ``shown`` items."""
    # As many values as the message names ("red and blue": 2), at least one: a small model lists
    # the first values of a vocabulary ("orange, red, yellow" for "got any red ones") otherwise.
    values = {name: {"type": "array", "items": {"enum": list(offered)},
                     "maxItems": min(MAX_VALUES, len(offered), max(1, offer.named.get(name, 0)))}
              for name, offered in offer.values.items() if offered}
    properties: dict[str, Any] = {}
    if values:
        properties["require"] = _object(values)
        properties["exclude"] = _object(values)
        tags = [name for name in values if facts.attributes[name].kind == "tags" and values[name]["maxItems"] >= 2]
        if tags:
            properties["all_of"] = {"type": "array", "items": {"enum": tags}, "maxItems": len(tags)}
    if offer.numbers:
        end = {"type": ["number", "null"]}
        properties["ranges"] = _object({name: {"type": "array", "items": end, "minItems": 2, "maxItems": 2}
                                        for name in offer.numbers})
    ordered = [info.name for info in offer.attributes(facts) if info.ordered] if offer.comparing else []
    items = list(range(1, shown + 1))
    if ordered:
        relative: dict[str, Any] = {"attribute": {"enum": ordered}, "direction": {"enum": [1, -1]}}
        if items:
            relative["item"] = {"enum": [*items, None]}
        properties["relative"] = {"type": "array", "maxItems": MAX_RELATIVE,
                                  "items": _object(relative, required=["attribute", "direction"])}
    if items:
        reference = _object({"item": {"enum": items}, "liked": {"enum": [True, False, None]}}, required=["item"])
        properties["references"] = {"type": "array", "items": reference, "maxItems": len(items)}
        properties["accept"] = {"enum": [*items, None]}
        properties["reject_all"] = {"type": "boolean"}
    names = [info.name for info in offer.attributes(facts)]
    if names and offer.indifferent:
        properties["dont_care"] = {"type": "array", "items": {"enum": names}, "maxItems": min(2, len(names))}
    properties["text"] = {"type": "string", "maxLength": MAX_TEXT}
    return _object(properties)


def policy_schema(questions: list[str]) -> dict[str, Any]:
    """The policy's answer: recommend, or ask about one of the attributes its prompt listed."""
    properties: dict[str, Any] = {"action": {"enum": ["ask", "recommend"]}}
    if questions:
        properties["attribute"] = {"enum": list(questions)}
    return _object(properties, required=["action"])


def reading_schema(offered: dict[str, list[str]], colours: Sequence[str] | None) -> dict[str, Any]:
    """The image reader's answer: for each attribute, up to a few of the values its prompt offered
    (``offered``), a short caption, and colours named with the colour attribute's values
    (``colours``) when the catalog has one."""
    values = {name: {"type": "array", "items": {"enum": list(listed)}, "maxItems": min(MAX_READ_VALUES, len(listed))}
              for name, listed in offered.items() if listed}
    colour_item: dict[str, Any] = ({"enum": list(colours)} if colours is not None
                                   else {"type": "string", "maxLength": 20})
    return _object({"attributes": _object(values),
                    "caption": {"type": "string", "maxLength": MAX_CAPTION},
                    "colours": {"type": "array", "items": colour_item, "maxItems": MAX_COLOURS}},
                   required=["attributes", "caption"])


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema
