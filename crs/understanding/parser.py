"""Critique parsing: the text of a message -> a :class:`~crs.turn.Critique` in the catalog's terms.

One abstract method, :meth:`CritiqueParser.parse`. The default is the rule/lexicon parser
(:mod:`crs.understanding.rule_parser`); an LLM parser with structured output lives in
:mod:`crs.llm.parser`. The dialogue manager falls back to the rules when the LLM fails.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from crs.facts import CatalogFacts
from crs.turn import Critique, Question


@dataclass(frozen=True)
class ShownItem:
    """An item the person saw in the last reply, in the order shown."""

    item_id: int
    title: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class ParseContext:
    facts: CatalogFacts  # the attributes and their vocabularies
    shown: list[ShownItem] = field(default_factory=list)
    question: Question | None = None  # the question the message may be answering


class CritiqueParser(ABC):
    name: str = "parser"

    @abstractmethod
    def parse(self, text: str, context: ParseContext) -> Critique:
        """Understand ``text``; never drop what matched nothing (it goes to ``Critique.text``)."""
