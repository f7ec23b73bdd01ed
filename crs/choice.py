"""How a person points at one of the items shown: the one most like the item they want.

When someone says "more like the second" or "like #2 but blue", they tell us more than that #2
is good: #2 is closer to their item than the other shown items are. Following PicHunter
(Cox et al., 2000), the chance that a person whose item is ``t`` picks shown item ``j`` is a
softmax over the shown items of their similarity to ``t``, mixed with a lapse:

    P(pick j | t, shown S) = (1 - LAPSE) * softmax_{s in S}(cos(s, t) / TEMPERATURE)[j] + LAPSE / |S|

Each pick multiplies every candidate's belief by this likelihood (:mod:`crs.posterior`), so the
items *not* picked count too, and picks add up over turns, where a liked item pulled into the
query (Rocchio) would mostly make the next page its near duplicates.

People pick by more than looks (the simulated user goes by agreeing attributes first, and by
its own picture features, not this space), so the model is kept humble: a lapse share of picks
counts as random and the temperature is wide; one pick never rules an item out. Similarity is
the cosine in the index's joint image space.
"""
from __future__ import annotations

import numpy as np

TEMPERATURE = 0.1  # cosine units
LAPSE = 0.3  # share of picks taken as random
LOOKS_SPACE = "image"  # the index space whose cosines stand for "looks like"


def choice_likelihood(candidates: np.ndarray, shown: np.ndarray, temperature: float = TEMPERATURE,
                      lapse: float = LAPSE) -> np.ndarray:
    """(len(candidates), len(shown)): for each candidate taken as the wanted item, the
    probability of picking each shown item. Rows are unit vectors; each output row sums to 1."""
    logits = (np.asarray(candidates, dtype=np.float64) @ np.asarray(shown, dtype=np.float64).T) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return (1 - lapse) * weights / weights.sum(axis=1, keepdims=True) + lapse / weights.shape[1]
