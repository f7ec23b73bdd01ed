"""How fast a backend reads a prompt and writes a reply, and the time limit a stage gets from it.

A fixed limit means nothing across models and machines: 10 s is ample for a 7B model on a GPU
server and too short for every call of a 1.5B model on two busy cores (the parser then timed out
on every turn and the chat answered as the rules do, only slower). Backends that run in this
process measure their speed once, with a short warm-up generation when the model loads, and each
stage's limit is the time its prompt budget and reply budget take at that speed, with a margin
for a machine that is busier than at start-up.
"""
from __future__ import annotations

from dataclasses import dataclass

MARGIN = 2.0  # the machine may be busier than during the warm-up (other sessions, an index build)
OVERHEAD_S = 1.0  # scheduling, grammar compilation, the chat template
MIN_TIMEOUT_S = 3.0
MAX_TIMEOUT_S = 180.0  # a turn that would take longer is better answered by the rules


@dataclass(frozen=True)
class Speed:
    """Tokens per second, as the backend measured them."""

    prompt_tps: float  # prompt evaluation
    completion_tps: float  # generation

    def seconds(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The time a call with these token counts takes at this speed, without margin."""
        return prompt_tokens / self.prompt_tps + completion_tokens / self.completion_tps

    def timeout(self, prompt_tokens: int, completion_tokens: int) -> float:
        """A stage's limit for a call within these budgets: what it takes, with the margin."""
        limit = MARGIN * self.seconds(prompt_tokens, completion_tokens) + OVERHEAD_S
        return round(min(MAX_TIMEOUT_S, max(MIN_TIMEOUT_S, limit)), 1)

    def describe(self) -> str:
        return f"{self.prompt_tps:.0f} prompt / {self.completion_tps:.1f} reply tokens/s"


def stage_timeout(model: object, prompt_tokens: int, completion_tokens: int, default_s: float) -> float:
    """The stage's time limit over ``model``: from its measured speed where the backend measures
    one (in-process llama.cpp), else ``default_s`` (servers: their speed is not ours to measure
    without spending a call at start-up)."""
    measure = getattr(model, "speed", None)
    speed = measure() if callable(measure) else None
    return speed.timeout(prompt_tokens, completion_tokens) if isinstance(speed, Speed) else default_s
