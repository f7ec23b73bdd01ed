"""What one simulated conversation produced, as plain data.

The contract between the conversation loop (simulators/conversation.py), the metrics
(simulators/metrics.py) and the runner that stores and resumes runs (simulators/runner.py):
everything the metrics need is here, and it round-trips through JSON so a run's finished
conversations can be stored and re-read after a crash without changing any figure.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TurnResult:
    number: int  # 1-based
    user_text: str  # what the system received (after leak redaction)
    user_images: int  # how many images the user sent this turn
    action: str  # the system's action: "ask" | "recommend" | "answer"
    shown: list[int] = field(default_factory=list)  # store ids recommended this turn, in order
    ranking: list[int] = field(default_factory=list)  # store ids of the system's top-k at this turn (Reply.ranking)
    leaked: bool = False  # the simulator named the target this turn (detected and redacted)
    fallbacks: list[str] = field(default_factory=list)
    latency_ms: float = 0.0  # DialogueManager.respond wall time
    # The system understood exactly what the user meant (simulators.base.Intent); None when the
    # user recorded no intent for the turn.
    understood: bool | None = None
    # What kind of phrase the user sent and how it said its values ("like-but: synonym, typo"),
    # from the intent; None when none was recorded. For the understanding rate by kind of phrase.
    phrase: str | None = None
    # What the harness caught in the simulated user's line (simulators.line_checks kinds: role-break,
    # false-accept, wrong-answer, repetition, trimmed, regenerated, replaced); None when the user's
    # lines are not checked (the agenda user). For the per-run line figures.
    user_checks: list[str] | None = None


@dataclass(frozen=True)
class ConversationResult:
    index: int  # position in the run: conversation i of n; its seed derives from (run seed, index)
    target_id: int  # store id of the hidden target
    start: str  # how the simulated user opened: "other-style-image" | "similar-image" | "text"
    success: bool  # the target was among the shown items at some turn
    success_turn: int | None  # the first such turn (1-based), None on failure
    questions: int  # ask turns
    turns: list[TurnResult] = field(default_factory=list)
    gave_up: bool = False  # the simulator stopped before max_turns without success

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConversationResult:
        return cls(**{**data, "turns": [TurnResult(**t) for t in data.get("turns", [])]})
