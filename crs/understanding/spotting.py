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
    """The catalog's vocabulary, longest phrase first (see :mod:`crs.understanding.lexicon`)."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon

    def spot(self, words: list[str], free: list[bool], context: SpotContext) -> list[Span]:
        spans = []
        for start, end in free_runs(free):
            i = start
            while i < end:
                for size in range(min(self.lexicon.longest, end - i), 0, -1):
                    entries = self.lexicon.lookup(" ".join(words[i:i + size]))
                    if entries:
                        entry = _choose(entries, context.question_attribute)
                        spans.append(Span(i, i + size, entry.attribute, (entry.value,)))
                        i += size
                        break
                else:
                    i += 1
        return spans


def _choose(entries: list[Entry], question_attribute: str | None) -> Entry:
    for entry in entries:
        if entry.attribute == question_attribute:
            return entry
    return entries[0]
