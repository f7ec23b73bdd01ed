"""Numbers and ranges on the catalog's numeric attributes: "from the 90s", "after 2000", "under 2
hours", "rated above 80%", "at least 2 oscars", "oscar-winning".

Which attribute a number is about is found from the catalog, not from a table of domains:

* a year (1800-2099) or a decade -> the numeric attribute named or described as a year or date
  (a decade becomes the value of a categorical attribute that names it, e.g. films' ``decade``
  "1990s", when the catalog has one; otherwise a year range);
* a duration (minutes, hours, "2h") -> the one described as a runtime, duration or length;
* a percentage or a number near rating words -> a rating or score (preferring one whose name the
  clause says, e.g. "metacritic"); "7/10" is scaled when the attribute's values run to 100;
* a count before a noun -> the attribute whose name holds that noun ("2 oscars" -> oscars_won,
  "nominated" prefers oscar_nominations).

Comparison words say which end: "after"/"over"/"more than" (strict: the next whole number when
the attribute only holds whole numbers), "since"/"at least" (inclusive), "before"/"under",
"until"/"at most", "between X and Y", "from X to Y", "around X"; a bare year means that year.
Ranges are inclusive (:attr:`crs.turn.Critique.ranges`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from crs.facts import AttributeInfo, CatalogFacts
from crs.understanding.spotting import Span, SpotContext, Spotter

_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(h|hr|hrs|hour|hours|m|min|mins|minute|minutes)$")
_DECADE = re.compile(r"^'?(?:(1[89]|20)?(\d)0)'?s$")
_DECADE_WORDS = {"twenties": 1920, "thirties": 1930, "forties": 1940, "fifties": 1950, "sixties": 1960,
                 "seventies": 1970, "eighties": 1980, "nineties": 1990, "noughties": 2000, "aughts": 2000}
_HOURS = {"h", "hr", "hrs", "hour", "hours"}
_MINUTES = {"m", "min", "mins", "minute", "minutes"}
_NUMBER_WORDS = {"one": 1, "a": 1, "an": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "half": 0.5}
# Words before a number and the end they set: (low or high, strict).
_LOW_STRICT = ("more than", "longer than", "newer than", "later than", "greater than", "higher than", "better than",
               "after", "over", "above", "post", "past", "beyond")
_LOW = ("at least", "no less than", "not less than", "minimum", "min", "since", "starting")
_HIGH_STRICT = ("less than", "shorter than", "older than", "earlier than", "lower than", "fewer than", "before",
                "under", "below", "pre")
_HIGH = ("at most", "no more than", "not more than", "up to", "maximum", "max", "until", "till", "through", "within")
_AROUND = ("around", "about", "roughly", "approximately", "circa", "ish")
# Words after a number: "7/10 or better", "2 hours or less".
_AFTER = {("or", "better"): "low", ("or", "more"): "low", ("or", "higher"): "low", ("or", "above"): "low",
          ("or", "later"): "low", ("or", "newer"): "low", ("and", "up"): "low", ("or", "over"): "low",
          ("plus",): "low", ("or", "less"): "high", ("or", "lower"): "high", ("or", "under"): "high",
          ("or", "earlier"): "high", ("or", "older"): "high", ("or", "shorter"): "high", ("and", "under"): "high",
          ("or", "below"): "high", ("and", "below"): "high", ("or", "fewer"): "high"}
_BETWEEN = re.compile(r"^(?:between|from)$")
_RATING_WORDS = {"rated", "rating", "ratings", "score", "scored", "scores", "reviews", "reviewed", "percent",
                 "stars", "star", "tomatometer", "critics", "critic"}
_PRAISE = {("highly", "rated"), ("top", "rated"), ("well", "rated"), ("highly", "reviewed"), ("well", "reviewed"),
           ("best", "reviewed"), ("highly", "rated"), ("high", "rated")}
_WON = {"won", "win", "wins", "winning", "winner", "winners"}
_NOMINATED = {"nominated", "nomination", "nominations", "nominee", "nominees"}


@dataclass(frozen=True)
class _Reading:
    """A number found at words [start, end): its value and what kind of quantity it is."""

    start: int
    end: int
    value: float
    kind: str  # year | decade | duration | plain
    percent: bool = False
    out_of: float | None = None  # "7/10", "4 out of 5", "3 stars" (out of 5)


class NumberSpotter(Spotter):
    def __init__(self, facts: CatalogFacts) -> None:
        self.facts = facts
        numeric = [a for a in facts.attributes.values() if a.kind == "numeric"]
        self.year = _find(numeric, r"\byear|date|release")
        self.duration = _find(numeric, r"runtime|duration|running time|length|minutes")
        self.ratings = [a for a in numeric if re.search(r"rat(ing|ed)|score|tomato|metacritic|critic|stars", _text(a))
                        and not re.search(r"count|number of", _text(a))]
        self.numeric = numeric
        self.decades = self._decade_attribute()
        self.whole = {a.name: _whole(facts, a.name) for a in numeric}
        self.top = {a.name: _top(facts, a.name) for a in numeric}

    def _decade_attribute(self) -> AttributeInfo | None:
        for info in self.facts.attributes.values():
            if info.kind != "numeric" and sum(bool(re.fullmatch(r"\d{4}s", v)) for v in info.values) >= 2:
                return info
        return None

    def spot(self, words: list[str], free: list[bool], context: SpotContext) -> list[Span]:
        readings = self._readings(words, free)
        spans: list[Span] = []
        used: set[int] = set()
        for index, reading in enumerate(readings):
            if reading.start in used:
                continue
            span = self._between(words, free, readings, index) or self._span(words, free, reading)
            if span is not None:
                spans.append(span)
                used.update(range(span.start, span.end))
        spans += self._counts(words, free, used)
        spans += self._praise(words, free, used)
        return spans

    def _praise(self, words: list[str], free: list[bool], used: set[int]) -> list[Span]:
        """"highly rated", "top rated", "well reviewed": the catalog's top quarter on its rating
        (no number said, so the catalog's own spread sets it)."""
        if not self.ratings:
            return []
        for i in range(len(words) - 1):
            pair = (words[i], words[i + 1])
            if pair in _PRAISE and free[i] and free[i + 1] and not used & {i, i + 1}:
                info = self.ratings[0]
                values = self.facts.numbers(info.name, self.facts.ids)
                values = values[~np.isnan(values)]
                if len(values):
                    return [Span(i, i + 2, info.name, low=float(np.percentile(values, 75)))]
        return []

    # -- numbers in the words ------------------------------------------------------------------------

    def _readings(self, words: list[str], free: list[bool]) -> list[_Reading]:
        out = []
        i = 0
        while i < len(words):
            word = words[i]
            if not free[i]:
                i += 1
                continue
            decade = _decade(word)
            if decade is not None:
                out.append(_Reading(i, i + 1, decade, "decade"))
            elif (match := _DURATION.match(word)) is not None:
                minutes = float(match.group(1)) * (60 if match.group(2) in _HOURS else 1)
                out.append(_Reading(i, i + 1, minutes, "duration"))
            elif _NUMBER.match(word) or (word in _NUMBER_WORDS and i + 1 < len(words) and words[i + 1] in _HOURS):
                value = float(word) if _NUMBER.match(word) else float(_NUMBER_WORDS[word])
                end = i + 1
                nxt = words[end] if end < len(words) else ""
                if nxt in _HOURS or nxt in _MINUTES:
                    minutes = value * (60 if nxt in _HOURS else 1)
                    end += 1
                    if end + 2 < len(words) + 1 and words[end:end + 3] == ["and", "a", "half"]:
                        minutes += 30
                        end += 3
                    if end < len(words) and words[end] == "long":
                        end += 1  # "3 hours long"
                    out.append(_Reading(i, end, minutes, "duration"))
                elif nxt == "percent":
                    out.append(_Reading(i, end + 1, value, "plain", percent=True))
                elif nxt == "out" and words[end + 1:end + 3][:1] == ["of"] and end + 2 < len(words) \
                        and _NUMBER.match(words[end + 2]):
                    out.append(_Reading(i, end + 3, value, "plain", out_of=float(words[end + 2])))
                elif nxt in ("stars", "star"):
                    out.append(_Reading(i, end + 1, value, "plain", out_of=5.0))
                elif value.is_integer() and 1800 <= value <= 2099:
                    out.append(_Reading(i, end, value, "year"))
                else:
                    out.append(_Reading(i, end, value, "plain"))
                i = out[-1].end
                continue
            i += 1
        return out

    # -- a number and the words before it ------------------------------------------------------------

    def _span(self, words: list[str], free: list[bool], reading: _Reading) -> Span | None:
        attribute = self._attribute(words, reading)
        if attribute is None:
            return None
        modifier = words[reading.start - 1] if reading.kind == "decade" and reading.start > 0 else ""
        if reading.kind == "decade" and self.decades is not None and attribute is self.decades:
            low_word, start = self._comparison(words, free, reading.start)
            if (low_word is None or low_word == "exact") and modifier not in ("early", "mid", "late"):
                return Span(start, reading.end, attribute.name, (f"{int(reading.value)}s",))
            if self.year is None:
                return None
            attribute = self.year
        value = self._scaled(attribute, reading)
        end_word, start = self._comparison(words, free, reading.start)
        end = reading.end
        if end_word in (None, "exact"):
            for after, group in _AFTER.items():
                if tuple(words[end:end + len(after)]) == after and all(free[end:end + len(after)]):
                    end_word, end = group, end + len(after)
                    break
        start = self._rating_start(words, free, start, attribute)
        width = 9.0 if reading.kind == "decade" else 0.0
        if modifier in ("early", "mid", "late") and end_word in (None, "exact"):
            offset = {"early": 0.0, "mid": 3.0, "late": 6.0}[modifier]
            return Span(start - 1 if start == reading.start else start, end, attribute.name,
                        low=value + offset, high=value + offset + 3)
        step = 1.0 if self.whole.get(attribute.name, False) else 0.0
        if end_word == "low_strict":
            low, high = value + width + step, None
        elif end_word == "low":
            low, high = value, None
        elif end_word == "high_strict":
            low, high = None, value - step
        elif end_word == "high":
            low, high = None, value + width
        elif end_word == "around":
            spread = {"year": 2.0, "duration": 15.0}.get(reading.kind, max(1.0, round(abs(value) * 0.1)))
            low, high = value - spread, value + spread
        elif reading.kind in ("year", "decade") or (reading.kind == "plain" and _named(attribute) & set(words)):
            low, high = value, value + width  # "in 1995", "emoji 5.0": that value
        else:
            return None  # a bare number that is no year: too ambiguous ("2" may be an item)
        return Span(start, end, attribute.name, low=low, high=high)

    def _rating_start(self, words: list[str], free: list[bool], start: int, attribute: AttributeInfo) -> int:
        """A rating's span takes the words that named it: "rated above 80", "metacritic over 70"."""
        if attribute not in self.ratings:
            return start
        named = _RATING_WORDS | set(re.split(r"[\W_]+", attribute.name.lower())) | {"rotten", "tomatoes", "a"}
        while start > 0 and free[start - 1] and words[start - 1] in named:
            start -= 1
        return start

    def _between(self, words: list[str], free: list[bool], readings: list[_Reading], index: int) -> Span | None:
        """"between 1990 and 2000", "from 90 to 120 minutes", "1990-2000", "1990 to 2000"."""
        first = readings[index]
        if index + 1 >= len(readings):
            return None
        second = readings[index + 1]
        joiner = words[first.end:second.start]
        if joiner not in (["and"], ["to"], ["-"], ["till"], ["until"], []):
            return None
        if joiner == [] and not (first.kind == second.kind == "year"):
            return None
        start = first.start
        named = {w for info in self.numeric for w in _named(info)}
        while start > 0 and words[start - 1] in named and free[start - 1]:
            start -= 1  # "between emoji 11 and 13"
        if start > 0 and _BETWEEN.match(words[start - 1]) and free[start - 1]:
            start -= 1
        elif joiner == ["and"]:
            return None  # "comedy from 1990 and drama" is not a range
        kind = second.kind if first.kind == "plain" else first.kind
        merged = _Reading(first.start, second.end, first.value, kind, second.percent, second.out_of)
        attribute = self._attribute(words, merged)
        if attribute is None or (attribute is self.decades and self.year is not None):
            attribute = self.year if kind in ("year", "decade") else attribute
        if attribute is None:
            return None
        low = self._scaled(attribute, _Reading(0, 0, first.value, kind, second.percent, second.out_of))
        high = self._scaled(attribute, second) + (9.0 if second.kind == "decade" else 0.0)
        if first.kind == "plain" and second.kind == "duration" and first.value < 10:
            low = first.value * 60  # "between 1 and 2 hours"
        return Span(start, second.end, attribute.name, low=min(low, high), high=max(low, high))

    def _comparison(self, words: list[str], free: list[bool], start: int) -> tuple[str | None, int]:
        """The comparison word(s) just before ``start`` (skipping "the"), and where they begin."""
        at = start
        if at > 0 and words[at - 1] in ("the", "early", "mid", "late") and free[at - 1]:
            at -= 1
        named = {w for info in self.numeric for w in _named(info)}
        while at > 0 and words[at - 1] in named and free[at - 1]:
            at -= 1  # "after emoji 12", "before version 3": the attribute's own word between
        for group, phrases in (("low_strict", _LOW_STRICT), ("low", _LOW), ("high_strict", _HIGH_STRICT),
                               ("high", _HIGH), ("around", _AROUND)):
            for phrase in phrases:
                size = len(phrase.split())
                if at - size >= 0 and words[at - size:at] == phrase.split() and all(free[at - size:at]):
                    return group, at - size
        if at > 0 and words[at - 1] in ("in", "from", "of") and free[at - 1]:
            return "exact", at - 1
        return None, at if at < start and words[at] == "the" else start

    def _attribute(self, words: list[str], reading: _Reading) -> AttributeInfo | None:
        if reading.kind == "decade":
            return self.decades or self.year
        if reading.kind == "year":
            return self.year
        if reading.kind == "duration":
            return self.duration
        named = {w for info in self.ratings for w in re.split(r"[\W_]+", info.name.lower()) if len(w) > 3}
        if not (reading.percent or reading.out_of):
            for info in self.numeric:  # "version 13 or later", "emoji 12": an attribute the clause names
                if info not in self.ratings and _named(info) & set(words):
                    return info
        rating_talk = reading.percent or reading.out_of is not None or bool((_RATING_WORDS | named) & set(words))
        if not rating_talk or not self.ratings:
            return None
        said = set(words)
        for info in self.ratings:  # the rating the clause names ("metacritic above 70")
            if set(re.split(r"[\W_]+", info.name.lower())) & said:
                return info
        if reading.out_of:  # "7/10": a rating on that scale, if there is one
            for info in self.ratings:
                if reading.out_of / 2 < self.top.get(info.name, 0.0) <= reading.out_of:
                    return info
        if reading.percent:
            for info in self.ratings:
                if re.search(r"share|percent|%|0-100", info.description.lower()):
                    return info
        return self.ratings[0]

    def _scaled(self, attribute: AttributeInfo, reading: _Reading) -> float:
        value = reading.value
        top = self.top.get(attribute.name, 0.0)
        if reading.out_of and top > reading.out_of * 1.5:
            return value / reading.out_of * (100.0 if top > 10 else 10.0)
        if reading.kind == "plain" and not reading.percent and value <= 10 and top > 10 and attribute in self.ratings:
            return value * 10  # "rated above 8" on a 0-100 scale
        return value

    # -- counts ("2 oscars", "oscar-winning") --------------------------------------------------------

    def _counts(self, words: list[str], free: list[bool], used: set[int]) -> list[Span]:
        spans = []
        for i, word in enumerate(words):
            if not free[i] or i in used:
                continue
            noun, won = _count_noun(word)
            if noun is None:
                continue
            attribute = self._noun_attribute(noun, words, won)
            if attribute is None:
                continue
            start, low, high = i, 1.0, None
            before = words[i - 1] if i > 0 else ""
            if before.isdigit() or before in _NUMBER_WORDS:
                count = float(before) if before.isdigit() else float(_NUMBER_WORDS[before])
                comparison, start = self._comparison(words, free, i - 1)
                low, high = {"low": (count, None), "low_strict": (count + 1, None), "high": (None, count),
                             "high_strict": (None, count - 1)}.get(comparison or "", (count, None))
                start = min(start, i - 1)
            elif before in ("no", "zero", "without") and free[i - 1]:
                start, low, high = i - 1, None, 0.0
            spans.append(Span(start, i + 1, attribute.name, low=low, high=high))
            used.update(range(start, i + 1))
        return spans

    def _noun_attribute(self, noun: str, words: list[str], won: bool) -> AttributeInfo | None:
        # Only counts (small whole numbers: awards, seasons), not scores or years.
        counts = [a for a in self.numeric if self.whole.get(a.name) and 0 < self.top.get(a.name, 0) <= 50]
        matching = [a for a in counts if noun in re.split(r"[\W_]+", a.name.lower()) + [
            w.rstrip("s") for w in re.split(r"[\W_]+", a.name.lower())]]
        if not matching:
            return None
        said = set(words)
        if said & _NOMINATED:
            for info in matching:
                if "nominat" in info.name:
                    return info
        if won or said & _WON:
            for info in matching:
                if re.search(r"won|win", info.name):
                    return info
        return matching[0]


def _count_noun(word: str) -> tuple[str | None, bool]:
    """"oscars" -> ("oscar", False); "oscar-winning" -> ("oscar", True)."""
    match = re.fullmatch(r"([a-z]+)-(winning|winner|winners|nominated)", word)
    if match:
        return match.group(1), match.group(2) != "nominated"
    if word.isalpha() and len(word) > 3:
        return word[:-1] if word.endswith("s") else word, False
    return None, False


def _decade(word: str) -> float | None:
    if word in _DECADE_WORDS:
        return float(_DECADE_WORDS[word])
    match = _DECADE.match(word)
    if not match:
        return None
    century, digit = match.group(1), int(match.group(2))
    if century is None:
        return float((2000 if digit <= 2 else 1900) + digit * 10)
    return float(int(century) * 100 + digit * 10)


def _named(info: AttributeInfo) -> set[str]:
    """Content words of an attribute's name and description ("added_in": added, emoji, version)."""
    from crs.understanding.stopwords import FUNCTION_WORDS

    words = {w for w in re.split(r"[\W_]+", _text(info)) if len(w) > 3 and w not in FUNCTION_WORDS}
    return words | {w + "s" for w in words}


def _text(info: AttributeInfo) -> str:
    return f"{info.name.replace('_', ' ')} {info.description}".lower()


def _find(numeric: list[AttributeInfo], pattern: str) -> AttributeInfo | None:
    by_name = [a for a in numeric if re.search(pattern, a.name.replace("_", " ").lower())]
    return (by_name or [a for a in numeric if re.search(pattern, _text(a))] or [None])[0]


def _whole(facts: CatalogFacts, attribute: str) -> bool:
    values = facts.numbers(attribute, facts.ids)
    values = values[~np.isnan(values)]
    return bool(len(values)) and bool(np.all(values == np.round(values)))


def _top(facts: CatalogFacts, attribute: str) -> float:
    values = facts.numbers(attribute, facts.ids)
    values = values[~np.isnan(values)]
    return float(values.max()) if len(values) else 0.0
