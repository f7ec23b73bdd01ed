"""The turn, as data: what comes in, what the understanding stages make of it, what goes out.

See DESIGN.md ("The turn, as data"). These are plain dataclasses with ``to_json`` so a turn can
be stored, sent over the JSON API and compared in tests without any model in the loop.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from retrieval.images import ImageSource

Action = Literal["ask", "recommend", "answer"]


@dataclass(frozen=True)
class Message:
    """What a person (or a simulated one) sends: text and any number of images."""

    text: str = ""
    images: tuple[ImageSource, ...] = ()


@dataclass(frozen=True)
class ImageReading:
    """What the image reader made of one image, in the catalog's own vocabulary."""

    attributes: dict[str, list[str]]  # attribute -> likely values, best first (closed vocabulary only)
    caption: str  # a short description, e.g. "a blue flat-style dress sticker"
    colours: list[str] = field(default_factory=list)  # dominant colours from the pixels
    nearest: list[int] = field(default_factory=list)  # nearest catalog items (store ids), best first
    source: str = "offline"  # which reader produced it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Relative:
    """A relative critique on an ordered or numeric attribute: "newer" = (added_in, +1)."""

    attribute: str
    direction: int  # +1 more / higher / later, -1 less / lower / earlier
    reference: int | None = None  # index (0-based) of the shown item it is relative to, if any


@dataclass(frozen=True)
class Reference:
    """A shown item the text points at: "the second one", "#3", "the red one"."""

    index: int  # 0-based position in the last shown list
    liked: bool | None = None  # True "like the first", False "not the second", None a plain mention


@dataclass
class Critique:
    """What the critique parser understood of one message's text."""

    require: dict[str, list[str]] = field(default_factory=dict)  # attribute -> wanted values (any of them)
    exclude: dict[str, list[str]] = field(default_factory=dict)  # attribute -> unwanted values
    # Attributes of ``require`` whose values must all hold: "a sci-fi comedy" is both genres. Only
    # meaningful for multi-valued (tags) attributes; otherwise the values are alternatives.
    all_of: list[str] = field(default_factory=list)
    # Numeric attribute -> [low, high], inclusive, either end None: "from the 90s" is
    # year [1990, 1999], "under 2 hours" runtime [None, 120].
    ranges: dict[str, list[float | None]] = field(default_factory=dict)
    relative: list[Relative] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    accept: int | None = None  # index of the shown item accepted ("that's it", "#2 is perfect")
    reject_all: bool = False  # "none of these"
    dont_care: list[str] = field(default_factory=list)  # attributes answered "any" / "don't care"
    text: str = ""  # what matched nothing, kept as a soft text preference
    source: str = "rules"

    def is_empty(self) -> bool:
        return not (self.require or self.exclude or self.ranges or self.relative or self.references or self.accept is not None
                    or self.reject_all or self.dont_care or self.text.strip())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Question:
    attribute: str
    options: list[str]  # values from the live candidates, then "any"
    text: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "options": list(self.options), "text": self.text}


@dataclass(frozen=True)
class ReplyItem:
    id: str  # the catalog's own id
    title: str
    image: str  # local path or URL; the web layer turns it into image_url
    score: float
    reason: str
    item_id: int = 0  # store id

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "image": self.image, "score": round(self.score, 4),
                "reason": self.reason}


@dataclass(frozen=True)
class Reply:
    text: str
    action: Action
    question: Question | None = None
    items: list[ReplyItem] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)  # stages that fell back to rules this turn
    # Store ids of the most probable candidates when the policy decided (best first), on ask turns
    # too: evaluations compute Recall@k of the system's ranking at every turn from it. Not sent to users.
    ranking: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"reply": self.text, "action": self.action,
                "question": self.question.to_json() if self.question else None,
                "items": [i.to_json() for i in self.items], "fallbacks": list(self.fallbacks)}
