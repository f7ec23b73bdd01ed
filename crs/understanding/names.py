"""Names and loosely spelt values: people, places and other attributes with many values, found
with rapidfuzz ("tom hanx" is Tom Hanks, "scorsese" Martin Scorsese, "comdey" comedy).

* A phrase of two or three words is compared with every full value of the name attributes
  (``fuzz.ratio`` on the normalised text, at least ``FULL_NAME`` out of 100).
* One word is taken for a surname when it is the last word of exactly the values it matches
  (the most frequent wins: "hanks" is Tom Hanks before Colin Hanks) and either it is not a common
  word (not a whole word of the text encoder's vocabulary: "scorsese", "tarantino") or the clause
  says it is a name ("directed by nolan", "with pitt", "spielberg films").
* One word of at least ``TYPO_MIN`` letters one edit away (a swapped, dropped, doubled or wrong
  letter; two for long words) from a one-word value of the small vocabularies is that value.

Which attribute a name belongs to when it is in several (director and cast): the one the clause
points at ("directed by", "starring"), else the one where the name is most frequent.
"""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from crs.facts import CatalogFacts
from crs.understanding.lexicon import normalise
from crs.understanding.spotting import Span, SpotContext, Spotter, free_runs
from crs.understanding.stopwords import STOPWORDS

FULL_NAME = 80  # fuzz.ratio for a 2-3 word phrase to be a full value ("tom hanx" ~ "tom hanks": 82),
# with every word starting with the same letter as the value's (a typo rarely hits the first letter)
TYPO_MIN = 5  # shorter words are too often other words one letter away ("red"/"bed")
_CUES_BEFORE = {"by", "with", "starring", "featuring", "feat", "director", "actor", "actress", "directed", "from",
                "no", "not", "without"}
_CUES_AFTER = {"film", "films", "movie", "movies", "flick", "flicks", "'s"}
_DIRECTING = {"directed", "director", "by", "filmmaker"}
_ACTING = {"starring", "with", "actor", "actress", "featuring", "cast", "stars"}


@dataclass(frozen=True)
class _Name:
    attribute: str
    value: str
    count: int


class NameSpotter(Spotter):
    def __init__(self, facts: CatalogFacts, names: Collection[str], small: Collection[str],
                 common_words: Collection[str] = ()) -> None:
        """``names``: attributes whose values are names (many values); ``small``: the attributes
        with a small vocabulary, for typos; ``common_words``: words too common to be a surname
        on their own."""
        self.common = set(common_words)
        self.full: dict[str, list[_Name]] = {}
        self.surnames: dict[str, list[_Name]] = {}
        for attribute in names:
            counts = facts.value_counts(attribute)
            if not _look_like_names(counts):
                continue
            for value, count in counts.items():
                key = normalise(value)
                if len(key) < 4:
                    continue
                name = _Name(attribute, value, count)
                self.full.setdefault(key, []).append(name)
                parts = key.split()
                if len(parts) >= 2 and len(parts[-1]) >= 4:
                    self.surnames.setdefault(parts[-1], []).append(name)
        self.full_keys = list(self.full)
        self.surname_keys = [k for k in self.surnames if len(k) >= 5]
        self.words: dict[str, tuple[str, str]] = {}
        for attribute in small:
            for value in facts.attributes[attribute].values:
                key = normalise(value)
                if " " not in key and len(key) >= TYPO_MIN - 1 and key.replace("-", "").isalpha():
                    self.words.setdefault(key, (attribute, value))
                    self.words.setdefault(key.replace("-", ""), (attribute, value))  # "scifi"
        self.word_keys = list(self.words)

    def spot(self, words: list[str], free: list[bool], context: SpotContext) -> list[Span]:
        spans: list[Span] = []
        free = list(free)
        for size in (3, 2):
            for start, end in free_runs(free):
                for i in range(start, end - size + 1):
                    if not all(free[i:i + size]) or words[i] in STOPWORDS or words[i + size - 1] in STOPWORDS:
                        continue
                    phrase = " ".join(words[i:i + size])
                    found = process.extractOne(phrase, self.full_keys, scorer=fuzz.ratio, score_cutoff=FULL_NAME) \
                        if self.full_keys else None
                    if found is not None and _initials(phrase) == _initials(found[0]):
                        name = self._pick(self.full[found[0]], words)
                        spans.append(Span(self._cue_start(words, free, i), i + size, name.attribute, (name.value,)))
                        free[i:i + size] = [False] * size
        for i, word in enumerate(words):
            if not free[i] or word in STOPWORDS or not word.replace("-", "").isalpha():
                continue
            span = self._typo(word, i) or self._surname(words, free, i)
            if span is not None:
                spans.append(span)
                free[i] = False
        return spans

    def _surname(self, words: list[str], free: list[bool], i: int) -> Span | None:
        word = words[i].removesuffix("'s")
        names = self.surnames.get(word)
        if not names and len(word) >= 5 and word not in self.common and self.surname_keys:
            # a misspelt surname ("kubrik", "scorcese"): one or two edits, same first letter
            found = process.extractOne(word, self.surname_keys, scorer=OSA.distance,
                                       score_cutoff=1 if len(word) < 8 else 2)
            if found is not None and found[0][0] == word[0]:
                names = self.surnames[found[0]]
        if not names or len(word) < 4:
            return None
        cued = (i > 0 and words[i - 1] in _CUES_BEFORE) or (i + 1 < len(words) and words[i + 1] in _CUES_AFTER) \
            or words[i].endswith("'s")
        if word in self.common and not cued:
            return None
        name = self._pick(names, words)
        # Namesakes about as known as the best ("hepburn": Audrey and Katharine) are all meant.
        alike = [n.value for n in names if n.attribute == name.attribute and n.count >= 0.5 * name.count]
        return Span(self._cue_start(words, free, i), i + 1, name.attribute, tuple(dict.fromkeys([name.value, *alike])))

    @staticmethod
    def _cue_start(words: list[str], free: list[bool], i: int) -> int:
        """Where a name's span starts: with the words that introduced it ("directed by", "starring")."""
        if i >= 2 and words[i - 2:i] == ["directed", "by"] and all(free[i - 2:i]):
            return i - 2
        if i >= 1 and words[i - 1] in ("starring", "featuring", "director", "actor", "actress") and free[i - 1]:
            return i - 1
        return i

    def _typo(self, word: str, i: int) -> Span | None:
        if len(word) < TYPO_MIN - 1 or not self.word_keys or word in self.words:
            return None
        allowed = 1 if len(word) < 8 else 2
        found = process.extractOne(word, self.word_keys, scorer=OSA.distance, score_cutoff=allowed)
        if found is None:
            return None
        if len(word) == TYPO_MIN - 1 and sorted(word) != sorted(found[0]) and len(found[0]) <= len(word):
            return None  # four letters: two swapped ("bleu") or one left out ("scfi"); "glue" is not blue
        attribute, value = self.words[found[0]]
        return Span(i, i + 1, attribute, (value,))

    @staticmethod
    def _pick(names: list[_Name], words: list[str]) -> _Name:
        said = set(words)
        if said & _DIRECTING:
            names = [n for n in names if re.search(r"direct", n.attribute)] or names
        elif said & _ACTING:
            names = [n for n in names if re.search(r"cast|actor|star", n.attribute)] or names
        return max(names, key=lambda n: n.count)


def _initials(phrase: str) -> tuple[str, str]:
    """First letters of the first and last words ("samuel jackson" ~ "samuel l. jackson")."""
    words = phrase.split()
    return words[0][0], words[-1][0]


def _look_like_names(counts: dict[str, int]) -> bool:
    """Values that are mostly two or three words of letters (people, places), not keyword
    phrases or codes (the demo's "face hitchhikers panic green", "1f431")."""
    named = sum(1 for v in counts if 2 <= len(v.split()) <= 3 and all(w.replace(".", "").replace("-", "").isalpha()
                                                                   for w in v.split()))
    return bool(counts) and named >= 0.6 * len(counts)
