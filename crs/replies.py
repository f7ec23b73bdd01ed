"""Reply wording: the reply sentence (a swappable :class:`ReplyWriter`), the question's text and
the one-line reason on each shown item.

The dialogue manager decides what a reply says (a :class:`ReplyDraft`: ask this, show these,
tell the person that an image was broken); a writer puts it into words. Writers are chosen by
name through :data:`REPLY_WRITERS`: ``templates`` (the default, fixed English sentences) and
``fake`` (fixed or echoed text, for tests). A separate package adds one through the
entry-point group ``crs.reply_writers`` (see retrieval/registry.py). A model-backed writer
that fails raises :class:`crs.errors.StageFailure`; the turn then takes the templates' text.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from retrieval.registry import Registry

from .belief import BeliefState
from .facts import CatalogFacts, in_sentence
from .policy import Ask
from .policy.base import ANY
from .search import SearchHit
from .understanding.stopwords import STOPWORDS
from .turn import Action, Question, ReplyItem


@dataclass(frozen=True)
class ReplyDraft:
    """What one reply must say, before it is worded."""

    action: Action  # "answer" (the person took an item), "ask" or "recommend"
    notes: tuple[str, ...] = ()  # problems the person is told about (a broken image), already worded
    caption: str | None = None  # what the first picture of the message shows; None without pictures
    question: Question | None = None  # "ask": the question, with its text from :func:`question_text`
    items: tuple[ReplyItem, ...] = ()  # "recommend": the items shown (maybe none); "answer": the one taken
    reject_all: bool = False  # the person turned down the last items shown ("none of these")


class ReplyWriter(ABC):
    """Words a reply."""

    name: str = "writer"

    @abstractmethod
    def write(self, draft: ReplyDraft) -> str:
        """The reply's text for ``draft``."""


class TemplateReplyWriter(ReplyWriter):
    """Fixed English sentences: what the person was told about their message, then the question
    or a sentence on the items shown."""

    name = "templates"

    def write(self, draft: ReplyDraft) -> str:
        if draft.action == "answer":
            return f"Great choice: \u201c{draft.items[0].title}\u201d. Anything else I can find for you?"
        prefix = " ".join(draft.notes)
        if draft.caption is not None:
            prefix = (prefix + " " if prefix else "") + f"I see {draft.caption}."
        if draft.action == "ask":
            assert draft.question is not None
            text = draft.question.text
        elif not draft.items:
            text = "Nothing in the catalog matches all of that. Could you drop one of your wishes?"
        elif draft.reject_all:
            text = f"Sorry about those. How about these {len(draft.items)}?"
        else:
            text = f"Here {'is' if len(draft.items) == 1 else 'are'} {len(draft.items)} I think you will like."
        return f"{prefix} {text}".strip()


class FakeReplyWriter(ReplyWriter):
    """For tests: ``fake:TEXT`` always says TEXT; plain ``fake`` echoes the draft in a fixed form
    ("ask colour", "recommend 3: a, b, c", "recommend 0"). Every draft written is kept in :attr:`drafts`."""

    name = "fake"

    def __init__(self, text: str | None = None) -> None:
        self.text = text
        self.drafts: list[ReplyDraft] = []

    def write(self, draft: ReplyDraft) -> str:
        self.drafts.append(draft)
        if self.text is not None:
            return self.text
        if draft.action == "ask":
            assert draft.question is not None
            return f"ask {draft.question.attribute}"
        listed = f": {', '.join(item.id for item in draft.items)}" if draft.items else ""
        return f"{draft.action} {len(draft.items)}{listed}"


# factory(arg, **context) -> ReplyWriter; arg follows "name:" in the spec, or is None.
REPLY_WRITERS: Registry[ReplyWriter] = Registry("reply writer", "crs.reply_writers")
REPLY_WRITERS.register("templates", lambda arg, **_: TemplateReplyWriter())
REPLY_WRITERS.register("fake", lambda arg, **_: FakeReplyWriter(arg), "fake[:TEXT]")


def load_reply_writer(spec: str = "templates", **context: Any) -> ReplyWriter:
    return REPLY_WRITERS.create(spec, **context)


def option_text(facts: CatalogFacts, attribute: str, option: str) -> str:
    """An option as a person reads it (a button, a list in a sentence): the value's display name;
    the value itself stays the option (what a click sends back)."""
    if option == ANY:
        return option
    info = facts.attributes.get(attribute)
    return info.display_value(option) if info is not None else option


def question_labels(facts: CatalogFacts | None, attribute: str, options: list[str]) -> dict[str, Any]:
    """``{label, option_labels}``: the attribute's and each option's text for people, for clients
    that show buttons (the options stay values, as the API's contract has them)."""
    info = facts.attributes.get(attribute) if facts is not None else None
    if info is None:
        return {"label": attribute.replace("_", " "), "option_labels": list(options)}
    return {"label": info.display_label, "option_labels": [option_text(facts, attribute, o) for o in options]}


def question_text(facts: CatalogFacts, ask: Ask) -> str:
    """The question in words, naming the attribute by the catalog's label (never the field's own
    name). The options are not repeated here: every client shows them once, as buttons or a
    numbered list (``question.options`` / ``option_labels``); a question with one real option
    names it, since then the question is about that value."""
    info = facts.attributes[ask.attribute]
    label = in_sentence(info.display_label)
    options = [info.display_value(o) for o in ask.options if o != ANY]
    return f"Would you like {label} {options[0]}?" if len(options) == 1 else f"Which {label} would you like?"


@dataclass(frozen=True)
class Resemblance:
    """How much a shown item looks like what the person showed or liked (cosines), measured by the
    dialogue manager in the index's spaces; None where there is nothing to compare with."""

    picture: float | None = None  # to the uploaded picture, in the raw visual space
    liked: float | None = None  # to the closest liked item, in the space the choice model uses


# Cosine in the raw visual space above which an item "looks like your picture": the 98th
# percentile of random demo pairs is 0.62, the median of one emoji drawn in two styles 0.70.
LOOKS_LIKE_PICTURE = 0.65
# Cosine in the joint image space above which an item is "close to what you liked": the 99th
# percentile of random demo pairs is 0.61; one emoji in two styles is 0.86 or more in 90%.
CLOSE_TO_LIKED = 0.65
_WORD = re.compile(r"[a-z0-9]+")


def _stem(word: str) -> str:
    """A crude stem, the same on both sides of a comparison: "sleepy", "sleeping" and "sleeps"
    -> "sleep"; "cats" -> "cat"; "berries" -> "berr"."""
    for suffix in ("ies", "ing", "ed", "es", "s", "y"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[:-len(suffix)]
    return word


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def item_words(hit: SearchHit, facts: CatalogFacts | None) -> set[str]:
    """Stems of every word the item's title and attribute values (and their display names) hold:
    what a text wish is checked against."""
    texts = [hit.title]
    for attribute, value in hit.attributes.items():
        info = facts.attributes.get(attribute) if facts is not None else None
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str):
                texts += [v, info.display_value(v)] if info is not None else [v]
    return {_stem(w) for text in texts for w in _WORD.findall(text.lower())}


def _display(facts: CatalogFacts | None, attribute: str, value: str) -> str:
    info = facts.attributes.get(attribute) if facts is not None else None
    return info.display_value(value) if info is not None else value


def _label(facts: CatalogFacts | None, attribute: str) -> str:
    info = facts.attributes.get(attribute) if facts is not None else None
    return in_sentence(info.display_label if info is not None else attribute.replace("_", " "))


def _has(value: Any, wanted: str) -> bool:
    return wanted in value if isinstance(value, list) else wanted == value


def _held(facts: CatalogFacts | None, attribute: str, value: Any) -> str:
    """What the item has for ``attribute``, in words ("yellow and orange"; "none" when nothing)."""
    values = value if isinstance(value, list) else [] if value is None else [value]
    names = [format(v, "g") if isinstance(v, float) else _display(facts, attribute, str(v)) for v in values]
    return " and ".join(names[:2]) if names else "none"


def reason(hit: SearchHit, belief: BeliefState, facts: CatalogFacts | None = None,
           resemblance: Resemblance | None = None) -> str:
    """One line on why an item is shown, true of this item against the current wishes: the
    stated values it has, the ones it lacks (with what it has instead), values it has that were
    ruled out, how much of each free-text wish its own words hold, and that it looks like the
    person's picture or what they liked only when the measured resemblance says so."""
    met: list[str] = []
    unmet: list[str] = []
    for attribute, values in belief.require.items():
        value = hit.attributes.get(attribute)
        have = [v for v in values if _has(value, v)]
        missing = [v for v in values if v not in have]
        met += [_display(facts, attribute, v) for v in have]
        if missing and (not have or attribute in belief.all_of):
            wanted = " or ".join(_display(facts, attribute, v) for v in missing)
            unmet.append(f"{_label(facts, attribute)} {_held(facts, attribute, value)}, not {wanted}")
    for attribute, values in belief.exclude.items():
        value = hit.attributes.get(attribute)
        unmet += [f"{_display(facts, attribute, v)}, which you ruled out" for v in values if _has(value, v)]
    for attribute, (low, high) in belief.bounds.items():
        value = hit.attributes.get(attribute)
        if isinstance(value, (int, float)) and facts is not None and facts.attributes.get(attribute) is not None \
                and facts.attributes[attribute].kind == "numeric":
            inside = (low is None or value > low) and (high is None or value < high)
            (met if inside else unmet).append(f"{_label(facts, attribute)} {value:g}"
                                              + ("" if inside else ", outside what you asked"))
    words = item_words(hit, facts)
    texts: list[str] = []
    for text in reversed(belief.texts[-2:]):  # the latest wishes; older ones have faded from the query
        wish = _words(text)
        held = [w for w in wish if _stem(w) in words]
        if wish and len(held) == len(wish):
            texts.append(f"matches \u201c{text}\u201d")
        elif held:
            lacking = [w for w in wish if w not in held]
            texts.append(f"\u201c{' '.join(held)}\u201d but not \u201c{' '.join(lacking)}\u201d")
    bits = []
    if met:
        bits.append(", ".join(met[:3]))
    bits += texts
    if resemblance is not None and resemblance.picture is not None and resemblance.picture >= LOOKS_LIKE_PICTURE:
        bits.append("looks like your picture")
    if resemblance is not None and resemblance.liked is not None and resemblance.liked >= CLOSE_TO_LIKED:
        bits.append("close to what you liked")
    bits += unmet[:2]
    # Only the first letter is raised: capitalize() would lower "PG-13" or "Sci-Fi" after it.
    text = "; ".join(bits)
    return text[:1].upper() + text[1:] if text else "One of the closest matches"


TITLE_SEPARATOR = " \u00b7 "  # "kissing cat · 3D"
TITLE_ATTRIBUTES = 2  # attributes a repeated title may carry before namesakes are numbered


def distinct_titles(hits: list[SearchHit], facts: CatalogFacts | None = None) -> list[str]:
    """Each hit's title; where titles repeat within the list, each carries what tells it apart
    from its namesakes ("kissing cat · Flat", "kissing cat · 3D"): the values, by their display
    names, of up to :data:`TITLE_ATTRIBUTES` attributes picked greedily (the one separating most
    namesakes first; values before numbers, single values before lists, then the schema's order),
    and which namesake it is ("version 2") where they do not tell all apart."""
    titles = [h.title for h in hits]
    groups: dict[str, list[int]] = {}
    for n, title in enumerate(titles):
        groups.setdefault(title.strip().lower(), []).append(n)
    order = list(facts.attributes) if facts is not None else []
    for members in groups.values():
        if len(members) < 2:
            continue
        names = {a for n in members for a in hits[n].attributes}
        listed = [a for a in order if a in names] + sorted(names - set(order))

        def words(n: int, attribute: str) -> str:
            value = hits[n].attributes.get(attribute)
            held = _held(facts, attribute, value)
            # A number needs its name to mean anything beside a title ("year 1948").
            return f"{_label(facts, attribute)} {held}" if isinstance(value, (int, float)) else held

        def rank(attribute: str) -> tuple[int, int, int, int]:
            is_number = any(isinstance(hits[n].attributes.get(attribute), (int, float)) for n in members)
            is_list = any(isinstance(hits[n].attributes.get(attribute), list) for n in members)
            return int(is_number), -len({words(n, attribute) for n in members}), int(is_list), listed.index(attribute)

        chosen: list[str] = []
        tags: dict[int, tuple[str, ...]] = {n: () for n in members}
        for attribute in sorted((a for a in listed if not _is_keywords(facts, a)), key=rank):
            if len(chosen) == TITLE_ATTRIBUTES or len(set(tags.values())) == len(members):
                break
            extended = {n: tags[n] + (words(n, attribute),) for n in members}
            if len(set(extended.values())) > len(set(tags.values())):
                chosen.append(attribute)
                tags = extended
        for number, n in enumerate(members, start=1):
            tag = ", ".join(tags[n])
            if sum(tags[m] == tags[n] for m in members) > 1:
                # Nothing the catalog records tells these apart (two drawings of one subject in
                # one set): say which of the namesakes it is.
                tag = (tag + ", " if tag else "") + f"version {number}"
            titles[n] = f"{hits[n].title}{TITLE_SEPARATOR}{tag}"
    return titles


def _is_keywords(facts: CatalogFacts | None, attribute: str) -> bool:
    """Free keywords and other attributes nobody is asked about (an emoji's code point) tell items
    apart, but not in words a title should show; numbers (a film's year) do."""
    if facts is None or attribute not in facts.attributes:
        return False
    info = facts.attributes[attribute]
    return info.kind != "numeric" and info.name not in {a.name for a in facts.askable()}


def reply_items(hits: list[SearchHit], belief: BeliefState, facts: CatalogFacts | None = None,
                resemblance: dict[int, Resemblance] | None = None) -> list[ReplyItem]:
    """The items of a reply, each with its reason and a title that tells it from the others."""
    resemblance = resemblance or {}
    titles = distinct_titles(hits, facts)
    return [ReplyItem(h.id, title, h.image, h.score, reason(h, belief, facts, resemblance.get(h.item_id)), h.item_id)
            for h, title in zip(hits, titles)]
