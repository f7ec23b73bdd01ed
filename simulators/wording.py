"""How the agenda user says things: its own phrase bank, with no knowledge of the system's parser.

A line is built from a template of the kind of move (an answer, "like the second but ...",
"none of these", ...) and a surface form of each value it names. Both are drawn with the
conversation's seeded "words" generator, so two conversations do not read alike and a re-run
reads the same. Nothing here is checked against the system: if the system misreads a line, that
counts against it (the understanding rate, :class:`~simulators.base.Intent`).

Surface forms of a value (:func:`surface_forms`), each labelled for the report by kind of phrase:

* ``exact``: the catalog's value as written ("line-art", "food & drink");
* ``variant``: spacing and punctuation a person types ("line art", "lineart", "food and drink",
  "3D");
* ``part``: one part of a compound value ("food" for "food & drink");
* ``synonym``: an everyday word for it from :data:`SYNONYMS` (English, across shops: colours,
  picture styles, film genres, clothes, furniture), never from the system's lexicon;
* ``typo``: with ``typo_rate``, one slip (swapped, dropped or doubled letter) in a value word.

Profiles add: ``fillers`` (off-vocabulary words people add: "kinda", "for my niece's birthday")
and the words of the catalog's own text about the target ("a sticker of a cat").
"""
from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .base import Intent

ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")

# Everyday words for values, by the value's plain form (lower case, "&" read "and"). General
# English for the kinds of catalog people shop in; a value missing here is said as written.
SYNONYMS: dict[str, tuple[str, ...]] = {
    # colours
    "grey": ("gray", "greyish"), "gray": ("grey",), "purple": ("violet", "purplish"), "red": ("reddish", "scarlet"),
    "blue": ("bluish", "navy"), "green": ("greenish",), "yellow": ("golden", "yellowish"),
    "orange": ("orangey",), "brown": ("brownish", "tan"), "black": ("dark", "jet black"), "white": ("snow white",),
    "pink": ("rose", "pinkish"), "beige": ("cream", "sand"), "multicolour": ("colourful", "rainbow"),
    "multicolor": ("colorful", "rainbow"),
    # picture styles
    "3d": ("three-dimensional", "3-d"), "line art": ("outline", "line drawing", "outlined"),
    "line-art": ("outline", "line drawing", "outlined"), "clip art": ("clipart",), "clip-art": ("clipart",),
    "cartoon": ("cartoony", "comic style", "cartoonish"), "flat": ("flat design", "minimal"),
    "outline": ("line drawing", "outlined"), "filled": ("solid",), "realistic": ("lifelike", "photo-like"),
    # shapes
    "circle": ("round", "ring"), "square": ("box",), "star": ("starry",), "heart": ("love heart",),
    "triangle": ("triangular",),
    # sticker and emoji kinds
    "smileys and emotion": ("smiley", "emoji face", "emotions"), "animals": ("animal", "creature"),
    "animals and nature": ("animal", "nature"), "food and drink": ("food", "snack"),
    "flags": ("flag",), "people": ("person", "people"), "activities and sports": ("sport", "sports"),
    "computer and technology": ("tech", "computer"), "symbols and signs": ("symbol", "sign"),
    "shapes and patterns": ("shape", "pattern"), "travel and places": ("travel", "places"),
    "objects": ("object", "thing"),
    # films
    "science fiction": ("sci-fi", "scifi", "space movie"), "comedy": ("funny", "comedic"),
    "romance": ("romantic", "love story"), "horror": ("scary", "creepy"), "animation": ("animated", "cartoon"),
    "documentary": ("doc", "real-life"), "thriller": ("suspense", "edge of my seat"),
    "crime": ("gangster", "detective"), "music": ("musical",), "family": ("for kids", "kid-friendly"),
    "fantasy": ("magical", "magic"), "mystery": ("whodunit",), "history": ("historical", "period"),
    "western": ("cowboy",), "action": ("action-packed",), "adventure": ("adventurous", "quest"),
    "drama": ("dramatic", "serious"), "war": ("war movie",), "tv movie": ("made for tv",),
    # clothes
    "t-shirt": ("tee", "tshirt"), "trousers": ("pants",), "sneakers": ("trainers",), "jumper": ("sweater",),
    "sweater": ("jumper",), "hoodie": ("hooded sweatshirt",), "jeans": ("denims",), "shoes": ("footwear",),
    # furniture and materials
    "sofa": ("couch", "settee"), "wardrobe": ("closet",), "wood": ("wooden", "timber"), "wooden": ("wood",),
    "metal": ("metallic", "steel"), "leather": ("leathery",), "cotton": ("cotton fabric",),
    # sizes
    "small": ("little", "tiny"), "large": ("big",), "medium": ("mid-sized",),
}

# Words people add that name nothing in a catalog (realistic profile).
FILLERS = ("kinda", "hmm,", "ok so", "honestly", "if you have it", "for my niece's birthday", "for a card",
           "nothing fancy", "cute", "I guess", "thanks!", "ideally")

ANSWER = ("{v}", "{v} please", "I'd like {v}", "{v} I think", "probably {v}", "{v} would be nice", "the {v} one",
          "{a}: {v}", "{v} {a}", "definitely {v}", "let's go with {v}", "hmm, {v}")
DONT_KNOW = ("I don't know", "not sure", "no idea", "hard to say", "dunno", "I'm not sure about the {a}")
DONT_CARE = ("any", "any is fine", "I don't mind", "doesn't matter", "whatever", "no preference",
             "any {a} is ok", "the {a} doesn't matter")
OPTIONS_MISSED = ("none of these", "none of those", "neither, sorry", "not any of these")
WISH = ("I'd like something {vs}", "do you have {vs}?", "show me {vs} ones", "{vs} please", "maybe something {vs}?",
        "what about {vs}", "I was hoping for {vs}")
OPENING_TEXT = ("I'm looking for something {vs}", "looking for {vs}", "need something {vs}", "hi! anything {vs}?",
                "find me something {vs}", "{vs}", "do you have anything {vs}?", "I want something {vs}")
OPENING_IMAGE = ("", "something like this", "like this", "similar please", "more like this one")
OPENING_IMAGE_CHANGE = ("like this but {vs}", "same but {vs}", "this in {vs}", "do you have this in {vs}?",
                        "something like this, but {vs}", "like this one, only {vs}")
LIKE_BUT = ("like the {o} but {vs}", "#{n} but {vs}", "I like number {n}, but in {vs}",
            "the {o} one is close, just {vs}", "{o} one but {vs} please", "closer to #{n}, but {vs}")
LIKE_BUT_NOT = ("like the {o} but not {vs}", "#{n} without the {vs}", "the {o} one but no {vs}",
                "number {n} is close but I don't want {vs}", "#{n} but not {vs}")
MORE_LIKE = ("more like #{n}", "closer to the {o}", "the {o} is closest", "more like number {n} please",
             "I like #{n} best")
NOT_ITEM = ("not #{n}", "definitely not the {o}", "not number {n}", "the {o} one is wrong")
REJECT_ALL = ("none of these", "nope", "not these", "none of them", "no, not quite", "these aren't it", "nah")
VAGUE = ("something cuter", "less busy please", "simpler", "more colourful", "brighter", "something else",
         "not really my style", "hmm, something different", "more fun")
ACCEPT = ("#{n} is it", "the {o} one!", "yes, number {n}", "that's it, #{n}", "found it: the {o} one",
          "perfect, #{n}")
GOODBYE = ("never mind, thanks", "I give up, thanks anyway", "let's stop here")
_TYPO_WORD = re.compile(r"[a-z]{5,}")


@dataclass(frozen=True)
class Line:
    """A line of the simulated user and what it means by it."""

    text: str
    intent: Intent


def plain(value: str) -> str:
    return " ".join(value.lower().replace("&", " and ").replace("_", " ").split())


def surface_forms(value: str) -> list[tuple[str, str]]:
    """(text, form) ways of saying ``value``; the exact value first (see the module docstring)."""
    forms: dict[str, str] = {value: "exact"}
    base = plain(value)
    for text in (base, base.replace("-", " "), base.replace("-", ""), value.upper() if len(value) <= 3 else base):
        forms.setdefault(text, "variant")
    for synonym in SYNONYMS.get(base, ()) + SYNONYMS.get(base.replace("-", " "), ()):
        forms.setdefault(synonym, "synonym")
    parts = [p.strip() for p in re.split(r"\band\b|/|,", base) if p.strip()]
    if len(parts) > 1:
        for part in parts:
            forms.setdefault(part, "part")
    return list(forms.items())


class Wording:
    """One simulated user's way of talking: seeded, with its profile's typo and filler rates."""

    def __init__(self, rng: random.Random, *, typo_rate: float = 0.0, filler_rate: float = 0.0,
                 exact_rate: float = 0.4) -> None:
        self.rng = rng
        self.typo_rate = typo_rate
        self.filler_rate = filler_rate
        self.exact_rate = exact_rate  # how often a value is said exactly as the catalog writes it

    # -- values ----------------------------------------------------------------------------------------

    def value(self, value: str) -> tuple[str, str]:
        """One way of saying ``value`` and its form label."""
        forms = surface_forms(value)
        text, form = forms[0] if self.rng.random() < self.exact_rate or len(forms) == 1 else self.rng.choice(forms[1:])
        if self.typo_rate and self.rng.random() < self.typo_rate:
            slipped = self.typo(text)
            if slipped != text:
                return slipped, "typo"
        return text, form

    def typo(self, text: str) -> str:
        """One slip of the fingers in a word of 5+ letters: swapped, dropped or doubled letter."""
        words = list(_TYPO_WORD.finditer(text))
        if not words:
            return text
        word = self.rng.choice(words)
        w, i = word.group(), self.rng.randrange(1, len(word.group()) - 2)
        slip = self.rng.choice(("swap", "drop", "double"))
        if slip == "swap":
            w = w[:i] + w[i + 1] + w[i] + w[i + 2:]
        elif slip == "drop":
            w = w[:i] + w[i + 1:]
        else:
            w = w[:i] + w[i] + w[i:]
        return text[:word.start()] + w + text[word.end():]

    def values(self, pairs: Sequence[tuple[str, str]]) -> tuple[str, tuple[str, ...]]:
        """Several values in one phrase, in the order given ("blue and cartoon", "blue, cartoon")."""
        said = [self.value(v) for _, v in pairs]
        joiner = self.rng.choice((" and ", ", ", " ")) if len(said) > 1 else ""
        return joiner.join(t for t, _ in said), tuple(f for _, f in said)

    # -- lines -----------------------------------------------------------------------------------------

    def line(self, kind: str, template: str, intent: Intent, *, pairs: Sequence[tuple[str, str]] = (),
             attribute: str = "", index: int | None = None) -> Line:
        """``template`` filled; the intent is labelled with the kind of phrase and the value forms."""
        text, forms = self.values(pairs) if pairs else ("", ())
        fields = {"vs": text, "v": text, "a": attribute.replace("_", " "), "n": "", "o": ""}
        if index is not None:
            fields["n"] = str(index + 1)
            fields["o"] = ORDINALS[index] if index < len(ORDINALS) else f"#{index + 1}"
        said = template.format(**fields)
        if self.filler_rate and self.rng.random() < self.filler_rate:
            filler = self.rng.choice(FILLERS)
            said = f"{filler} {said}" if filler.endswith(",") or self.rng.random() < 0.5 else f"{said}, {filler}"
            forms = (*forms, "filler")
        return Line(said.strip(" ,") or said, replace(intent, kind=kind, forms=tuple(dict.fromkeys(forms))))

    def pick(self, pool: Sequence[str], *, index: int | None = None) -> str:
        """A template of the pool; "#n"-only ones beyond the tenth position."""
        usable = [t for t in pool if "{o}" not in t or (index is not None and index < len(ORDINALS))]
        return self.rng.choice(usable)

    def answer(self, attribute: str, value: str) -> Line:
        return self.line("answer", self.pick(ANSWER), Intent(require={attribute: (value,)}),
                         pairs=[(attribute, value)], attribute=attribute)

    def dont_know(self, attribute: str) -> Line:
        return self.line("dont-know", self.pick(DONT_KNOW), Intent(dont_care=(attribute,)), attribute=attribute)

    def dont_care(self, attribute: str) -> Line:
        return self.line("dont-care", self.pick(DONT_CARE), Intent(dont_care=(attribute,)), attribute=attribute)

    def options_missed(self, attribute: str, offered: Sequence[str]) -> Line:
        """The target has a value of ``attribute``, none of those offered."""
        return self.line("none-of-the-options", self.pick(OPTIONS_MISSED),
                         Intent(exclude={attribute: tuple(offered)}), attribute=attribute)

    def wish(self, pairs: Sequence[tuple[str, str]]) -> Line:
        return self.line("wish", self.pick(WISH), _require(pairs), pairs=pairs)

    def opening(self, pairs: Sequence[tuple[str, str]], about: str = "") -> Line:
        """A text opening with the values; ``about`` (words of the catalog's text) is added as a
        person describes what the thing shows ("..., a cat"): no constraint meant."""
        line = self.line("opening-text", self.pick(OPENING_TEXT), _require(pairs), pairs=pairs)
        if not about:
            return line
        return Line(f"{line.text}, {about}", replace(line.intent, forms=(*line.intent.forms, "content-words")))

    def image_opening(self, pairs: Sequence[tuple[str, str]]) -> Line:
        """What goes with an uploaded picture: the change wanted, or just "like this"."""
        if pairs:
            return self.line("opening-image-change", self.pick(OPENING_IMAGE_CHANGE), _require(pairs), pairs=pairs)
        return self.line("opening-image", self.pick(OPENING_IMAGE), Intent())

    def like_but(self, index: int, pairs: Sequence[tuple[str, str]], *, negative: bool = False) -> Line:
        """"Like the second but blue" (or "... but not outline" with ``negative``)."""
        if negative:
            intent = Intent(exclude={a: (v,) for a, v in pairs})
            return self.line("like-but-not", self.pick(LIKE_BUT_NOT, index=index), intent, pairs=pairs, index=index)
        return self.line("like-but", self.pick(LIKE_BUT, index=index), _require(pairs), pairs=pairs, index=index)

    def more_like(self, index: int) -> Line:
        return self.line("more-like", self.pick(MORE_LIKE, index=index), Intent(), index=index)

    def not_item(self, index: int) -> Line:
        return self.line("not-item", self.pick(NOT_ITEM, index=index), Intent(), index=index)

    def reject_all(self) -> Line:
        return self.line("reject-all", self.pick(REJECT_ALL), Intent(reject_all=True))

    def vague(self) -> Line:
        """A critique with no value in it ("cuter"): whether it also rejects the page is open."""
        return self.line("vague", self.pick(VAGUE), Intent(reject_all=None))

    def accept(self, index: int) -> Line:
        return self.line("accept", self.pick(ACCEPT, index=index), Intent(accept=index), index=index)

    def goodbye(self) -> str:
        return self.rng.choice(GOODBYE)


def combine(*lines: Line) -> Line:
    """Lines as clauses of one message; the intent is their union, the kind the first's."""
    require: dict[str, tuple[str, ...]] = {}
    exclude: dict[str, tuple[str, ...]] = {}
    for line in lines:
        for attribute, values in line.intent.require.items():
            require[attribute] = require.get(attribute, ()) + tuple(values)
        for attribute, values in line.intent.exclude.items():
            exclude[attribute] = exclude.get(attribute, ()) + tuple(values)
    reject = [line.intent.reject_all for line in lines]
    intent = Intent(require=require, exclude=exclude, accept=next((x.intent.accept for x in lines
                                                                    if x.intent.accept is not None), None),
                    reject_all=True if True in reject else (None if None in reject else False),
                    dont_care=tuple(a for x in lines for a in x.intent.dont_care),
                    kind="+".join(dict.fromkeys(x.intent.kind for x in lines)),
                    forms=tuple(dict.fromkeys(f for x in lines for f in x.intent.forms)))
    return Line(", ".join(x.text for x in lines if x.text), intent)


def _require(pairs: Sequence[tuple[str, str]]) -> Intent:
    wanted: dict[str, tuple[str, ...]] = {}
    for attribute, value in pairs:
        wanted[attribute] = wanted.get(attribute, ()) + (value,)
    return Intent(require=wanted)
