"""The simulated user's one-method base class.

A simulator knows its hidden target (a store id) and keeps its own agenda; the conversation
loop (:mod:`simulators.conversation`) hands it each reply of the dialogue manager and sends
what it answers, exactly as the web UI would. Besides the message, a turn may carry notes for
the evaluation (a redacted leak, a fallback), and a simulator may stop: both are plain
attributes here, so a new simulator only has to write :meth:`UserSimulator.respond`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from crs.turn import Message, Reply


@dataclass(frozen=True)
class TurnNotes:
    """What the last :meth:`UserSimulator.respond` recorded for the evaluation."""

    leaked: bool = False  # the simulator named the target; the message holds "[redacted]" instead
    fallbacks: tuple[str, ...] = ()  # e.g. ("simulator",): an LLM user's line came from the agenda user


class UserSimulator(ABC):
    target_id: int
    # Set by respond() when the user stops trying: the message it returned is a goodbye that the
    # loop does not send, and the conversation ends as a failure.
    gave_up: bool = False
    notes: TurnNotes = TurnNotes()

    @abstractmethod
    def respond(self, reply: Reply | None) -> Message:
        """The user's next message; ``reply`` is the system's last reply, None for the opening turn."""
