"""The LLM simulated user: a chat model plays a shopper who wants the hidden target.

The model gets a persona prompt (``simulators/prompts/user.txt``) with the target's title (to be
kept secret), its attribute values and, with ``vision=True``, its picture as a base64 image
block; then, turn by turn, the system's reply text, the question's options and the titles of
the shown items, numbered. It answers with the shopper's next line.

Its line is checked before the system sees it: any naming of the target (title, id, most of the
title's distinctive words; :mod:`simulators.leaks`) is replaced by ``[redacted]`` and the turn
counts as leaked. A model that fails (unreachable, timeout, an empty or runaway or JSON reply)
is replaced for that turn by the agenda user's line, recorded as the fallback ``"simulator"``.
The agenda user runs in the shadow every turn, so its state (what was shown, when to give up)
is current whenever it has to speak; its patience is this user's patience too. The opening
picture (when the plan starts from one) is the agenda user's, so both kinds open alike.
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from crs.llm.backends import load_chat_model
from crs.llm.pictures import data_url
from crs.llm.structured import LLMError, invoke_text
from crs.turn import Message, Reply
from retrieval.images import ImageLoadError, load_image

from .agenda import ANY_OPTION, AgendaConfig, AgendaSimulator
from .base import TurnNotes, UserSimulator
from .prompts import load_prompt
from .targets import ConversationPlan
from .world import SimulationWorld

log = logging.getLogger(__name__)


def format_value(value: str | float | list[str], most: int = 3) -> str:
    """An item's value for the brief: a tag list shortened to its first few. (crs.llm.vocabulary has
    the system's own: the simulated users may not import it, see pyproject's contracts.)"""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return format(value, "g")
    return ", ".join(list(value)[:most])

DEFAULT_TIMEOUT_S = 30.0
MAX_TOKENS = 120  # a shopper's line is a sentence or two; longer output is a runaway
MAX_CHARS = 500  # a longer "line" is not a chat message: treated as garbage
TEMPERATURE = 0.0  # the same plan should read the same on a re-run, as far as the backend allows
FALLBACK = "simulator"  # recorded in TurnResult.fallbacks for a turn the agenda user spoke
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL | re.IGNORECASE)
_LABEL = re.compile(r"^\s*(?:shopper|user|customer|me)\s*:\s*", re.IGNORECASE)


def clean_line(text: str) -> str:
    """The model's reply as one chat line; :class:`LLMError` when it is not one."""
    text = _LABEL.sub("", _THINK.sub("", text).strip())
    text = " ".join(text.strip().strip("\"'\u201c\u201d").split())
    if not re.search(r"[^\W_]", text):
        raise LLMError("empty reply")
    if len(text) > MAX_CHARS:
        raise LLMError(f"reply too long for a chat line ({len(text)} characters)")
    if text[0] in "{[" or "```" in text:
        raise LLMError(f"reply is code or JSON, not a shopper's line: {text[:60]!r}")
    return text


@lru_cache(maxsize=4)
def shared_chat_model(spec: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> BaseChatModel:
    """One client (or one in-process model) per setting and process, shared by its conversations."""
    return load_chat_model(spec, timeout_s=timeout_s, max_tokens=MAX_TOKENS, temperature=TEMPERATURE)


class LLMSimulator(UserSimulator):
    def __init__(self, world: SimulationWorld, plan: ConversationPlan, model: BaseChatModel, *, spec: str = "model",
                 vision: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S,
                 agenda: AgendaConfig | None = None) -> None:
        self.world = world
        self.plan = plan
        self.model = model
        self.source = f"llm:{spec}"
        self.timeout_s = timeout_s
        self.target_id = plan.target_id
        self.gave_up = False
        self.notes = TurnNotes()
        self.fallback = AgendaSimulator(world, plan, agenda)
        self.detector = world.leak_detector(plan.target_id)
        self.prompt = load_prompt("user")
        self.picture = self._picture() if vision else None
        self.history: list[BaseMessage] = []

    @classmethod
    def from_spec(cls, world: SimulationWorld, plan: ConversationPlan, spec: str, *, vision: bool = False,
                  timeout_s: float = DEFAULT_TIMEOUT_S, agenda: AgendaConfig | None = None) -> LLMSimulator:
        """A user played by the model an ``--llm`` setting names (see :mod:`crs.llm.backends`)."""
        return cls(world, plan, shared_chat_model(spec, timeout_s), spec=spec, vision=vision, timeout_s=timeout_s,
                   agenda=agenda)

    def respond(self, reply: Reply | None) -> Message:
        shadow = self.fallback.respond(reply)
        if self.fallback.gave_up:
            self.gave_up = True
            self.notes = TurnNotes()
            return shadow
        system, user = self.prompt.texts(**self._values(reply))
        turn = self._human(user, first=not self.history)
        fallbacks: tuple[str, ...] = ()
        try:
            text = clean_line(invoke_text(self.model, [SystemMessage(system), *self.history, turn],
                                          timeout_s=self.timeout_s))
        except LLMError as exc:  # the conversation goes on with the agenda user's line
            log.info("LLM user fell back to the agenda user: %s", exc)
            text, fallbacks = shadow.text, (FALLBACK,)
        redaction = self.detector.redact(text)
        self.history += [turn, AIMessage(redaction.text)]  # the model sees what the system saw
        self.notes = TurnNotes(redaction.leaked, fallbacks)
        return Message(redaction.text, shadow.images if reply is None else ())

    # -- the prompt ---------------------------------------------------------------------------------

    def _values(self, reply: Reply | None) -> dict[str, str]:
        world = self.world
        values = {"catalog": world.catalog.title or world.catalog.name, "target": self._target_lines(),
                  "picture_note": "A picture of the item is attached to your first message." if self.picture else "",
                  "start_note": self._start_note(), "question": "", "shown": ""}
        if reply is None:
            values["situation"] = "The conversation begins. Write your first message to the assistant."
            return values
        values["situation"] = f"The assistant says: \u201c{reply.text}\u201d"
        if reply.action == "ask" and reply.question is not None:
            options = ", ".join(o for o in reply.question.options)
            values["question"] = f"It asks about {reply.question.attribute}; the options: {options} " \
                                 f"(\u201c{ANY_OPTION}\u201d: you do not mind)."
        if reply.items:
            values["shown"] = "It shows:\n" + "\n".join(f"#{n}. {item.title}" for n, item in enumerate(reply.items, 1))
        return values

    def _target_lines(self) -> str:
        lines = [f"- its name (never say it): {self.world.titles[self.target_id]}"]
        for name, value in self.world.attributes_of(self.target_id).items():
            if name != self.world.identity_attribute:  # an identifier (code points) means nothing to a shopper
                lines.append(f"- {name.replace('_', ' ')}: {format_value(value, most=8)}")
        return "\n".join(lines)

    def _start_note(self) -> str:
        item = self.world.start_item(self.plan)
        if item is None:
            return "You start with words only: mention a couple of its features, vaguely."
        about = ", ".join(f"{k.replace('_', ' ')}: {format_value(v)}" for k, v in self.world.values(item).items()
                          if k != self.world.identity_attribute)
        kind = "the same thing in another version" if self.plan.start == "other-style-image" else "a similar item"
        return (f"You start by uploading a picture of {kind}, \u201c{self.world.titles[item]}\u201d ({about}); "
                "it is sent with your first message. Say in words how the item you want differs.")

    def _human(self, text: str, *, first: bool) -> HumanMessage:
        if not (first and self.picture):
            return HumanMessage(text)
        content: list[str | dict[str, Any]] = [{"type": "text", "text": text},
                                               {"type": "image_url", "image_url": {"url": self.picture}}]
        return HumanMessage(content=content)

    def _picture(self) -> str | None:
        source = self.world.images.get(self.target_id)
        if not source:
            return None
        try:
            return data_url(load_image(source))
        except ImageLoadError as exc:  # the user describes it from its values alone
            log.warning("no picture of the target for the LLM user: %s", exc)
            return None
