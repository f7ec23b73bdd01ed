"""What a policy sees and what it decides, and the one-method base class.

A policy gets the live candidates (ids, retrieval scores and the belief's posterior over them)
and decides: ASK about one attribute (options taken from the candidates) or RECOMMEND items.
The default is expected information gain (:mod:`crs.policy.eig`); baselines share this
interface (:mod:`crs.policy.baselines`), and so does the LLM policy (:mod:`crs.llm.policy`).
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from rapidfuzz import fuzz

from ..facts import CatalogFacts

ANY = "any"  # the option every question offers: "I don't mind"

# A question is asked only about an attribute that items holding at least this share of the
# live candidates' posterior mass have a value for. A person answers about the item they want:
# when it most likely has no value (films' mpaa_rating: 85% of films have none), the honest
# answer is "I don't know" or "any", and a model that reads "any" as "it has none" learns from
# an answer nobody can give. 0.5 = the item more likely has a value than not, so the likely
# answer is a value; every asking policy checks it here (question_options, and the planner's
# own option lists through offered_values).
MIN_COVERAGE = 0.5
# Two options are near-duplicates (skipped: the less likely one is not offered beside the
# other) at this rapidfuzz token-set ratio, after singular/plural folding: "animals",
# "animal mammal" and "mammals" are one choice to a person, and two buttons for it split the
# answers between values that mean the same.
DUPLICATE_RATIO = 90.0


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
    # the person's words name items the catalog has (some item's own words hold all of them):
    # plain search finds those, so a first page is worth showing before any question
    named: bool = False


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


def live_posterior(context: PolicyContext) -> np.ndarray:
    """The posterior over the live candidates: items shown and not taken count for nothing (they
    were rejected), unless every candidate was shown. Sums to 1."""
    p = np.asarray(context.candidates.posterior, dtype=np.float64)
    if context.shown:
        unshown = np.where(np.isin(context.candidates.ids, list(context.shown)), 0.0, p)
        if unshown.sum() > 0:
            p = unshown
    total = p.sum()
    return p / total if total > 0 else p


def coverage(mass: np.ndarray, matrix: np.ndarray) -> float:
    """Share of ``mass`` (per row of ``matrix``) on rows that have some value of the attribute."""
    total = float(mass.sum())
    return float(mass @ matrix.any(axis=1)) / total if total > 0 else 0.0


def question_options(context: PolicyContext, attribute: str, limit: int = 5) -> list[str]:
    """The values of ``attribute`` carrying the most posterior mass among the candidates, no two
    alike (:func:`offered_values`), then ANY; [] when most of the live candidates' mass has no
    value for it (:data:`MIN_COVERAGE`): such an attribute is not asked."""
    matrix = context.facts.value_matrix(attribute, context.candidates.ids)
    if coverage(live_posterior(context), matrix) < MIN_COVERAGE:
        return []
    mass = context.candidates.posterior @ matrix
    values = context.facts.attributes[attribute].values
    return [values[i] for i in offered_values(values, mass, limit)] + [ANY]


def offered_values(values: Sequence[str], mass: np.ndarray, limit: int, excluded: Iterable[str] = ()) -> list[int]:
    """Indices of the values a question offers: the most mass first, mass > 0, not ``excluded``,
    and none a near-duplicate of a more likely one already offered (:func:`near_duplicate`)."""
    excluded = frozenset(excluded)
    picked: list[int] = []
    for i in np.argsort(-mass, kind="stable"):
        if len(picked) >= limit or mass[i] <= 0:
            break
        if values[i] in excluded or any(near_duplicate(values[i], values[j]) for j in picked):
            continue
        picked.append(int(i))
    return picked


def _singular(word: str) -> str:
    """English plural to singular for the common cases ("arrows", "boxes", "berries"); short
    words and "-ss" words ("glass") are left alone."""
    if len(word) <= 3 or not word.endswith("s") or word.endswith("ss"):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    return word[:-1]


def _fold(value: str) -> tuple[str, ...]:
    """Lower-case words, punctuation dropped, each made singular ("arrows" -> "arrow", "boxes" ->
    "box"; "glass" stays), sorted without repeats; "and" is a spelling of "&", not a word."""
    words = re.findall(r"[a-z0-9]+", value.lower())
    return tuple(sorted({_singular(w) for w in words if w != "and"}))


@lru_cache(maxsize=65536)
def near_duplicate(a: str, b: str) -> bool:
    """Whether two values mean the same to a person choosing between them: the same words once
    folded ("arrow"/"arrows", "food & drink"/"food and drink"), or a token-set ratio of at least
    :data:`DUPLICATE_RATIO` ("mammals" is within "animal mammal"). Containment alone does not
    count when the shared words are too short to name anything (under 3 letters: "pg" in
    "pg-13") or the extra words hold digits (a number tells values apart)."""
    fa, fb = _fold(a), _fold(b)
    if fa == fb:
        return True
    if fuzz.token_set_ratio(" ".join(fa), " ".join(fb)) < DUPLICATE_RATIO:
        return False
    shared, extra = set(fa) & set(fb), set(fa) ^ set(fb)
    if set(fa) <= set(fb) or set(fb) <= set(fa):  # the ratio is 100 for any containment
        return sum(len(w) for w in shared) >= 3 and not any(c.isdigit() for w in extra for c in w)
    return True
