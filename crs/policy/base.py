"""What a policy sees and what it decides, and the one-method base class.

A policy gets the live candidates (ids, retrieval scores and the belief's posterior over them)
and decides: ASK about one attribute (options taken from the candidates) or RECOMMEND items.
The default is expected information gain (:mod:`crs.policy.eig`); baselines share this
interface (:mod:`crs.policy.baselines`), and so does the LLM policy (:mod:`crs.llm.policy`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..facts import CatalogFacts

ANY = "any"  # the option every question offers: "I don't mind"


@dataclass(frozen=True)
class Candidates:
    ids: np.ndarray  # int64 store ids, best first
    scores: np.ndarray  # fused retrieval scores
    posterior: np.ndarray  # belief that each is the wanted item; sums to 1 over the candidates

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class PolicyContext:
    facts: CatalogFacts
    candidates: Candidates
    asked: frozenset[str] = frozenset()  # attributes already asked (never asked again)
    settled: frozenset[str] = frozenset()  # attributes with a known answer or "any"
    turn: int = 1  # 1-based number of this turn
    k: int = 5  # items per recommendation
    shown: frozenset[int] = frozenset()  # items already shown (a recommendation prefers new ones)
    summary: str = ""  # the belief in words, for an LLM policy
    # attribute -> values the person ruled out ("none of these" to a question, "not red"): a
    # policy may ask such an attribute again with other values
    excluded: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # how the person answered pages so far: (with a reason or a change, bare "none of these")
    page_replies: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Ask:
    attribute: str
    options: list[str]  # values among the candidates, most likely first, then ANY
    why: str = ""  # why the policy asks (for logs and inspection; not shown to the person)


@dataclass(frozen=True)
class Recommend:
    ids: list[int]  # best first
    why: str = ""


Decision = Ask | Recommend


class Policy(ABC):
    name: str = "policy"

    @abstractmethod
    def decide(self, context: PolicyContext) -> Decision:
        """Ask one question or recommend up to ``context.k`` items."""


def top_new(context: PolicyContext, k: int | None = None) -> list[int]:
    """The k most probable candidates, preferring items not shown before."""
    k = k or context.k
    order = np.argsort(-context.candidates.posterior, kind="stable")
    ids = [int(context.candidates.ids[i]) for i in order]
    fresh = [i for i in ids if i not in context.shown]
    return (fresh + [i for i in ids if i in context.shown])[:k]


def question_options(context: PolicyContext, attribute: str, limit: int = 5) -> list[str]:
    """The values of ``attribute`` carrying the most posterior mass among the candidates, then ANY."""
    matrix = context.facts.value_matrix(attribute, context.candidates.ids)
    mass = context.candidates.posterior @ matrix
    values = context.facts.attributes[attribute].values
    order = [i for i in np.argsort(-mass, kind="stable") if mass[i] > 0][:limit]
    return [values[i] for i in order] + [ANY]
