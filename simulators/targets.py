"""Who the simulated users look for and how they open: seeded plans over a
:class:`~simulators.world.SimulationWorld` (the catalog as simulated users see it).

:func:`plan_conversations` draws conversation ``i`` of a run from ``(seed, i)`` alone, so every
policy meets the same targets and openings, and a resumed or sharded run gets the same plans
whatever ``n`` is. The start kinds:

* ``other-style-image``: a picture of the same thing in another version ("this emoji, but in
  3D"), the versions read from the catalog's data (see :mod:`simulators.world` for both picture
  starts). A target with no other version starts from a similar image.
* ``similar-image``: a picture of a different item: among items sharing the target's value of
  its finest categorical attribute (most values: the demo's subcategory), one of the three
  nearest to the target by image vector, never the target or its other versions. A target with
  no such item starts with text.
* ``text``: a vague description from a few of the target's values (never its title).

Default mix :data:`DEFAULT_STARTS`: 0.4 / 0.3 / 0.3, weighting the multimodal openings this
system exists for while keeping a text-only third as the classic CRS baseline.
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .world import SimulationWorld

START_KINDS = ("other-style-image", "similar-image", "text")
PICTURE_STARTS = ("other-style-image", "similar-image")  # openings that need item pictures
DEFAULT_STARTS: dict[str, float] = {"other-style-image": 0.4, "similar-image": 0.3, "text": 0.3}


@dataclass(frozen=True)
class ConversationPlan:
    index: int  # conversation i of the run
    seed: int  # the conversation's own seed (simulator noise and phrasing), from (run seed, index)
    target_id: int  # store id of the hidden target
    start: str  # one of START_KINDS


def conversation_seed(seed: int, index: int) -> int:
    """Conversation ``index``'s own seed: a hash, so neighbouring runs' seeds do not overlap."""
    digest = hashlib.sha256(f"crs-sim:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def plan_conversation(world: SimulationWorld, index: int, seed: int,
                      starts: Mapping[str, float] | None = None) -> ConversationPlan:
    """Conversation ``index`` of a run seeded ``seed``: depends on nothing else."""
    weights = start_weights(starts)
    own_seed = conversation_seed(seed, index)
    rng = random.Random(own_seed)
    target = world.ids[rng.randrange(len(world.ids))]
    draw = rng.random() * sum(weights.values())
    start = list(weights)[-1]  # float rounding can leave draw a hair above the last bound
    for kind, weight in weights.items():
        draw -= weight
        if draw < 0:
            start = kind
            break
    if start == "other-style-image" and not world.other_style_items(target):
        start = "similar-image"
    if start == "similar-image" and not world.has_similar(target):
        start = "text"
    return ConversationPlan(index, own_seed, target, start)


def plan_conversations(world: SimulationWorld, n: int, seed: int,
                       starts: Mapping[str, float] | None = None) -> list[ConversationPlan]:
    """The plans of conversations 0..n-1 (see :func:`plan_conversation`)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not world.ids:
        raise ValueError(f"catalog {world.catalog.name!r} has no items to look for")
    return [plan_conversation(world, index, seed, starts) for index in range(n)]


def text_only_starts(starts: Mapping[str, float] | None, catalog: str, *, asked: bool) -> dict[str, float] | None:
    """The opening mix for a catalog without pictures: None when ``starts`` has no picture
    opening, {"text": 1.0} when the mix is the default (``asked`` False); picture openings asked
    for by name are an error, never quietly replaced."""
    weights = start_weights(starts)
    pictures = [kind for kind in PICTURE_STARTS if kind in weights]
    if not pictures:
        return None
    if asked:
        raise ValueError(f"catalog {catalog!r} has no pictures, so no conversation can open with "
                         f"{' or '.join(pictures)}; use text openings only (--starts text)")
    return {"text": 1.0}


def start_weights(starts: Mapping[str, float] | None) -> dict[str, float]:
    """The start mix in the fixed order of START_KINDS (the mapping's own order must not matter),
    kinds of weight 0 left out."""
    starts = DEFAULT_STARTS if starts is None else starts
    unknown = sorted(set(starts) - set(START_KINDS))
    if unknown:
        raise ValueError(f"unknown start kind(s) {', '.join(unknown)}; expected {', '.join(START_KINDS)}")
    if any(w < 0 for w in starts.values()) or sum(starts.values()) <= 0:
        raise ValueError(f"start weights must be >= 0 and not all 0, got {dict(starts)}")
    return {kind: float(starts[kind]) for kind in START_KINDS if starts.get(kind, 0) > 0}
