"""How a chat client introduces the loaded catalog: its title, whether it has pictures, a greeting
and input hints that fit it. The chat page (``webui``) and the widget (through
``GET /api/v1/chat-intro``) both use it, so neither assumes the demo's stickers: a catalog
without pictures gets no "show me a picture" and no upload hint, and the hints name what people
choose by in that catalog (its askable attributes' labels).

Read from the store alone (the catalog row, its attributes, one query for a picture): cheap, and
nothing waits for the models or the index.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from crs.catalog_index import has_pictures
from crs.store import Store
from crs.store.models import Attribute, Catalog

DEFAULT_TITLE = "Shop assistant"
TOPICS = 3  # attribute labels a hint names
PICTURE_GREETING = "Hi! Tell me what you are looking for, or attach a picture of something like it."
PICTURE_PLACEHOLDER = "Tell me what you are looking for, or show me a picture."
PICTURE_INPUT = "Describe it, or add pictures (upload, drag and drop, paste)"
TEXT_INPUT = "Describe what you are looking for"


@dataclass(frozen=True)
class ChatIntro:
    catalog: str  # the catalog's name
    title: str  # the schema's title, else DEFAULT_TITLE
    pictures: bool  # whether any item has a picture: picture hints and uploads only then
    topics: tuple[str, ...]  # what people choose by: labels of the askable attributes, schema order
    greeting: str  # the assistant's first line in a widget
    placeholder: str  # what an empty chat says
    input_placeholder: str  # the message box's hint

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "topics": list(self.topics)}


def chat_intro(store: Store, catalog: Catalog) -> ChatIntro:
    with store.session() as session:
        attributes = session.scalars(select(Attribute).where(Attribute.catalog_id == catalog.id)
                                     .order_by(Attribute.position, Attribute.id)).all()
        # Words first: a person says "a comedy from the 1990s" before "under 100 minutes".
        ordered = sorted((a for a in attributes if a.askable), key=lambda a: a.kind == "numeric")
        topics = tuple(dict.fromkeys(_spoken(a.label or a.name.replace("_", " ")) for a in ordered))
    pictures = has_pictures(store, catalog)
    return ChatIntro(catalog.name, " ".join((catalog.title or "").split()) or DEFAULT_TITLE, pictures, topics,
                     *_hints(pictures, topics[:TOPICS]))


def _hints(pictures: bool, topics: tuple[str, ...]) -> tuple[str, str, str]:
    """(greeting, placeholder, input placeholder)."""
    if pictures:
        return PICTURE_GREETING, PICTURE_PLACEHOLDER, PICTURE_INPUT
    placeholder = "Tell me what you are looking for" + (f", for example its {_either(topics)}." if topics else ".")
    return f"Hi! {placeholder}", placeholder, TEXT_INPUT


def _spoken(label: str) -> str:
    """A label as it reads inside a sentence: "Genre" -> "genre", "MPAA rating" stays."""
    label = " ".join(label.split())
    return label[:1].lower() + label[1:] if not any(c.isupper() for c in label[1:]) else label


def _either(words: tuple[str, ...]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
