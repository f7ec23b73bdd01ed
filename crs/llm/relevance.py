"""Which of the catalog's attribute values a prompt offers for one message.

A small model reads a short prompt better than a long one, and a CPU reads it faster: listing
every value of every attribute made the critique prompt ~750 tokens, which took minutes on two
busy cores. So the prompt (and the JSON schema its answer is held to, :mod:`crs.llm.schema`)
offers only what the message may be about:

* from small vocabularies (at most ``FULL_LIST`` values: colours, styles, decades), all values
  once the message names one of them (so the model sees the alternatives); a message that names
  no value ("none of these", "the second one", "something fun") is offered none: given a list,
  1.5B and smaller models filled "require" from it whatever the message said;
* from the larger ones, the values the message comes close to: a phrase of the message found
  in the catalog's lexicon (values, word forms, general synonyms: "scary" is not there, "comedies"
  is), a phrase within ``fuzz.ratio`` ``NEAR`` of a value (typos: "comdey"), or, given a text
  encoder, the values nearest the message by cosine;
* name-like attributes (a film's cast and directors: thousands of values no prompt can list)
  only where a phrase is a name, at ``NAME_NEAR``;
* numeric attributes when the message has a number or a comparing word ("newer", "under");
* the pending question's attribute with its options.

It also says which kinds of answer the message can hold (comparing, indifference, shown items),
so the schema leaves out keys a small model would otherwise fill at random.

Everything here is offline and takes a few milliseconds a message.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process

from crs.facts import AttributeInfo, CatalogFacts
from crs.turn import Question
from crs.understanding.lexicon import Lexicon, normalise
from crs.understanding.stopwords import STOPWORDS

from . import vocabulary

Encode = Callable[[Sequence[str]], np.ndarray]

FULL_LIST = 12  # vocabularies this small are listed whole: a dozen short words cost less than a miss
PER_ATTRIBUTE = 4  # at most this many values offered from a larger vocabulary
NEAR = 80  # fuzz.ratio of a phrase and a value for a typo ("comdey" ~ "comedy": 83.3)
NAME_NEAR = 88  # stricter for names: thousands of them, and "tom" is close to many
MIN_COSINE = 0.45  # encoder similarity of the message and a value, when an encoder is given
_INDIFFERENT = re.compile(r"\b(?:whatever|either|don'?t care|do not care|doesn'?t matter|does not matter|"
                          r"no preference|don'?t mind|do not mind|not sure|up to you|no matter|any is fine|"
                          r"any (?:will|would) do)\b")
_COMPARING = re.compile(r"\d|\b(?!(?:more|less) like\b)(?:\w+er|more|less|least|most|under|over|before|after|"
                        r"between|since|until|up|recent|old|new|latest|earliest|at least|at most|or so)\b")


@dataclass
class Offer:
    """The attributes and values one prompt lists, and so the only ones its schema allows."""

    values: dict[str, list[str]] = field(default_factory=dict)  # qualitative attribute -> offered values
    numbers: list[str] = field(default_factory=list)  # numeric attributes (ranges, more/less)
    named: dict[str, int] = field(default_factory=dict)  # attribute -> how many of its values the message names
    comparing: bool = False  # a number or a comparing word: ranges and relative critiques may apply
    indifferent: bool = False  # a question is pending or the message shrugs: dont_care may apply

    def attributes(self, facts: CatalogFacts) -> list[AttributeInfo]:
        """The offered attributes in the catalog's order."""
        offered = set(self.values) | set(self.numbers)
        return [info for info in facts.attributes.values() if info.name in offered]


class Relevance:
    """The :class:`Offer` for a message, over one catalog (built once, used every turn)."""

    def __init__(self, facts: CatalogFacts, encode: Encode | None = None) -> None:
        self.facts = facts
        talked = vocabulary.talked_about(facts)
        self.small = [i.name for i in talked if i.kind != "numeric" and len(i.values) <= FULL_LIST]
        self.large = [i.name for i in talked if i.kind != "numeric" and len(i.values) > FULL_LIST]
        self.numeric = [i.name for i in talked if i.kind == "numeric"]
        self.names = [i.name for i in facts.attributes.values()
                      if i.kind != "numeric" and i.name not in self.small + self.large and _look_like_names(i.values)]
        self.lexicon = Lexicon([facts.attributes[name] for name in self.small + self.large])
        self.keys = {name: [normalise(v) for v in facts.attributes[name].values] for name in self.large + self.names}
        self.surnames: dict[str, list[tuple[str, str]]] = {}  # "scorsese" -> [("director", "martin scorsese")]
        for name in self.names:
            for value, key in zip(facts.attributes[name].values, self.keys[name]):
                if len(key.split()) >= 2 and len(key.split()[-1]) >= 5:
                    self.surnames.setdefault(key.split()[-1], []).append((name, value))
        self.encode = encode
        self._vectors: dict[str, np.ndarray] = {}

    def offer(self, text: str, question: Question | None = None) -> Offer:
        words = [w for w in normalise(text).split() if w]
        phrases = {" ".join(words[i:i + n]) for n in (1, 2, 3) for i in range(len(words) - n + 1)}
        content = {p for p in phrases if not set(p.split()) <= STOPWORDS}
        content |= {_singular(p) for p in content}
        found: dict[str, list[str]] = {name: [] for name in self.small + self.large + self.names}
        for phrase in sorted(content, key=lambda p: (-len(p.split()), p)):
            for entry in self.lexicon.lookup_all(phrase):
                _add(found[entry.attribute], entry.value)
        for name in self.large:
            self._near(found[name], name, [p for p in content if len(p) >= 4], NEAR)
        for name in self.names:
            self._near(found[name], name, [p for p in content if len(p.split()) >= 2], NAME_NEAR)
        for phrase in content:
            for name, value in self.surnames.get(phrase, [])[:2]:  # values come most frequent first
                _add(found[name], value)
        if self.encode is not None and content:
            self._nearest(found, text)
        joined = " ".join(words)
        offer = Offer(comparing=bool(_COMPARING.search(joined)),
                      indifferent=question is not None or bool(_INDIFFERENT.search(joined)))
        offer.named = {name: len(values) for name, values in found.items() if values}
        for info in self.facts.attributes.values():
            if info.name in self.small and found[info.name]:
                offer.values[info.name] = list(info.values)
            elif found.get(info.name):
                offer.values[info.name] = found[info.name][:PER_ATTRIBUTE]
            elif info.kind == "numeric" and info.name in self.numeric and offer.comparing:
                offer.numbers.append(info.name)
        if question is not None and question.attribute in self.facts.attributes:
            info = self.facts.attributes[question.attribute]
            if info.kind == "numeric":
                offer.numbers = list(dict.fromkeys([*offer.numbers, info.name]))
            else:
                options = [o for o in question.options if o in info.values]
                offer.values[info.name] = list(dict.fromkeys([*offer.values.get(info.name, []), *options]))
        return offer

    def _near(self, out: list[str], name: str, phrases: list[str], cutoff: int) -> None:
        values, keys = self.facts.attributes[name].values, self.keys[name]
        for phrase in phrases:
            for _, score, index in process.extract(phrase, keys, scorer=fuzz.ratio, score_cutoff=cutoff, limit=2):
                _add(out, values[index])

    def _nearest(self, found: dict[str, list[str]], text: str) -> None:
        query = _unit(self.encode([text]))[0]
        for name in self.large:
            if name not in self._vectors:
                self._vectors[name] = _unit(self.encode(list(self.facts.attributes[name].values)))
            scores = self._vectors[name] @ query
            for index in np.argsort(-scores)[:2]:
                if scores[index] >= MIN_COSINE:
                    _add(found[name], self.facts.attributes[name].values[index])


def _add(out: list[str], value: str) -> None:
    if value not in out:
        out.append(value)


def _singular(phrase: str) -> str:
    """The last word without its plural ending: "comedies" -> "comedy", "westerns" -> "western"."""
    if re.search(r"[^aeiou]ies$", phrase):
        return phrase[:-3] + "y"
    if re.search(r"[^s]s$", phrase) and len(phrase) > 4:
        return phrase[:-1]
    return phrase


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


def _look_like_names(values: Sequence[str]) -> bool:
    """Mostly two or three words of letters (people), not keyword phrases or codes ("1f431")."""
    named = sum(1 for v in values if 2 <= len(v.split()) <= 3
                and all(w.replace(".", "").replace("-", "").isalpha() for w in v.split()))
    return bool(values) and named >= 0.6 * len(values)


def describe_offer(offer: Offer, facts: CatalogFacts, *, labels: bool = True) -> str:
    """One line per offered attribute: its name (and, with ``labels``, its label where it says
    more), and its values."""
    lines, numbers = [], []
    for info in offer.attributes(facts):
        name = info.name
        if labels and info.label and _plain(info.label) != _plain(info.name):
            name += f" ({info.label})"
        if info.kind == "numeric":
            numbers.append(name)
            continue
        values = offer.values[info.name]
        if info.order:
            ordered = [v for v in info.order if v in values]
            lines.append(f"- {name}: one of {' < '.join(ordered)} (low to high)")
        else:
            lines.append(f"- {name}: {'one of' if info.kind == 'categorical' else 'any of'} {', '.join(values)}")
    if numbers:  # one line for all: a line each made the films' prompt ~60 tokens longer
        lines.append(f"- numbers: {', '.join(numbers)}")
    return "\n".join(lines) or "(none)"


def _plain(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").split())
