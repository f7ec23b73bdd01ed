"""The default policy: ask the question with the most expected information gain, or recommend.

The posterior ``p`` over the live candidates comes from retrieval scores and constraints
(:mod:`crs.dialogue`). For each attribute not yet asked or settled, the options are the values
carrying the most posterior mass among the candidates, plus "any". A person whose item has
some of the offered values picks one of them (uniformly), otherwise "any"; with probability
``noise`` they answer at random. The expected information gain of a question is

    EIG = H(p) - sum_a P(a) H(p | a),   P(a) = sum_i p_i P(a | i)

in bits. The policy recommends when the top-k items already hold ``recommend_mass`` of the
posterior (showing them is likely to succeed) or when no question gains ``min_gain_bits``
(questions stopped paying); otherwise it asks the best question. It never asks an attribute
twice.
"""
from __future__ import annotations

from dataclasses import dataclass

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
    name: str = "eig"

    def decide(self, context: PolicyContext) -> Decision:
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
        return Ask(best, options)

    def gain(self, context: PolicyContext, attribute: str, options: list[str]) -> float:
        """Expected information gain (bits) of asking ``attribute`` with ``options``."""
        p = context.candidates.posterior.astype(np.float64)
        likelihood = self.answer_likelihood(context, attribute, options)  # (items, answers)
        answer_p = p @ likelihood
        posterior = p[:, None] * likelihood / np.maximum(answer_p, 1e-12)
        return float(entropy_bits(p) - (answer_p * entropy_bits(posterior, axis=0)).sum())

    def answer_likelihood(self, context: PolicyContext, attribute: str, options: list[str]) -> np.ndarray:
        values = [o for o in options if o != ANY]
        vocabulary = context.facts.attributes[attribute].values
        matrix = context.facts.value_matrix(attribute, context.candidates.ids)[:, [vocabulary.index(v) for v in values]]
        has = matrix.sum(axis=1, keepdims=True)
        answers = len(values) + 1
        likelihood = np.zeros((len(matrix), answers))
        likelihood[:, :-1] = np.where(has > 0, matrix / np.maximum(has, 1), 0.0)
        likelihood[:, -1] = (has[:, 0] == 0).astype(float)
        return (1 - self.noise) * likelihood + self.noise / answers
