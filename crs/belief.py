"""What the system believes the person wants, updated turn by turn; JSON-serialisable, so a
session resumes after a restart exactly where it was.

* constraints: ``require`` (attribute -> wanted values, any of them; all of them for the
  attributes in ``all_of``) and ``exclude`` (unwanted values), plus ``bounds`` from relative
  critiques ("newer than the first": added_in > its value) and stated ranges ("from the 90s");
* soft preferences: free texts (the latest few form the text query);
* the composed query: uploaded images (their joint-space and raw visual vectors) + the text +
  liked and disliked items (Rocchio feedback, see :mod:`retrieval.multimodal`);
* bookkeeping: attributes asked, attributes the person does not care about, items shown.

Contradictions resolve in favour of the latest message: requiring a value removes it from the
excluded ones and the other way round; a new requirement on an attribute replaces the old one;
liking an item un-dislikes it. A wish that no item meets together with a new message's wishes was
about something else and is dropped (:meth:`BeliefState.drop_topic`; which ones:
:meth:`crs.posterior.Posterior.stale_wishes`). A shown item named beside a change ("the second
one, but blue") is a pick.

Constraints are *soft-hard*: retrieval filters by them, but the posterior (:mod:`crs.posterior`)
only multiplies a violating item by a small factor, so one wrong answer does not lose the item
for good.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .facts import CatalogFacts
from .turn import Critique

MAX_TEXTS = 3  # soft texts kept for the text query: older wishes fade
_EDGE = 1e-6  # an inclusive range end as an exclusive bound


def _pack(vectors: np.ndarray | None) -> dict[str, Any] | None:
    if vectors is None:
        return None
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    return {"shape": list(arr.shape), "b64": base64.b64encode(arr.tobytes()).decode()}


def _unpack(data: dict[str, Any] | None) -> np.ndarray | None:
    if not data:
        return None
    return np.frombuffer(base64.b64decode(data["b64"]), dtype=np.float32).reshape(data["shape"]).copy()


@dataclass
class BeliefState:
    require: dict[str, list[str]] = field(default_factory=dict)
    exclude: dict[str, list[str]] = field(default_factory=dict)
    all_of: list[str] = field(default_factory=list)  # attributes whose required values must all hold
    bounds: dict[str, list[float | None]] = field(default_factory=dict)  # attribute -> [low, high], exclusive
    texts: list[str] = field(default_factory=list)
    image_vectors: np.ndarray | None = None  # (m, d) joint space
    visual_vectors: np.ndarray | None = None  # (m, d_visual)
    image_captions: list[str] = field(default_factory=list)
    image_attributes: dict[str, list[str]] = field(default_factory=dict)  # what the reader saw, soft
    liked: list[int] = field(default_factory=list)
    disliked: list[int] = field(default_factory=list)
    shown: list[int] = field(default_factory=list)  # every item shown, in order
    # Each time the person pointed at one shown item as the closest ("more like #2"): [the items
    # shown then, the one picked]; the posterior weighs candidates by it (crs.choice).
    picks: list[list[Any]] = field(default_factory=list)
    last_shown: list[int] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)
    dont_care: list[str] = field(default_factory=list)
    accepted: int | None = None
    question: dict[str, Any] | None = None  # the question last asked, {attribute, options}, until answered
    turns: int = 0
    last_action: str | None = None  # the last reply's action ("ask", "recommend", "answer")
    # How the person answered pages (messages after a "recommend" reply): [said what was wrong or
    # what to change, bare rejections]; accepts are not counted. Policies weigh pages by it.
    page_replies: list[int] = field(default_factory=lambda: [0, 0])

    # -- updates ---------------------------------------------------------------------------------

    def apply(self, critique: Critique, facts: CatalogFacts) -> None:
        """Fold one message's understanding in; the latest message wins any contradiction."""
        for attribute, values in critique.require.items():
            self.require[attribute] = list(dict.fromkeys(values))
            self._drop(self.exclude, attribute, values)
            self._forget(self.dont_care, attribute)
            self._forget(self.all_of, attribute)
            if attribute in critique.all_of and len(self.require[attribute]) > 1:
                self.all_of.append(attribute)
        for attribute, values in critique.exclude.items():
            current = self.exclude.setdefault(attribute, [])
            current.extend(v for v in values if v not in current)
            self._drop(self.require, attribute, values)
        for attribute in critique.dont_care:
            self.require.pop(attribute, None)
            self.exclude.pop(attribute, None)
            self.bounds.pop(attribute, None)
            self._forget(self.all_of, attribute)
            if attribute not in self.dont_care:
                self.dont_care.append(attribute)
        # A shown item named beside a change ("the second one, but blue") is the one to go on
        # from: a pick, as "like the second one but blue" is.
        changes = bool(critique.require or critique.exclude or critique.ranges or critique.relative
                       or critique.text.strip())
        for reference in critique.references:
            item = self._shown_at(reference.index)
            if item is not None and (reference.liked is True or (reference.liked is None and changes)):
                self.like(item)
            elif item is not None and reference.liked is False:
                self.dislike(item)
        for attribute, (low, high) in critique.ranges.items():
            # Stated ranges are inclusive ("from 1990 to 1999"); bounds are exclusive.
            self.bounds[attribute] = [None if low is None else low - _EDGE, None if high is None else high + _EDGE]
            self._forget(self.dont_care, attribute)
        for relative in critique.relative:
            self._bound(relative.attribute, relative.direction, relative.reference, facts)
        if critique.reject_all:
            for item in self.last_shown:
                if item not in self.liked:
                    self.dislike(item)
        if critique.accept is not None:
            self.accepted = self._shown_at(critique.accept)
        if critique.text.strip():
            self.texts = (self.texts + [critique.text.strip()])[-MAX_TEXTS:]

    def drop_topic(self, texts: list[str], attributes: list[str]) -> None:
        """Forget wishes about something the person has moved on from (see
        :meth:`crs.posterior.Posterior.stale_wishes`): those texts and requirements, and the liked
        items and picks that pulled towards it. Dislikes stay: those items are still not wanted."""
        if not texts and not attributes:
            return
        self.texts = [t for t in self.texts if t not in texts]
        for attribute in attributes:
            self.require.pop(attribute, None)
            self._forget(self.all_of, attribute)
        self.liked, self.picks = [], []

    def add_images(self, joint: np.ndarray, visual: np.ndarray | None, captions: list[str],
                   attributes: dict[str, list[str]]) -> None:
        """New uploads replace earlier ones: "like this" refers to the latest picture."""
        self.image_vectors = np.asarray(joint, dtype=np.float32)
        self.visual_vectors = None if visual is None else np.asarray(visual, dtype=np.float32)
        self.image_captions = list(captions)
        self.image_attributes = dict(attributes)

    def like(self, item: int) -> None:
        """The person likes a shown item: it is a pick among the items shown with it (if several)."""
        self._forget(self.disliked, item)
        if item not in self.liked:
            self.liked.append(item)
        pick = [list(self.last_shown), item]
        if item in self.last_shown and len(self.last_shown) > 1 and pick not in self.picks:
            self.picks.append(pick)

    def dislike(self, item: int) -> None:
        self._forget(self.liked, item)
        if item not in self.disliked:
            self.disliked.append(item)

    def record_shown(self, items: list[int]) -> None:
        self.last_shown = list(items)
        self.shown.extend(i for i in items if i not in self.shown)

    def record_question(self, attribute: str) -> None:
        if attribute not in self.asked:
            self.asked.append(attribute)

    def _shown_at(self, index: int) -> int | None:
        return self.last_shown[index] if 0 <= index < len(self.last_shown) else None

    def _bound(self, attribute: str, direction: int, reference: int | None, facts: CatalogFacts) -> None:
        item = self._shown_at(reference) if reference is not None else (self.last_shown[0] if self.last_shown else None)
        if item is None:
            return
        value = float(facts.ranks(attribute, [item])[0])
        if np.isnan(value):
            return
        low, high = self.bounds.get(attribute, [None, None])
        if direction > 0:
            low = value
            high = None if high is not None and high <= value else high
        else:
            high = value
            low = None if low is not None and low >= value else low
        self.bounds[attribute] = [low, high]

    @staticmethod
    def _drop(mapping: dict[str, list[str]], attribute: str, values: list[str]) -> None:
        if attribute in mapping:
            mapping[attribute] = [v for v in mapping[attribute] if v not in values]
            if not mapping[attribute]:
                del mapping[attribute]

    @staticmethod
    def _forget(items: list, value: object) -> None:
        if value in items:
            items.remove(value)

    # -- reading it -------------------------------------------------------------------------------

    @property
    def settled(self) -> set[str]:
        """Attributes with a known answer: asking about them again would waste a turn."""
        return set(self.require) | set(self.dont_care)

    def liked_unpicked(self) -> list[int]:
        """Liked items that are not picks among shown items: those pull the query (Rocchio);
        picks weigh candidates through the choice model instead (crs.choice)."""
        picked = {item for _, item in self.picks}
        return [i for i in self.liked if i not in picked]

    def query_text(self) -> str | None:
        """The soft texts plus required values, as one text for the joint space."""
        words = self.texts + [v for values in self.require.values() for v in values]
        text = " ".join(words).strip()
        return text or None

    def summary(self) -> str:
        parts = []
        if self.image_captions:
            parts.append("picture: " + "; ".join(self.image_captions))
        if self.texts:
            parts.append("wishes: " + "; ".join(self.texts))
        parts += [f"{a} = {(' and ' if a in self.all_of else ' or ').join(v)}" for a, v in self.require.items()]
        parts += [f"{a} not {' or '.join(v)}" for a, v in self.exclude.items()]
        parts += [f"{a} {'>' + format(lo, 'g') if lo is not None else ''}{' <' + format(hi, 'g') if hi is not None else ''}"
                  for a, (lo, hi) in self.bounds.items()]
        if self.dont_care:
            parts.append("no preference on " + ", ".join(self.dont_care))
        if self.liked or self.disliked:
            parts.append(f"{len(self.liked)} liked, {len(self.disliked)} disliked items")
        return "; ".join(parts) or "nothing yet"

    # -- storage ----------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "require": self.require, "exclude": self.exclude, "all_of": self.all_of, "bounds": self.bounds, "texts": self.texts,
            "images": _pack(self.image_vectors), "visual": _pack(self.visual_vectors),
            "image_captions": self.image_captions, "image_attributes": self.image_attributes,
            "liked": self.liked, "disliked": self.disliked, "shown": self.shown, "last_shown": self.last_shown,
            "picks": self.picks,
            "asked": self.asked, "dont_care": self.dont_care, "accepted": self.accepted, "question": self.question,
            "turns": self.turns, "last_action": self.last_action, "page_replies": self.page_replies,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BeliefState:
        data = dict(data)
        images, visual = _unpack(data.pop("images", None)), _unpack(data.pop("visual", None))
        return cls(image_vectors=images, visual_vectors=visual, **data)
