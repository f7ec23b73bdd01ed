"""Detect and redact an LLM user naming its hidden target.

A simulated user that knows its target's title may simply say it, and then the system's job
is a title lookup, not a recommendation. Such text is replaced by ``[redacted]`` before the
system sees it, and the turn is counted as a leak (the leak rate of DESIGN's protocol).

The rule, all matching case-insensitive and on whole words, a noun in its singular or plural
(``sandal``/``sandals``, ``box``/``boxes``, ``berry``/``berries``, ``mouse``/``mice``: inflect's
English rules, not a suffix list of our own):

1. the target's external id (at least 3 characters; ``-`` and ``_`` count as part of it, so
   ``red-circle`` is not found inside ``red-circle-outline``);
2. the whole title, with any punctuation or spacing between its words, when the title has at
   least one *distinctive* word, or at least two words that are attribute values;
3. the title's distinctive words when the title has two or more and most of them (more than
   half) appear anywhere in the text, in any order; each occurrence is redacted.

A distinctive word is a title word of 3+ characters that is neither a common English word nor a
word of the catalog's attribute values: in "Grinning face with big eyes" (``face`` a value word)
saying "big grinning eyes" leaks and "grinning" alone does not.

A title made only of attribute words ("White flower", "Blue square") has no distinctive word.
Its words one by one are what any shopper may ask for ("white", "a flower", "a flower, in
white"), so they never leak; its exact phrase ("a white flower", "white flowers") does (rule 2),
since it hands the system the title as the catalog writes it. The price: with the shapes test
catalog, whose titles are just colour + shape, an LLM user saying "a blue square" is redacted;
on real catalogs (emoji, clip art, films) such titles are rare and the phrase is a strong hint.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

REDACTED = "[redacted]"
MIN_ID_CHARS = 3  # shorter ids ("7", "ab") turn up in ordinary text by chance
# Function words and shop words: never evidence of a leak (the simulator's own list, not the parser's).
COMMON_WORDS = frozenset("""
about above after all also and another any are around back because before being below best between both
but can color colour could does down each else even every few for from full get good great has have her his
how into its just least left less let like little long made make many may might more most much must new
nice not off old only other our out over own part right same set she should side small some still such
take than that the their them then there these they thing this those too two under until upon use used
very want was way well were what when where which while who whose why will with without would yet you
your big large one two three four five six seven eight nine ten first second third
again am as at been did find give had here hmm i'm im image images item items kind look looking maybe
need now okay ones picture pictures please really search see show similar something sort sticker stickers
style that's things type yeah yes
""".split())

_WORD = re.compile(r"[^\W_]+")
MIN_WORD_CHARS = 3  # shorter words ("a", "of", "3d") are never evidence on their own
PHRASE_VALUE_WORDS = 2  # a title of this many attribute words (and no distinctive one) leaks as a phrase


@cache
def _inflect() -> Any:
    """inflect's English engine (building it reads its rule tables: once per process)."""
    try:
        import inflect
    except ImportError:
        raise ImportError("the leak detector needs inflect for singular and plural nouns: "
                          "pip install 'crs-multimodal[llm-user]' (or pip install inflect)") from None
    return inflect.engine()


@cache
def noun_forms(word: str) -> tuple[str, ...]:
    """``word`` (lower case) and its singular and plural: ("sandals", "sandal"), ("berry", "berries").
    inflect guesses for words that are not nouns ("bus" -> "bu"): forms shorter than
    :data:`MIN_WORD_CHARS` are dropped, and a wrong guess only adds a word nobody writes."""
    if len(word) < MIN_WORD_CHARS or word.isdigit():
        return (word,)
    engine = _inflect()
    singular = engine.singular_noun(word) or word
    forms = (word, singular, engine.plural_noun(singular))
    return tuple(dict.fromkeys(f for f in forms if len(f) >= MIN_WORD_CHARS or f == word))


def _any_form(word: str) -> str:
    """A regular expression for ``word`` in any of its noun forms, longest first (so "boxes" is not
    cut to "box")."""
    return "(?:" + "|".join(re.escape(f) for f in sorted(noun_forms(word), key=len, reverse=True)) + ")"


@dataclass(frozen=True)
class Redaction:
    text: str  # the text with every leak replaced by REDACTED
    leaked: bool


class LeakDetector:
    """Finds one target's title and id in a simulated user's text (the rule is the module's)."""

    def __init__(self, title: str, external_id: str, known_words: Iterable[str] = ()) -> None:
        values = {w.lower() for w in known_words}
        words = _WORD.findall(title.lower())
        eligible = [w for w in words if len(w) >= MIN_WORD_CHARS and not w.isdigit() and w not in COMMON_WORDS]
        # A word is a value word in any of its forms: the title's "frogs" is the catalog's tag "frog".
        value_words = [w for w in eligible if any(f in values for f in noun_forms(w))]
        self.distinctive = tuple(dict.fromkeys(w for w in eligible if w not in value_words))
        self._id = (re.compile(r"(?<![\w-])" + re.escape(external_id) + r"(?![\w-])", re.IGNORECASE)
                    if len(external_id.strip()) >= MIN_ID_CHARS else None)
        phrase = bool(self.distinctive) or len(set(value_words)) >= PHRASE_VALUE_WORDS
        self._title = (re.compile(r"(?<![^\W_])" + r"[\W_]+".join(map(_any_form, words)) + r"(?![^\W_])",
                                  re.IGNORECASE) if words and phrase else None)
        self._words = {w: re.compile(r"(?<![^\W_])" + _any_form(w) + r"(?![^\W_])", re.IGNORECASE)
                       for w in self.distinctive}

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of every leaking piece of ``text``, merged and in order."""
        found: list[tuple[int, int]] = []
        for pattern in (self._id, self._title):
            if pattern is not None:
                found += [m.span() for m in pattern.finditer(text)]
        if len(self.distinctive) >= 2:
            present = {w: [m.span() for m in p.finditer(text)] for w, p in self._words.items()}
            if 2 * sum(bool(s) for s in present.values()) > len(self.distinctive):
                found += [span for spans in present.values() for span in spans]
        merged: list[tuple[int, int]] = []
        for start, end in sorted(found):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged

    def redact(self, text: str) -> Redaction:
        spans = self.spans(text)
        for start, end in reversed(spans):
            text = text[:start] + REDACTED + text[end:]
        return Redaction(text, bool(spans))
