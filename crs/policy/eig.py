"""The earlier default policy, now ``eig-greedy`` (and ``eig-no-lookahead``): ask the question
with the most expected information gain, or recommend. The default ``eig`` is
:mod:`crs.policy.planner`, which weighs questions against pages over all the turns left with the
field's answer model; this gate looked two turns ahead and under-asked (docs/experiments.md).

The posterior ``p`` over the live candidates comes from retrieval scores and constraints
(:mod:`crs.posterior`). For each attribute not yet asked or settled, the options shown are the values
carrying the most posterior mass among the candidates, plus "any". The options are suggestions:
a person may type any value (``free_answers``), so the answers modelled are every value the
candidates have, plus "none of them". A person whose item has several of them names one
(uniformly); with probability ``noise`` they answer at random. The expected information gain of
a question is

    EIG = H(p) - sum_a P(a) H(p | a),   P(a) = sum_i p_i P(a | i)

in bits. The policy recommends when the top-k items already hold ``recommend_mass`` of the
posterior (showing them is likely to succeed) or when no question gains ``min_gain_bits``
(questions stopped paying). Otherwise it looks ``horizon`` turns ahead: showing a page of k
items every turn reaches the top ``horizon * k`` items; asking first leaves ``horizon - 1``
pages, but over the posterior after the answer. It asks only when the expected mass of those
fewer pages, after the answer, beats the mass of the pages it would show without asking. It
never asks an attribute twice.

How ``sharpen`` and ``horizon`` were chosen (runs, figures, commands): docs/experiments.md.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .base import ANY, Ask, Decision, Policy, PolicyContext, Recommend, question_options, top_new


def entropy_bits(p: np.ndarray, axis: int = 0) -> np.ndarray:
    p = np.clip(p, 1e-12, 1.0)
    return -(p * np.log2(p)).sum(axis=axis)


@dataclass
class EIGPolicy(Policy):
    noise: float = 0.1
    recommend_mass: float = 0.5
    min_gain_bits: float = 0.25
    options: int = 5
    # The policy judges with p**sharpen (renormalised): the dialogue manager's posterior is kept
    # soft so answers and critiques can overturn retrieval, which leaves it underconfident about
    # its own top items (a picture start shows the target on page 1 in ~half the conversations
    # while the top 5 hold far less mass). Ranking is unchanged: the power keeps the order.
    # 4 with the dialogue manager's score temperature 0.1 = the earlier 2 with 0.05.
    sharpen: float = 4.0
    horizon: int = 2  # turns looked ahead when weighing a question against a page; 0: no lookahead
    free_answers: bool = True  # answers may name any value, not only the offered options
    name: str = "eig"

    def decide(self, context: PolicyContext) -> Decision:
        if self.sharpen != 1.0:
            p = context.candidates.posterior.astype(np.float64) ** self.sharpen
            context = replace(context, candidates=replace(context.candidates, posterior=p / p.sum()))
        candidates = context.candidates
        recommend = top_new(context)
        if len(candidates) == 0:
            return Recommend([], "nothing matches")
        mass = float(candidates.posterior[np.isin(candidates.ids, recommend)].sum())
        if mass >= self.recommend_mass:
            return Recommend(recommend, f"the top {len(recommend)} hold {mass:.0%} of the belief")
        best, gain, options = None, 0.0, []
        for info in context.facts.askable():
            if info.name in context.asked or info.name in context.settled:
                continue
            attribute_options = question_options(context, info.name, self.options)
            if len(attribute_options) <= 2:  # one value (+ any) tells nothing
                continue
            value_gain = self.gain(context, info.name, attribute_options)
            if value_gain > gain:
                best, gain, options = info.name, value_gain, attribute_options
        if best is None or gain < self.min_gain_bits:
            return Recommend(recommend, f"no question gains {self.min_gain_bits} bits (best {gain:.2f})")
        if self.horizon:
            # Over the next `horizon` turns: show a page every turn, or ask now and show a page on
            # each turn left. Ask only if the answer is expected to put more of the belief on
            # those fewer pages than the pages shown without asking hold now.
            pages = float(np.sort(candidates.posterior)[::-1][:self.horizon * context.k].sum())
            after = self.expected_top_mass(context, best, options, (self.horizon - 1) * context.k)
            if after <= pages:
                return Recommend(recommend, f"after asking {best}, {self.horizon - 1} pages would hold {after:.0%}; "
                                            f"{self.horizon} pages hold {pages:.0%} now")
        return Ask(best, options)

    def expected_top_mass(self, context: PolicyContext, attribute: str, options: list[str], n: int) -> float:
        """Expected posterior mass of the ``n`` most probable items once ``attribute`` is answered."""
        p = context.candidates.posterior.astype(np.float64)
        likelihood = self.answer_likelihood(context, attribute, options)
        answer_p = p @ likelihood
        posterior = p[:, None] * likelihood / np.maximum(answer_p, 1e-12)
        top = np.sort(posterior, axis=0)[::-1][:n].sum(axis=0)
        return float((answer_p * top).sum())

    def gain(self, context: PolicyContext, attribute: str, options: list[str]) -> float:
        """Expected information gain (bits) of asking ``attribute`` with ``options``."""
        p = context.candidates.posterior.astype(np.float64)
        likelihood = self.answer_likelihood(context, attribute, options)  # (items, answers)
        answer_p = p @ likelihood
        posterior = p[:, None] * likelihood / np.maximum(answer_p, 1e-12)
        return float(entropy_bits(p) - (answer_p * entropy_bits(posterior, axis=0)).sum())

    def answer_likelihood(self, context: PolicyContext, attribute: str, options: list[str]) -> np.ndarray:
        """(items, answers): the chance of each answer if item i is the wanted one. The offered
        options are suggestions: a person may type a value that is not offered, so the answers
        are every value the candidates have (then "none of them"), not just the buttons."""
        matrix = context.facts.value_matrix(attribute, context.candidates.ids)
        if self.free_answers:
            matrix = matrix[:, matrix.any(axis=0)]
        else:
            vocabulary = context.facts.attributes[attribute].values
            matrix = matrix[:, [vocabulary.index(o) for o in options if o != ANY]]
        has = matrix.sum(axis=1, keepdims=True)
        answers = matrix.shape[1] + 1
        likelihood = np.zeros((len(matrix), answers))
        likelihood[:, :-1] = np.where(has > 0, matrix / np.maximum(has, 1), 0.0)
        likelihood[:, -1] = (has[:, 0] == 0).astype(float)
        return (1 - self.noise) * likelihood + self.noise / answers
