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

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from retrieval.registry import Registry

from .belief import BeliefState
from .facts import CatalogFacts
from .policy import Ask
from .policy.base import ANY
from .search import SearchHit
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


def in_sentence(label: str) -> str:
    """A label inside a sentence: "Genre" -> "genre", but "MPAA rating" stays (an acronym)."""
    return label if len(label) > 1 and label[1].isupper() else label[:1].lower() + label[1:]


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
    """The question, with its options as examples ("any" goes without saying), in the catalog's
    words: the schema's label and display names, never the field's own name."""
    info = facts.attributes[ask.attribute]
    label = in_sentence(info.display_label)
    options = [info.display_value(o) for o in ask.options if o != ANY]
    return f"Which {label} would you like? For example {', '.join(options[:-1])} or {options[-1]}." \
        if len(options) > 1 else f"Would you like {label} {options[0]}?"


def reason(hit: SearchHit, belief: BeliefState, facts: CatalogFacts | None = None) -> str:
    """One line on why an item is shown: the wishes it meets (by their display names, given
    ``facts``) and what it resembles."""
    met = []
    for attribute, values in belief.require.items():
        value = hit.attributes.get(attribute)
        have = [v for v in values if (v in value if isinstance(value, list) else v == value)]
        info = facts.attributes.get(attribute) if facts is not None else None
        met += [info.display_value(v) for v in have] if info is not None else have
    bits = []
    if met:
        bits.append(", ".join(met[:3]))
    if belief.image_vectors is not None and hit.parts.get("image", 0) + hit.parts.get("visual", 0) > 0.3:
        bits.append("looks like your picture")
    if belief.liked:
        bits.append("close to what you liked")
    if belief.texts and hit.parts.get("text", 0) > 0.15:
        bits.append(f"matches \u201c{belief.texts[-1]}\u201d")
    # Only the first letter is raised: capitalize() would lower "PG-13" or "Sci-Fi" after it.
    text = "; ".join(bits)
    return text[:1].upper() + text[1:] if text else "One of the closest matches"


def reply_items(hits: list[SearchHit], belief: BeliefState, facts: CatalogFacts | None = None) -> list[ReplyItem]:
    """The items of a reply, each with its reason."""
    return [ReplyItem(h.id, h.title, h.image, h.score, reason(h, belief, facts), h.item_id) for h in hits]
