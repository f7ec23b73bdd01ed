"""The simulated user's one-method base class.

A simulator knows its hidden target (a store id) and keeps its own agenda; the conversation
loop (:mod:`simulators.conversation`) hands it each reply of the dialogue manager and sends
what it answers, exactly as the web UI would. Besides the message, a turn may carry notes for
the evaluation (a redacted leak, a fallback), and a simulator may stop: both are plain
attributes here, so a new simulator only has to write :meth:`UserSimulator.respond`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crs.turn import Message, Reply


@dataclass(frozen=True)
class Intent:
    """What the simulated user meant by its message, in its own terms (it knows; the system has
    to understand). The evaluation compares it with what the system understood that turn (the
    critique it stored) to give the understanding rate; references ("like the second") and
    pictures are not part of it."""

    require: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # attribute -> wanted values
    exclude: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # attribute -> unwanted values
    accept: int | None = None  # the shown item (0-based) it accepts
    reject_all: bool | None = False  # "none of these"; None: either reading is right ("cuter")
    dont_care: tuple[str, ...] = ()  # attributes answered "any"
    # For the report by kind of phrase: the move ("answer", "like-but", "vague", ...) and how its
    # values were said ("exact", "synonym", "typo", "filler", ...; simulators.wording).
    kind: str = ""
    forms: tuple[str, ...] = ()

    def matches(self, understood: Mapping[str, Any] | None) -> bool:
        """Whether ``understood`` (a critique as the dialogue manager stores it: require,
        exclude, accept, reject_all, dont_care) says exactly what was meant, no more, no less."""
        understood = understood or {}

        def values(constraints: Mapping[str, Any] | None) -> dict[str, frozenset[str]]:
            return {a: frozenset(v) for a, v in (constraints or {}).items() if v}

        return (values(understood.get("require")) == values(self.require)
                and values(understood.get("exclude")) == values(self.exclude)
                and understood.get("accept") == self.accept
                and (self.reject_all is None or bool(understood.get("reject_all")) == self.reject_all)
                and frozenset(understood.get("dont_care") or ()) == frozenset(self.dont_care))


@dataclass(frozen=True)
class TurnNotes:
    """What the last :meth:`UserSimulator.respond` recorded for the evaluation."""

    leaked: bool = False  # the simulator named the target; the message holds "[redacted]" instead
    fallbacks: tuple[str, ...] = ()  # e.g. ("simulator",): an LLM user's line came from the agenda user
    intent: Intent | None = None  # what the message meant; None: not recorded (pictures only, LLM users)
    # What the harness caught in the line before sending it (simulators.line_checks kinds: role-break,
    # false-accept, ...; () none); None: the simulator's lines are not checked (the agenda user's).
    checks: tuple[str, ...] | None = None


class UserSimulator(ABC):
    target_id: int
    # Set by respond() when the user stops trying: the message it returned is a goodbye that the
    # loop does not send, and the conversation ends as a failure.
    gave_up: bool = False
    notes: TurnNotes = TurnNotes()

    @abstractmethod
    def respond(self, reply: Reply | None) -> Message:
        """The user's next message; ``reply`` is the system's last reply, None for the opening turn."""
