"""The LLM simulated user: a chat model plays a customer who wants the hidden target.

The model gets a role-locked prompt (``simulators/prompts/user.txt``: it is the customer and
never the assistant) with its target's attribute values in plain words and what the catalog
says about it, the title taken out (it describes, it never names; with ``vision=True`` also the
target's picture as a base64 image block); then, turn by turn, the system's reply text, the
question's options with its own value for that attribute, and the shown items, numbered, with
whether its item is among them and, when it is not, which comes closest and how it differs (a
person sees that; a text model cannot).

Its line is cut to a chat line (two sentences, :data:`line_checks.MAX_LINE_CHARS`) and checked
by the harness, which knows the target (:mod:`simulators.line_checks`): a line in the
assistant's role, an accept of a shown item that is not the target, an offered option the
target does not have, or the line of an earlier turn again. A failed line is asked for once
more with a note on what was wrong; failing again, it is replaced by the agenda user's line for
the turn (a truthful line from the target's values; the fallback ``"simulator"``). So a false
accept never reaches the system: the conversation goes on with a rejection, as it would with
a person who sees the item is not theirs (ending it as a failure would charge the policy for
the simulator's mistake). The kinds found are recorded on the turn (``TurnNotes.checks``) and
reported per run (:mod:`simulators.metrics`): role-break, false-accept, wrong-answer and
repetition rates, lines trimmed, regenerated and replaced.

Then any naming of the target (title, id, most of the title's distinctive words;
:mod:`simulators.leaks`) is replaced by ``[redacted]`` and the turn counts as leaked. A model
that fails (unreachable, timeout, an empty or JSON reply) is replaced for that turn by the
agenda user's line without a second try, recorded as the fallback ``"simulator"``. The agenda
user runs in the shadow every turn, so its state (what was shown, when to give up) is current
whenever it has to speak; its patience is this user's patience too. The opening picture (when
the plan starts from one) is the agenda user's, so both kinds open alike.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from crs.llm.backends import load_chat_model
from crs.llm.pictures import data_url
from crs.llm.structured import LLMError, invoke_text
from crs.turn import Message, Reply
from retrieval.images import ImageLoadError, load_image

from . import line_checks as checks
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
# A customer's line is a sentence or two (~30 tokens); more is a ramble cut anyway, and every token
# costs time on a laptop-class CPU (SmolLM2 wrote up to 470 characters with 120).
MAX_TOKENS = 48
TEMPERATURE = 0.0  # the same plan should read the same on a re-run, as far as the backend allows
FALLBACK = "simulator"  # recorded in TurnResult.fallbacks for a turn the agenda user spoke
DESCRIPTION_CHARS = 160  # what the catalog says about the target, first sentence, cut here
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL | re.IGNORECASE)
_LABEL = re.compile(r"^\s*(?:shopper|user|customer|me|you)\s*:\s*", re.IGNORECASE)
# Where a model goes on to write the other side's turn too ("... \nAssistant: Sure!").
_OTHER_SIDE = re.compile(r"\b(?:assistant|system|ai|bot)\s*:", re.IGNORECASE)
# Notes added to the prompt for the second try, by the kind of failure (line_checks).
RETRY_NOTES = {
    checks.ROLE_BREAK: "Your last try spoke as the assistant. You are the customer: do not offer help or ask what "
                       "they want; say what you are looking for.",
    checks.FALSE_ACCEPT: "Your item is not among the shown ones: do not say one of them is it. Say which is closest "
                         "and what should change, or none of these.",
    checks.WRONG_ANSWER: "Your last try picked an option your item does not have. Answer with your item's own value.",
    checks.REPETITION: "You said that already. Say something new about your item.",
}


def _clean(text: str) -> tuple[str, bool]:
    """The model's reply as one chat line and whether it was cut (:func:`line_checks.trim`)."""
    text = _THINK.sub("", text)
    lines = [line for line in (_LABEL.sub("", line).strip() for line in text.strip().splitlines()) if line]
    text = lines[0] if lines else ""
    other = _OTHER_SIDE.search(text, 1)  # a label at the very start is the role break itself
    text = text[:other.start()] if other else text
    text = " ".join(text.strip().strip("\"'\u201c\u201d").split())
    if not re.search(r"[^\W_]", text):
        raise LLMError("empty reply")
    if text[0] in "{[" or "```" in text:
        raise LLMError(f"reply is code or JSON, not a customer's line: {text[:60]!r}")
    line, cut = checks.trim(text)
    if len(line) > checks.MAX_LINE_CHARS:
        raise LLMError(f"reply too long for a chat line ({len(line)} characters)")
    return line, cut or len(lines) > 1


def clean_line(text: str) -> str:
    """The model's reply as one chat line: the first line of text, labels and quotes off, cut to two
    sentences; :class:`LLMError` when it is not one (empty, code or JSON, one unbroken runaway)."""
    return _clean(text)[0]


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
        self.said: list[str] = []  # the lines the system received, for the repetition check

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
        values = self._values(reply)
        turn = self._human(self.prompt.texts(**values, note="")[1], first=not self.history)
        found: list[str] = []  # what the harness caught this turn (line_checks kinds)
        fallbacks: tuple[str, ...] = ()
        text: str | None = None
        note = ""
        for attempt in range(2):
            system, user = self.prompt.texts(**values, note=note)
            try:
                line, cut = _clean(invoke_text(self.model, [SystemMessage(system), *self.history,
                                                            self._human(user, first=not self.history)],
                                               timeout_s=self.timeout_s))
            except LLMError as exc:  # no second try: a model that times out would only time out again
                log.info("LLM user fell back to the agenda user: %s", exc)
                if attempt:
                    found.append(checks.REPLACED)
                break
            failures = self._failures(line, reply)
            if attempt == 0:
                found += failures + ([checks.TRIMMED] if cut else [])
            if not failures:
                text = line
                break
            if attempt == 0:
                found.append(checks.REGENERATED)
                note = " ".join(RETRY_NOTES[kind] for kind in failures)
            else:
                found.append(checks.REPLACED)
        if text is None:  # the conversation goes on with the agenda user's (truthful) line
            text, fallbacks = shadow.text, (FALLBACK,)
        redaction = self.detector.redact(text)
        self.history += [turn, AIMessage(redaction.text)]  # the model sees what the system saw
        self.said.append(text)
        self.notes = TurnNotes(redaction.leaked, fallbacks, checks=tuple(dict.fromkeys(found)))
        return Message(redaction.text, shadow.images if reply is None else ())

    # -- the harness's checks -----------------------------------------------------------------------------

    def _failures(self, line: str, reply: Reply | None) -> list[str]:
        """The :data:`line_checks.FAILURES` kinds ``line`` shows as an answer to ``reply``."""
        failures = []
        if checks.role_break(line):
            failures.append(checks.ROLE_BREAK)
        if reply is not None and reply.items:
            if checks.false_accept(line, [item.item_id for item in reply.items], self.target_id):
                failures.append(checks.FALSE_ACCEPT)
        if reply is not None and reply.action == "ask" and reply.question is not None:
            options = [o for o in reply.question.options if o != ANY_OPTION]
            truth = self.world.value_list(self.target_id, reply.question.attribute)
            if checks.wrong_answer(line, options, truth):
                failures.append(checks.WRONG_ANSWER)
        if checks.repeats(line, self.said):
            failures.append(checks.REPETITION)
        return failures

    # -- the prompt ---------------------------------------------------------------------------------

    def _values(self, reply: Reply | None) -> dict[str, str]:
        world = self.world
        values = {"catalog": world.catalog.title or world.catalog.name, "target": self._target_lines(),
                  "picture_note": "A picture of the item is attached to your first message." if self.picture else "",
                  "start_note": self._start_note(), "question": "", "shown": ""}
        if reply is None:
            values["situation"] = ("The chat begins. Write your first message: what you are looking for, by two or "
                                   "three of its features.")
            return values
        values["situation"] = f"The assistant says: \u201c{reply.text}\u201d"
        if reply.action == "ask" and reply.question is not None:
            values["question"] = self._question_lines(reply.question.attribute, reply.question.options)
        if reply.items:
            shown = [item.item_id for item in reply.items]
            lines = [f"#{n}. {item.title}" for n, item in enumerate(reply.items, 1)]
            if self.target_id in shown:
                n = shown.index(self.target_id) + 1
                lines.append(f"#{n} is your item: say so (\u201c#{n} is it\u201d).")
            else:
                lines.append("Your item is not among them. " + self._closest_line(shown))
            values["shown"] = "It shows:\n" + "\n".join(lines)
        return values

    def _closest_line(self, shown: list[int]) -> str:
        """Which shown item comes closest to the target (shares values of the most attributes) and
        how it differs, from the catalog's facts the customer knows about its own item: a small model
        told only "not among them" said "None of these." and then repeated itself. The customer
        still words the critique; this is what a person sees by looking, not the system's reading."""
        names = [a.name for a in self.world.talkable if a.name != self.world.identity_attribute]
        mine = {name: set(self.world.value_list(self.target_id, name)) for name in names}

        def shared(item_id: int) -> int:
            return sum(bool(mine[name] & set(self.world.value_list(item_id, name))) for name in names)

        best = max(range(len(shown)), key=lambda n: (shared(shown[n]), -n))
        differences = []
        for name in names:
            theirs = self.world.value_list(shown[best], name)
            if mine[name] and theirs and not mine[name] & set(theirs):
                wanted = self.world.value_list(self.target_id, name)[:2]
                differences.append(f"its {name.replace('_', ' ')} is {', '.join(theirs[:2])}, yours {', '.join(wanted)}")
        return (f"Closest: #{best + 1}" + (f" ({'; '.join(differences[:2])})" if differences else "")
                + ". Say what should change, in your own words.")

    def _question_lines(self, attribute: str, options: Sequence[str]) -> str:
        """The question and the customer's own value for it, as the person knows it."""
        name = attribute.replace("_", " ")
        offered = [o for o in options if o != ANY_OPTION]
        truth = self.world.value_list(self.target_id, attribute)
        text = f"It asks about {name}; the options: {', '.join(offered)}, or \u201c{ANY_OPTION}\u201d."
        right = [o for o in offered if o in truth]
        if right:
            return f"{text} Your item's {name}: {', '.join(right)}."
        if truth:
            return f"{text} Your item's {name} is {', '.join(truth[:3])}, not among the options."
        return f"{text} Your item has no {name} to speak of: say {ANY_OPTION}."

    def _target_lines(self) -> str:
        """The target in plain words: each attribute's values, and what the catalog says about it
        with the title taken out (a small model copies any name it is given)."""
        lines = [f"- {name.replace('_', ' ')}: {format_value(value, most=8)}"
                 for name, value in self.world.attributes_of(self.target_id).items()
                 if name != self.world.identity_attribute]  # an identifier (code points) means nothing to a customer
        described = self._description()
        if described:
            lines.append(f"- what it shows: {described}")
        return "\n".join(lines)

    def _description(self) -> str:
        """The catalog's text about the target without its title or id (the leak detector's spans
        dropped), first sentence, at most :data:`DESCRIPTION_CHARS`."""
        text = self.world.descriptions.get(self.target_id, "")
        for start, end in reversed(self.detector.spans(text)):
            text = text[:start] + text[end:]
        text = " ".join(text.split())
        first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
        return first if len(first) <= DESCRIPTION_CHARS else first[:DESCRIPTION_CHARS].rsplit(" ", 1)[0]

    def _start_note(self) -> str:
        item = self.world.start_item(self.plan)
        if item is None:
            return "You start with words only: mention two or three of its features."
        kind = "the same thing in another version" if self.plan.start == "other-style-image" else "a similar item"
        mine, theirs = self.world.values(self.target_id), self.world.values(item)
        differing = [f"{name.replace('_', ' ')} (yours: {format_value(mine[name])}; the picture's: "
                     f"{format_value(theirs[name])})"
                     for name in mine if name in theirs and name != self.world.identity_attribute
                     and mine[name] != theirs[name] and isinstance(mine[name], str)]
        change = (f"It differs from your item in {'; '.join(differing[:2])}: say what should change."
                  if differing else "Say you want something like it.")
        # Its values, not its title: another version of the target has the target's own title.
        return f"You start by uploading a picture of {kind}; it is sent with your first message. {change}"

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
