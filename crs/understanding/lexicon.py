"""The words a catalog's values go by: built from the catalog's own vocabulary plus a small
table of general synonyms and word forms ("gray" is grey, "cartoonish" is cartoon, "3-D" is 3d).

Used by the rule-based critique parser to spot attribute values in free text. Values that no
reasonable person types (emoji code points, ids) are left out by the caller's choice of
attributes, not by guessing here.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from crs.facts import AttributeInfo

# General synonyms: canonical value -> other ways to say it. Applied only where a catalog has
# the canonical value, so they never invent values.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "grey": ("gray", "silver", "grayish", "greyish"),
    "purple": ("violet", "lilac", "lavender", "purplish", "magenta"),
    "red": ("crimson", "scarlet", "reddish"),
    "blue": ("navy", "azure", "bluish", "blueish", "turquoise", "cyan"),
    "green": ("greenish", "lime", "olive", "emerald"),
    "yellow": ("golden", "gold", "yellowish"),
    "orange": ("orangey", "orangish"),
    "pink": ("pinkish", "rose"),
    "brown": ("brownish", "tan", "beige"),
    "black": ("dark",),
    "white": ("whitish",),
    "3d": ("3-d", "3 d", "three d", "three-d", "three dimensional", "three-dimensional", "3d-style", "fluent",
           "3d style", "3d look", "rendered"),
    "cartoon": ("cartoonish", "cartoony", "cartoon style", "cartoon-style", "noto"),
    "flat": ("flat style", "flat design", "flat-style", "twemoji", "simple flat"),
    "line-art": ("line art", "lineart", "line drawing", "outline", "outlines", "black and white drawing",
                 "sketch", "line-drawing"),
    "clip-art": ("clip art", "clipart", "clip art drawing"),
    "small": ("tiny", "little"),
    # countries by their people's adjective (a catalog's country values are names of countries)
    "united states": ("american", "usa", "hollywood"),
    "united kingdom": ("british", "uk", "england", "english-made"),
    "france": ("french-made",), "italy": ("italian-made",), "germany": ("german-made",),
    "large": ("big", "huge"),
}

_SPLIT = re.compile(r"\s*(?:&|,|/|\band\b)\s*")


def normalise(text: str) -> str:
    """Lower-case, curly quotes straightened, punctuation other than - # ' & spaced out."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"[^\w\s#'&.-]", " ", text)
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)  # a decimal point stays: "emoji 5.0"
    return " ".join(text.split())


@dataclass(frozen=True)
class Entry:
    attribute: str
    value: str
    # 3 = the value itself, 2 = a synonym, 1 = a word of a multi-word value ("food" of "food & drink"):
    # a value named exactly wins over a synonym of another attribute's value ("twemoji" is the
    # set, not the style it is drawn in)
    strength: int


def _forms(word: str) -> set[str]:
    """A word and its simple plural/singular (animals <-> animal, buses <-> bus)."""
    forms = {word}
    if word.endswith("ies") and len(word) > 4:
        forms.add(word[:-3] + "y")
    elif word.endswith("es") and len(word) > 4 and word[-3] in "sxz":
        forms.add(word[:-2])
    elif word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        forms.add(word[:-1])
    elif word.endswith("y") and len(word) > 3 and word[-2] not in "aeiou":
        forms.add(word[:-1] + "ies")  # comedy -> comedies
    else:
        forms.add(word + "s")
    if word.isalpha() and len(word) > 3:  # "outlined", "striped": a value used as an adjective
        forms.add(word + ("d" if word.endswith("e") else "ed"))
    return forms


class Lexicon:
    """Phrase -> the (attribute, value) entries it can mean."""

    def __init__(self, attributes: Iterable[AttributeInfo]) -> None:
        self.phrases: dict[str, list[Entry]] = {}
        self.attribute_names: dict[str, str] = {}
        for info in attributes:
            for name in {info.name, info.name.replace("_", " "), info.name.replace("colour", "color")}:
                self.attribute_names[normalise(name)] = info.name
            for value in info.values:
                canonical = normalise(value)
                for phrase in {canonical, canonical.replace("-", " "), canonical.replace("-", "")} | _forms(canonical):
                    self._add(phrase, Entry(info.name, value, 3))
                if re.search(r"colou?r", info.name) and " " not in canonical:
                    # "dark green", "light blue": a shade is the colour, not black or white too
                    for shade in ("dark", "light", "pale", "bright", "deep", "pastel"):
                        self._add(f"{shade} {canonical}", Entry(info.name, value, 3))
                for synonym in SYNONYMS.get(value, ()):
                    self._add(normalise(synonym), Entry(info.name, value, 2))
                if len(canonical) < 2 and re.search(r"rat", f"{info.name} {info.description}".lower()):
                    # A one-letter rating ("r", "g") is only safe to read with its word: "rated r".
                    for phrase in (f"rated {canonical}", f"{canonical} rated", f"{canonical}-rated"):
                        self._add(phrase, Entry(info.name, value, 2))
                parts = [p for p in _SPLIT.split(canonical) if p and p != canonical]
                for part in parts:
                    for form in _forms(part):
                        self._add(form, Entry(info.name, value, 1))
        self.longest = max((len(p.split()) for p in self.phrases), default=1)

    def _add(self, phrase: str, entry: Entry) -> None:
        if len(phrase) < 2 or phrase.isdigit():
            return
        entries = self.phrases.setdefault(phrase, [])
        if entry not in entries:
            entries.append(entry)

    def lookup_all(self, phrase: str) -> list[Entry]:
        return self.phrases.get(phrase, [])

    def lookup(self, phrase: str) -> list[Entry]:
        entries = self.phrases.get(phrase, [])
        best = max((e.strength for e in entries), default=0)
        return [e for e in entries if e.strength == best]
