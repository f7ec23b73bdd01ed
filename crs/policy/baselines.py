"""Baselines on the policy interface, for evaluation beside the default (same seeds, same run)."""
from __future__ import annotations

import random
from dataclasses import dataclass

from .base import Ask, Decision, Policy, PolicyContext, Recommend, question_options, top_new


def _open_attributes(context: PolicyContext) -> list[str]:
    """Askable attributes not asked or settled, whose question would offer two values or more."""
    return [info.name for info in context.facts.askable()
            if info.name not in context.asked and info.name not in context.settled
            and len(question_options(context, info.name)) > 2]


@dataclass
class AlwaysRecommend(Policy):
    """Never asks: shows the current top k every turn (a plain critiquing recommender)."""

    name: str = "always-recommend"

    def decide(self, context: PolicyContext) -> Decision:
        return Recommend(top_new(context), "always recommends")


@dataclass
class AskNThenRecommend(Policy):
    """Asks about the first ``n`` open attributes in the catalog's order, then recommends."""

    n: int = 3
    name: str = "ask-n"

    def decide(self, context: PolicyContext) -> Decision:
        if len(context.asked) < self.n:
            for attribute in _open_attributes(context):
                return Ask(attribute, question_options(context, attribute))
        return Recommend(top_new(context), f"asked {len(context.asked)} questions")


@dataclass
class RandomAsk(Policy):
    """Each turn, asks a random open attribute with probability ``p_ask``, else recommends.

    Seeded by ``seed`` and the turn's candidates, so the same conversation replays identically.
    """

    p_ask: float = 0.5
    seed: int = 0
    name: str = "random-ask"

    def decide(self, context: PolicyContext) -> Decision:
        first = int(context.candidates.ids[0]) if len(context.candidates) else -1
        rng = random.Random(f"{self.seed}:{context.turn}:{first}")
        open_attributes = _open_attributes(context)
        if open_attributes and rng.random() < self.p_ask:
            attribute = rng.choice(open_attributes)
            return Ask(attribute, question_options(context, attribute))
        return Recommend(top_new(context), "random choice to recommend")


@dataclass
class ScriptedPolicy(Policy):
    """Plays a script of decisions, one per turn (``fake:ask,ask,recommend``; the last repeats):
    ``ask`` asks the first open attribute (or recommends when none is left), ``recommend`` shows
    the top k. For tests and demos that need an exact ask -> ask -> recommend path."""

    script: tuple[str, ...] = ("recommend",)
    name: str = "fake"

    def decide(self, context: PolicyContext) -> Decision:
        step = self.script[min(context.turn, len(self.script)) - 1]
        open_attributes = _open_attributes(context) if step == "ask" else []
        if open_attributes:
            return Ask(open_attributes[0], question_options(context, open_attributes[0]))
        return Recommend(top_new(context), f"scripted: {step}")
