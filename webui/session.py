"""One browser tab's conversation, and the handlers that move it on.

A tab holds a :class:`TabState`: the dialogue session id and the turns shown so far. Every
handler takes a state and returns a new one; :mod:`webui.chat` turns the state into components.
Keeping the handlers free of gradio components lets tests drive the page without a browser.

The dialogue session is created on the first message, not when the page opens, so a page view
alone stores nothing. The page keeps the id in the tab's ``sessionStorage`` and hands it to
:meth:`ChatTabs.resume` on load, which re-reads the turns from the store.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from crs.dialogue import DialogueManager, SessionNotFound
from crs.errors import UserError
from crs.catalog_index import has_pictures
from crs.facts import AttributeInfo, CatalogFacts
from crs.replies import question_labels
from crs.turn import Message
from crs.web.chat_intro import ChatIntro, chat_intro
from crs.uploads import UploadError, UploadLimits, check_uploads, release_memory
from retrieval.multimodal import ScoredItem

from .cards import page_error, reply_for_clients
from .uploads import servable_copy, uploaded_file

WEB_CLIENT = {"client": "web"}  # stored with each session: where the conversation came from


@dataclass(frozen=True)
class Turn:
    text: str
    images: tuple[str, ...]  # uploaded files, shown again while the tab lives
    image_count: int  # pictures sent; after a reload only their number is known
    reply: dict[str, Any]  # Reply.to_json(), as the store keeps it
    option_labels: tuple[str, ...] = ()  # what the question's option buttons show (schema display names)


@dataclass(frozen=True)
class TabState:
    session_id: str = ""  # "" until the first message
    turns: tuple[Turn, ...] = ()
    # Catalog id -> liked, for items shown in this conversation (any turn's cards can be rated).
    ratings: dict[str, bool] = field(default_factory=dict)
    note: str = ""  # a line under the chat: feedback noted, a problem with the last action

    def shown_item(self, item_id: str) -> dict[str, Any] | None:
        """The item with this catalog id from the latest turn that showed it, or None."""
        for turn in reversed(self.turns):
            for item in turn.reply.get("items", []):
                if str(item["id"]) == item_id:
                    return item
        return None

    @property
    def options(self) -> list[str]:
        """The pending question's options (empty unless the last reply asked)."""
        if not self.turns:
            return []
        reply = self.turns[-1].reply
        question = reply.get("question")
        return list(question["options"]) if reply.get("action") == "ask" and question else []

    @property
    def option_labels(self) -> list[str]:
        """What each of :attr:`options` shows on its button; a click still sends the option itself."""
        options = self.options
        labels = list(self.turns[-1].option_labels) if self.turns else []
        return labels if len(labels) == len(options) else options


@dataclass(frozen=True)
class Example:
    """A clickable conversation start, built from the loaded catalog."""

    text: str
    image: str = ""  # a catalog image path (server side only, never sent to the page), or ""


class ChatTabs:
    """The page's handlers over one dialogue manager (opened on first use: see ``dm``)."""

    def __init__(self, dm: Callable[[], DialogueManager], limits: UploadLimits | None = None) -> None:
        self._dm = dm
        self.limits = limits or UploadLimits()
        self._examples: list[Example] | None = None
        self._intro: ChatIntro | None = None

    @property
    def dm(self) -> DialogueManager:
        return self._dm()

    # -- sessions ------------------------------------------------------------------------------------

    def resume(self, stored_id: str | None) -> TabState:
        """The tab's conversation after a reload; a fresh one for no id or an unknown or expired one."""
        if not stored_id:
            return TabState()
        try:
            history = self.dm.history(stored_id)
        except SessionNotFound:
            return TabState(note="Your earlier conversation is no longer stored; this is a new one.")
        turns = tuple(Turn(t["message"], (), len(t["images"]), t["reply"], self._labels(t["reply"])) for t in history)
        belief = self.dm.belief(stored_id)
        liked = self.dm.searcher.external_ids(list(belief.liked))
        disliked = self.dm.searcher.external_ids(list(belief.disliked))
        return TabState(stored_id, turns, {**{i: False for i in disliked}, **{i: True for i in liked}})

    def start_over(self, state: TabState) -> TabState:
        # The old session stays stored (history, evaluation); the tab simply stops using it.
        return TabState()

    # -- turns ---------------------------------------------------------------------------------------

    def send(self, state: TabState, text: str, images: list[str] | tuple[str, ...] = ()) -> TabState:
        """One message: the reply is appended, the shown items and ratings follow it. ``images``
        are paths of files uploaded to the page; any other path is refused (see webui.uploads)."""
        text, images = text.strip(), tuple(images)
        try:
            decoded = checked_images(text, images, self.limits)
        except UploadError as exc:  # the person's upload or text: say so, keep the conversation
            return replace(state, note=f"\u26a0\ufe0f {exc}")
        same = bool(state.session_id) and self.dm.exists(state.session_id)
        note = "" if same or not state.session_id else \
            "Your earlier conversation is no longer stored; this is a new one."
        session_id = state.session_id if same else self.dm.start(WEB_CLIENT)
        try:
            reply = self.dm.respond(session_id, Message(text, decoded))
        finally:
            if decoded:
                release_memory()
        data = reply.to_json()
        turns = (state.turns if same else ()) + (Turn(text, images, len(images), data, self._labels(data)),)
        return TabState(session_id, turns, state.ratings if same else {}, note)

    def _labels(self, reply: dict[str, Any]) -> tuple[str, ...]:
        question = reply.get("question")
        if not question:
            return ()
        return tuple(question_labels(self.dm.facts, question["attribute"], list(question["options"]))["option_labels"])

    def pick(self, state: TabState, index: int) -> TabState:
        """A click on the question's ``index``-th option: that option is the message."""
        options = state.options
        if not 0 <= index < len(options):  # a stale button from an older question
            return replace(state, note="That question is no longer open.")
        return self.send(state, options[index])

    def rate(self, state: TabState, item_id: str, liked: bool) -> TabState:
        """Like or dislike an item this conversation showed (by its catalog id, as its card's
        buttons name it); it counts from the next message."""
        item = state.shown_item(item_id) if state.session_id else None
        if item is None:  # a forged click, or a card from a conversation this tab left
            return replace(state, note="There is no such item to rate.")
        try:
            self.dm.feedback(state.session_id, self.dm.searcher.item_ids([item_id])[0], liked)
        except UserError as exc:  # the session or the item is gone from the store
            return replace(state, note=f"Could not note that: {exc}")
        verdict = "like" if liked else "do not like"
        return replace(state, ratings={**state.ratings, item_id: liked},
                       note=f"Noted: you {verdict} \u201c{item['title']}\u201d (it counts from your next message).")

    def run_example(self, state: TabState, index: int) -> TabState:
        examples = self.examples()
        if not 0 <= index < len(examples):
            return replace(state, note="No such example.")
        example = examples[index]
        return self.send(state, example.text, (servable_copy(example.image),) if example.image else ())

    # -- examples ------------------------------------------------------------------------------------

    def examples(self) -> list[Example]:
        """Starts that work on the loaded catalog (:func:`catalog_examples`)."""
        if self._examples is None:
            self._examples = catalog_examples(self.dm, self.intro().pictures)
        return self._examples

    def intro(self) -> ChatIntro:
        """The catalog's title, whether it has pictures, and hints that fit it."""
        if self._intro is None:
            self._intro = chat_intro(self.dm.store, self.dm.catalog)
        return self._intro


class ClientApi:
    """The page's API for programs (``gradio_client``, ``@gradio/client``): the session id is
    explicit, and replies come back as JSON, since a gallery inside a chat message reaches a
    client as an unusable string. Problems a caller caused raise ``gr.Error`` with the reason."""

    def __init__(self, dm: Callable[[], DialogueManager], limits: UploadLimits | None = None) -> None:
        self._dm = dm
        self.limits = limits or UploadLimits()

    def start(self) -> str:
        """Start a conversation; returns its session id."""
        return self._dm().start(WEB_CLIENT)

    def respond(self, session_id: str, text: str, image: str | None) -> dict[str, Any]:
        """Send a message (text and/or one image) in a session ("" starts one); returns the reply
        JSON with ``session_id``, ``action``, ``question`` and ``items`` (``image_url`` each)."""
        text = (text or "").strip()
        dm = self._dm()
        try:
            images = checked_images(text, (image,) if image else (), self.limits)
            session_id = session_id or dm.start(WEB_CLIENT)
            reply = dm.respond(session_id, Message(text, images))
        except UserError as exc:  # a bad upload, an unknown session id
            raise page_error(exc) from None
        return reply_for_clients(reply.to_json(), session_id, dm.facts)

    def feedback(self, session_id: str, item_id: str, liked: bool) -> dict[str, Any]:
        """Like (liked=true) or dislike an item by its catalog id; it counts from the next message."""
        dm = self._dm()
        try:
            dm.feedback(session_id, dm.searcher.item_ids([item_id])[0], liked)
        except UserError as exc:  # an unknown session or item
            raise page_error(exc) from None
        return {"session_id": session_id, "item_id": item_id, "liked": liked}

    def history(self, session_id: str) -> list[dict[str, Any]]:
        """The session's turns, oldest first: each message and the reply JSON."""
        dm = self._dm()
        try:
            turns = dm.history(session_id)
        except UserError as exc:
            raise page_error(exc) from None
        return [{"number": t["number"], "message": t["message"], "images": len(t["images"]),
                 **reply_for_clients(t["reply"], session_id, dm.facts)} for t in turns]


def checked_images(text: str, paths: tuple[str, ...], limits: UploadLimits) -> tuple[Image.Image, ...]:
    """The page's uploads decoded, under the same rules as the JSON API's (size, pixels, format by
    content); only files in the page's upload folder are read."""
    with contextlib.ExitStack() as files:
        uploads = [(Path(path).name, files.enter_context(uploaded_file(path, f"image {n}").open("rb")))
                   for n, path in enumerate(paths, start=1)]
        return tuple(c.image for c in check_uploads(text, uploads, limits))


SAMPLE = 40  # items looked at for examples: spread over the catalog, cheap on any size
_PLAIN_TITLE = re.compile(r"[^\W\d_]+( [^\W\d_]+){0,2}")


def catalog_examples(dm: DialogueManager, pictures: bool | None = None) -> list[Example]:
    """Starts that work on this catalog, from its own data: a picture of one of its items with one
    value changed (only where the catalog has pictures), a title, values of what people choose by
    (askable attributes), and an open request that makes it ask. ``pictures``: whether the
    catalog has any (None: ask the store)."""
    facts = dm.facts
    if len(facts.ids) == 0:
        return []
    if pictures is None:
        pictures = has_pictures(dm.store, dm.catalog)
    step = max(1, len(facts.ids) // SAMPLE)
    hits = dm.searcher.hits([ScoredItem(int(i), 0.0) for i in facts.ids[::step][:SAMPLE]])
    noun = catalog_noun(dm.catalog.title or "")
    examples = []
    modifier = _modifier(facts) if pictures else None
    if modifier is not None:
        # An item with the first value, asked for in a middle one: "flat" -> "3d" on the demo
        # catalog's styles, "flat" -> "outline" on the test shapes.
        first, wanted = modifier.values[0], modifier.values[len(modifier.values) // 2]
        pictured = [h for h in hits
                    if h.attributes.get(modifier.name) not in (None, wanted) and _is_local_file(h.image)]
        picture = next((h for h in pictured if h.attributes.get(modifier.name) == first), (pictured or [None])[0])
        if picture is not None:
            examples.append(Example(f"like this but in {wanted}", picture.image))
    title = _title_example(h.title for h in hits)
    if title:
        examples.append(Example(title))
    if modifier is not None:
        examples.append(Example(f"show me {modifier.values[-1]} {noun}"))
    else:
        values = _common_values(facts)
        if values:
            examples.append(Example(f"show me {values[0]} {noun}"))
        if len(values) > 1:
            examples.append(Example(f"{values[1]} {values[0]} {noun}"))
    examples.append(Example("help me find something"))
    return examples


def catalog_noun(title: str) -> str:
    """What the catalog's items are called, from its title: its first plural-looking word
    ("Films (Wikidata, 1940-2014)" -> "films", "Coloured shapes" -> "shapes"), else "ones"."""
    words = re.findall(r"[^\W\d_]+", re.sub(r"\(.*?\)", " ", title).lower())
    return next((w for w in words if len(w) > 3 and w.endswith("s") and not w.endswith("ss")), "ones")


def _title_example(titles: Iterable[str]) -> str:
    """A title as a person would type it. A plain name reads like something a person would type
    ("a flying disc"), a code-like title does not ("31-point star, step 5"): titles of one to
    three plain words are preferred. Titles that are names (most words capitalised: films,
    books) are asked for as "something like Skyfall", things as "a red circle"."""
    titles = [t.strip() for t in titles if t.strip()]
    if not titles:
        return ""
    plain = [t for t in titles if _PLAIN_TITLE.fullmatch(t)]
    title = (plain or titles)[len(plain or titles) // 2]
    long = [t.split() for t in titles if len(t.split()) > 1]
    named = sum(all(w[:1].isupper() for w in words if len(w) > 3) for words in long) > len(long) / 2 if long \
        else title[:1].isupper() and not title[1:].islower()
    if named:
        return f"something like {title}"
    title = title.lower()
    return title if title.startswith(("a ", "an ", "the ")) else f"a {title}"


def _common_values(facts: CatalogFacts) -> list[str]:
    """The most common sayable value of each askable attribute, in schema order, two at most,
    from different attributes ("drama", "2000s" on the films)."""
    out = []
    for attribute in facts.askable():
        counts = facts.value_counts(attribute.name)
        value = max((v for v in attribute.values if counts.get(v) and re.search(r"[^\W\d_]|\d{4}", v)),
                    key=lambda v: counts[v], default=None)
        if value is not None and value not in out:
            out.append(value)
        if len(out) == 2:
            break
    return out


def _modifier(facts: CatalogFacts) -> AttributeInfo | None:
    """The attribute a "like this but ..." example changes: among the askable categorical ones,
    leaving out any that another one determines (the demo's artwork set follows from its art
    style), the one with the fewest values: the smallest change (flat or outline on the shapes)."""
    candidates = [a for a in facts.askable() if a.kind == "categorical" and len(a.values) > 1]
    kept = [a for a in candidates if not any(b is not a and _determines(facts, b.name, a.name)
                                             and not _determines(facts, a.name, b.name) for b in candidates)]
    return min(kept or candidates, key=lambda a: len(a.values), default=None)


def _determines(facts: CatalogFacts, first: str, second: str) -> bool:
    """Whether every item's ``first`` value fixes its ``second`` value."""
    a, b = facts.value_matrix(first, facts.ids), facts.value_matrix(second, facts.ids)
    known = a.any(axis=1) & b.any(axis=1)
    pairs = set(zip(a.argmax(axis=1)[known].tolist(), b.argmax(axis=1)[known].tolist()))
    return len(pairs) == len({x for x, _ in pairs})


def _is_local_file(image: str) -> bool:
    return bool(image) and not image.startswith(("http://", "https://")) and Path(image).is_file()
