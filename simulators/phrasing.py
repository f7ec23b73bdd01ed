"""How the agenda user says things: pools of templates, chosen with the conversation's seeded
random generator so that two conversations do not read alike.

Every template is written in words the rule parser (:mod:`crs.understanding.rule_parser`) understands,
and each filled phrase carries its *intent*: the :class:`~crs.turn.Critique` the parser must read
from it. ``tests/test_simulators.py`` parses every template; at run time the agenda user also
checks each phrase (:func:`understood`) and takes the next template, or a plainer form, when a
catalog's value happens to collide with a control word. What is measured is then the policy
and the retrieval, not the parser's luck with one value.

Words outside the parser's stop words would become a soft text wish, so templates use only
stop words around the values ("I would like blue", not "blue, I reckon").
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from crs.understanding.rule_parser import ORDINALS
from crs.policy.base import ANY
from crs.turn import Critique, Reference

# -- pools ----------------------------------------------------------------------------------------
# Placeholders: {value} one attribute value; {values} several joined by "and"; {n} a 1-based
# position; {ordinal} its word ("second").

ANSWER = ("{value}", "{value} please", "I want {value}", "maybe {value}", "I would like {value}", "{value}, please")
DONT_KNOW = ("I don't know", "not sure", "no idea", "hmm, not sure")
DONT_CARE = (ANY, "any is fine", "I don't mind", "doesn't matter", "whatever", "no preference")
WISH = ("{values} please", "I want something {values}", "something {values}", "show me {values}",
        "I would like {values}")
OPENING_TEXT = ("I'm looking for something {values}", "show me {values}", "I want something {values}",
                "{values} please", "looking for {values}", "find me something {values}")
OPENING_IMAGE = ("", "something like this", "like this", "similar to this please")
OPENING_IMAGE_CHANGE = ("like this but {values}", "this, but {values}", "same as this but {values}",
                        "but in {values}", "similar to this, in {values}")
LIKE_BUT = ("like the {ordinal} but {values}", "I like #{n}, but {values}", "more like the {ordinal}, but {values}",
            "like #{n} but in {values}", "similar to the {ordinal} one but {values}")
LIKE_BUT_NOT = ("like the {ordinal} but not {values}", "I like #{n}, but no {values}",
                "like #{n} but without {values}", "similar to the {ordinal} one, but not {values}")
MORE_LIKE = ("more like #{n}", "more like the {ordinal} one", "I like the {ordinal} one", "similar to #{n} please")
NOT_ITEM = ("not #{n}", "not the {ordinal} one", "no #{n}")
REJECT_ALL = ("none of these", "not what I want", "nope", "something else", "none of them")
ACCEPT = ("#{n} is it", "the {ordinal} one is perfect", "I'll take #{n}", "#{n} is the one", "yes! #{n} is it",
          "found it: #{n}")
GOODBYE = ("never mind, thanks", "I give up, thanks anyway", "let's stop here")

_ORDINAL_WORDS = {index: word for word, index in reversed(ORDINALS.items()) if word.isalpha() and word != "top"}


@dataclass(frozen=True)
class Phrase:
    """A line of the simulated user and what the rule parser must understand from it."""

    text: str
    intent: Critique = field(default_factory=Critique)


def fill(template: str, *, values: Sequence[str] = (), index: int | None = None) -> str:
    """A template with its placeholders filled; ``index`` is 0-based (the parser's reference)."""
    fields: dict[str, str] = {"values": " and ".join(values), "value": values[0] if values else ""}
    if index is not None:
        fields["n"] = str(index + 1)
        fields["ordinal"] = _ORDINAL_WORDS.get(index, "")
    return template.format(**fields)


def usable(template: str, index: int | None) -> bool:
    """Ordinal words exist for the first ten positions; beyond, only "#n" templates fit."""
    return "{ordinal}" not in template or (index is not None and index in _ORDINAL_WORDS)


def shuffled(rng: random.Random, pool: Sequence[str], index: int | None = None) -> list[str]:
    """The pool's usable templates in a seeded random order: the first is the preferred one."""
    out = [t for t in pool if usable(t, index)]
    rng.shuffle(out)
    return out


def values_intent(pairs: Sequence[tuple[str, str]], *, exclude: bool = False) -> Critique:
    target: dict[str, list[str]] = {}
    for attribute, value in pairs:
        target.setdefault(attribute, []).append(value)
    return Critique(exclude=target) if exclude else Critique(require=target)


def combine(*phrases: Phrase) -> Phrase:
    """Phrases as clauses of one message (the parser splits clauses at commas)."""
    texts = [p.text for p in phrases if p.text]
    intent = Critique()
    for phrase in phrases:
        for attribute, values in phrase.intent.require.items():
            intent.require.setdefault(attribute, []).extend(values)
        for attribute, values in phrase.intent.exclude.items():
            intent.exclude.setdefault(attribute, []).extend(values)
        intent.references.extend(phrase.intent.references)
        intent.dont_care.extend(phrase.intent.dont_care)
        intent.reject_all = intent.reject_all or phrase.intent.reject_all
        if phrase.intent.accept is not None:
            intent.accept = phrase.intent.accept
    return Phrase(", ".join(texts), intent)


# -- phrase makers: every usable template, preferred first ------------------------------------------

def answers(rng: random.Random, attribute: str, value: str) -> list[Phrase]:
    return [Phrase(fill(t, values=[value]), values_intent([(attribute, value)])) for t in shuffled(rng, ANSWER)]


def dont_know(rng: random.Random, attribute: str) -> list[Phrase]:
    return [Phrase(t, Critique(dont_care=[attribute])) for t in shuffled(rng, DONT_KNOW)]


def dont_care(rng: random.Random, attribute: str) -> list[Phrase]:
    return [Phrase(t, Critique(dont_care=[attribute])) for t in shuffled(rng, DONT_CARE)]


def wishes(rng: random.Random, pairs: Sequence[tuple[str, str]]) -> list[Phrase]:
    return _with_values(rng, WISH, pairs)


def openings(rng: random.Random, pairs: Sequence[tuple[str, str]]) -> list[Phrase]:
    return _with_values(rng, OPENING_TEXT, pairs)


def image_openings(rng: random.Random, pairs: Sequence[tuple[str, str]]) -> list[Phrase]:
    """What goes with an uploaded picture: the change wanted, or just "like this"."""
    if pairs:
        return _with_values(rng, OPENING_IMAGE_CHANGE, pairs)
    return [Phrase(t) for t in shuffled(rng, OPENING_IMAGE)]


def like_but(rng: random.Random, index: int, pairs: Sequence[tuple[str, str]], *,
             negative: bool = False) -> list[Phrase]:
    """"Like the second but blue" (or "... but not outline" with ``negative``)."""
    pool = LIKE_BUT_NOT if negative else LIKE_BUT
    values = [v for _, v in pairs]
    intent = values_intent(pairs, exclude=negative)
    intent.references.append(Reference(index, True))
    return [Phrase(fill(t, values=values, index=index), intent) for t in shuffled(rng, pool, index)]


def more_like(rng: random.Random, index: int) -> list[Phrase]:
    return [Phrase(fill(t, index=index), Critique(references=[Reference(index, True)]))
            for t in shuffled(rng, MORE_LIKE, index)]


def not_item(rng: random.Random, index: int) -> list[Phrase]:
    return [Phrase(fill(t, index=index), Critique(references=[Reference(index, False)]))
            for t in shuffled(rng, NOT_ITEM, index)]


def reject_all(rng: random.Random) -> list[Phrase]:
    return [Phrase(t, Critique(reject_all=True)) for t in shuffled(rng, REJECT_ALL)]


def accept(rng: random.Random, index: int) -> list[Phrase]:
    return [Phrase(fill(t, index=index), Critique(accept=index)) for t in shuffled(rng, ACCEPT, index)]


def goodbye(rng: random.Random) -> str:
    return rng.choice(GOODBYE)


def _with_values(rng: random.Random, pool: Sequence[str], pairs: Sequence[tuple[str, str]]) -> list[Phrase]:
    values = [v for _, v in pairs]
    return [Phrase(fill(t, values=values), values_intent(pairs)) for t in shuffled(rng, pool)]


def understood(parsed: Critique, intent: Critique) -> bool:
    """The parser read exactly the intent (soft leftover words aside: they only nudge the query)."""
    return (parsed.require == intent.require and parsed.exclude == intent.exclude
            and parsed.references == intent.references and parsed.accept == intent.accept
            and parsed.reject_all == intent.reject_all and sorted(parsed.dont_care) == sorted(intent.dont_care)
            and not parsed.relative)
