"""Spotting what the words of a clause name: attribute values, and ranges on numeric attributes.

The rule parser (:mod:`crs.understanding.rule_parser`) splits a message into clauses and handles
the control phrases (accept, "none of these", references, comparatives); what is left of a clause
goes through its spotters in order. Each spotter looks only at the words no earlier spotter used,
so the exact vocabulary wins over numbers, names and meaning-based grounding. One abstract method,
:meth:`Spotter.spot`. The spotters:

* :class:`LexiconSpotter` (here): the catalog's own values, word forms and a small synonym table;
* :class:`~crs.understanding.numbers.NumberSpotter`: decades, years, durations, ratings;
* :class:`~crs.understanding.names.NameSpotter`: people, places and other many-valued
  attributes, spelt loosely (rapidfuzz);
* :class:`~crs.understanding.grounding.GroundingSpotter`: words near a value in meaning
  ("bluish", "three-dimensional", "animated"), by sentence-embedding similarity.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from crs.facts import CatalogFacts
from crs.understanding.lexicon import Entry, Lexicon
from crs.understanding.stopwords import ITEM_NOUNS


@dataclass(frozen=True)
class Span:
    """Words ``[start, end)`` of a clause that name ``values`` of ``attribute``, or a range on it."""

    start: int
    end: int
    attribute: str
    values: tuple[str, ...] = ()
    low: float | None = None  # inclusive range ends, for numeric attributes
    high: float | None = None

    @property
    def is_range(self) -> bool:
        return not self.values


@dataclass(frozen=True)
class SpotContext:
    facts: CatalogFacts
    question_attribute: str | None = None  # a pending question's attribute wins ambiguous words


class Spotter(ABC):
    @abstractmethod
    def spot(self, words: list[str], free: list[bool], context: SpotContext) -> list[Span]:
        """Spans over the ``free`` words of a normalised clause (never over used ones)."""


def free_runs(free: list[bool]) -> list[tuple[int, int]]:
    """Maximal runs ``[start, end)`` of free words: a phrase never spans a used word."""
    runs, start = [], None
    for i, ok in enumerate(free + [False]):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            runs.append((start, i))
            start = None
    return runs


class LexiconSpotter(Spotter):
    """The catalog's vocabulary, longest phrase first (see :mod:`crs.understanding.lexicon`).

    A word that names values of two attributes where one value's items lie within the other's
    ("food": the source group "food" inside the category "food & drink") is read as the broader
    one: people name the kind of thing, and the narrower group stays reachable by asking. A word
    people use for "an item" ("icons") is not a value on its own."""

    CONTAINED = 0.9  # share of the narrower value's items that must have the broader one

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self._broader: dict[tuple[str, str | None], Entry] = {}

    def spot(self, words: list[str], free: list[bool], context: SpotContext) -> list[Span]:
        spans = []
        for start, end in free_runs(free):
            i = start
            while i < end:
                for size in range(min(self.lexicon.longest, end - i), 0, -1):
                    phrase = " ".join(words[i:i + size])
                    entries = self.lexicon.lookup(phrase)
                    if entries and not (size == 1 and phrase in ITEM_NOUNS):
                        entry = self._read(phrase, entries, context)
                        spans.append(Span(i, i + size, entry.attribute, (entry.value,)))
                        i += size
                        break
                else:
                    i += 1
        return spans

    def _read(self, phrase: str, entries: list[Entry], context: SpotContext) -> Entry:
        chosen = _choose(entries, context.question_attribute)
        if chosen.attribute == context.question_attribute:
            return chosen
        key = (phrase, context.question_attribute)
        if key not in self._broader:
            self._broader[key] = self._widest(chosen, self.lexicon.lookup_all(phrase), context.facts)
        return self._broader[key]

    def _widest(self, chosen: Entry, candidates: list[Entry], facts: CatalogFacts) -> Entry:
        if not hasattr(facts, "has_value"):
            return chosen
        mine = facts.has_value(chosen.attribute, [chosen.value], facts.ids)
        if not mine.any():
            return chosen
        for other in candidates:
            if other.attribute == chosen.attribute or other.attribute not in facts.attributes:
                continue
            theirs = facts.has_value(other.attribute, [other.value], facts.ids)
            if theirs.sum() > mine.sum() and (mine & theirs).sum() >= self.CONTAINED * mine.sum():
                return other
        return chosen


def _choose(entries: list[Entry], question_attribute: str | None) -> Entry:
    for entry in entries:
        if entry.attribute == question_attribute:
            return entry
    return entries[0]
