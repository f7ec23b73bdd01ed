"""Who the simulated users look for and how they open: the world they know, and seeded plans.

:class:`SimulationWorld` is what every simulator of a process shares: the catalog's facts,
titles, external ids and image paths, the rule parser's vocabulary, and (lazily) image vectors
and cross-style groups. It is opened once per process; a conversation only reads it.

:func:`plan_conversations` draws conversation ``i`` of a run from ``(seed, i)`` alone, so every
policy meets the same targets and openings, and a resumed or sharded run gets the same plans
whatever ``n`` is. The start kinds:

* ``other-style-image``: a picture of the target's concept in another style ("this emoji, but
  in 3D"). The same concept is the catalog's ``concept`` attribute where it has one (the demo:
  the same emoji drawn by another artist); otherwise an item with the target's values on every
  talkable attribute but its style (the shapes catalog: the outline version of a flat red
  circle). A target with no such item (or a catalog without a style) starts from a similar image.
* ``similar-image``: a picture of a different item: among items sharing the target's value of
  its finest categorical attribute (most values: the demo's subcategory), one of the three
  nearest to the target by image vector, never the target or its other-style versions. With no
  image anywhere, the start is text.
* ``text``: a vague description from a few of the target's values (never its title).

Default mix :data:`DEFAULT_STARTS`: 0.4 / 0.3 / 0.3, weighting the multimodal openings this
system exists for while keeping a text-only third as the classic CRS baseline.
"""
from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from sqlalchemy import select

from crs.catalog.ingest import item_image_path
from crs.understanding.rule_parser import RuleCritiqueParser
from crs.facts import AttributeInfo, CatalogFacts
from crs.search import CatalogSearch
from crs.store import Store
from crs.store.models import Catalog, Item

from .leaks import LeakDetector

START_KINDS = ("other-style-image", "similar-image", "text")
DEFAULT_STARTS: dict[str, float] = {"other-style-image": 0.4, "similar-image": 0.3, "text": 0.3}
SIMILAR_CHOICES = 3  # a similar-image start picks among this many nearest items


@dataclass(frozen=True)
class ConversationPlan:
    index: int  # conversation i of the run
    seed: int  # the conversation's own seed (simulator noise and phrasing), from (run seed, index)
    target_id: int  # store id of the hidden target
    start: str  # one of START_KINDS


class SimulationWorld:
    """What simulated users may know of a catalog; opened once per process, shared by its conversations."""

    def __init__(self, store: Store, catalog: Catalog, searcher: CatalogSearch, facts: CatalogFacts | None = None,
                 *, style_attribute: str = "style", concept_attribute: str = "concept") -> None:
        self.store = store
        self.catalog = catalog
        self.searcher = searcher
        self.facts = facts or CatalogFacts.load(store, catalog)
        self.ids: list[int] = [int(i) for i in self.facts.ids]
        with store.session() as db:
            items = db.scalars(select(Item).where(Item.catalog_id == catalog.id)).all()
            self.titles: dict[int, str] = {i.id: i.title for i in items}
            self.external_ids: dict[int, str] = {i.id: i.external_id for i in items}
            self.descriptions: dict[int, str] = {i.id: i.description or "" for i in items}
            # A local file when there is one, else the catalog's reference (a URL); None: no image.
            self.images: dict[int, str | None] = {}
            for item in items:
                path = item_image_path(catalog, item)
                self.images[item.id] = str(path) if path is not None else (item.image_ref or None)
        self.parser = RuleCritiqueParser(self.facts)
        spoken = set(self.parser.lexicon.attribute_names.values())
        # What a simulated user talks about: askable values the rule parser knows.
        self.talkable: tuple[AttributeInfo, ...] = tuple(a for a in self.facts.askable() if a.name in spoken)
        info = self.facts.attributes
        self.style_attribute = style_attribute if style_attribute in info and info[style_attribute].kind != "numeric" \
            else None
        self.concept_attribute = concept_attribute if concept_attribute in info \
            and info[concept_attribute].kind == "categorical" else None

    # -- item facts ------------------------------------------------------------------------------------

    def values(self, item_id: int) -> dict[str, Any]:
        """Every loaded attribute value of an item (tags as lists, numbers as floats)."""
        return self._values[self._row[item_id]]

    def value_list(self, item_id: int, attribute: str) -> list[str]:
        """An item's values of a categorical or tag attribute as a list ([] when it has none)."""
        value = self.values(item_id).get(attribute)
        if value is None or isinstance(value, float):
            return []
        return list(value) if isinstance(value, list) else [value]

    def attributes_of(self, item_id: int) -> dict[str, Any]:
        """All of an item's attribute values from the store, keywords included (for an LLM user's brief)."""
        from crs.catalog.browse import item_attributes

        with self.store.session() as db:
            return item_attributes(db, [item_id])[item_id]

    def leak_detector(self, item_id: int) -> LeakDetector:
        return LeakDetector(self.titles[item_id], self.external_ids[item_id], self._value_words)

    # -- related items -------------------------------------------------------------------------------

    def other_style_items(self, item_id: int) -> list[int]:
        """Items of the same concept in another style, with an image (see the module docstring)."""
        if self.style_attribute is None:
            return []
        key = self._concept_key(item_id)
        if key is None:
            return []
        style = self.value_list(item_id, self.style_attribute)
        return [j for j in self._concept_groups.get(key, []) if j != item_id and self.images.get(j)
                and self.value_list(j, self.style_attribute) != style]

    def similar_items(self, item_id: int, limit: int = SIMILAR_CHOICES) -> list[int]:
        """Different items most like ``item_id``: the same value of its finest categorical
        attribute where possible, then nearest by image vector."""
        same = self._same_concept(item_id)
        pool = np.array([i for i in self._with_image if i not in same], dtype=np.int64)
        finest = sorted((a for a in self.talkable if a.kind == "categorical"), key=lambda a: -len(a.values))
        for attribute in finest:
            values = self.value_list(item_id, attribute.name)
            if values:
                sharing = pool[self.facts.has_value(attribute.name, values, pool)]
                if len(sharing):
                    pool = sharing
                    break
        if not len(pool):
            return []
        similarity = self.image_similarity(item_id, [int(i) for i in pool])
        order = np.argsort(-similarity, kind="stable") if similarity is not None else np.arange(len(pool))
        return [int(pool[i]) for i in order[:limit]]

    def has_similar(self, item_id: int) -> bool:
        """Whether :meth:`similar_items` has anything to offer (without ranking it)."""
        same = self._same_concept(item_id)
        return any(i not in same for i in self._with_image)

    def image_similarity(self, item_id: int, others: list[int]) -> np.ndarray | None:
        """Cosine of ``item_id``'s image vector with each of ``others``; None without image vectors."""
        matrix = self._image_vectors
        if matrix is None or not others:
            return None
        rows = [self._row[i] for i in others]
        return matrix[rows] @ matrix[self._row[item_id]]

    def start_item(self, plan: ConversationPlan) -> int | None:
        """The item whose picture opens the conversation (None for a text start); fixed by the plan."""
        rng = random.Random(f"start-item:{plan.seed}")
        if plan.start == "other-style-image":
            choices = self.other_style_items(plan.target_id)
        elif plan.start == "similar-image":
            choices = self.similar_items(plan.target_id)
        else:
            return None
        return rng.choice(choices) if choices else None

    # -- lazily built tables -----------------------------------------------------------------------------

    @cached_property
    def _row(self) -> dict[int, int]:
        return {item_id: row for row, item_id in enumerate(self.ids)}

    @cached_property
    def _values(self) -> list[dict[str, Any]]:
        return self.facts.values_of(self.facts.ids)

    @cached_property
    def _value_words(self) -> frozenset[str]:
        """Words of the values a user may name (they never count as naming the target)."""
        spoken = set(self.parser.lexicon.attribute_names.values())
        return frozenset(w for name in spoken for value in self.facts.attributes[name].values
                         for w in re.findall(r"[^\W_]+", value.lower()))

    @cached_property
    def _image_vectors(self) -> np.ndarray | None:
        try:
            # The simulated person's eye: the raw picture features where the index keeps them, not
            # the joint space the dialogue manager judges "looks" in (crs.choice), so that the
            # system is not handed back its own notion of similarity.
            space = "visual" if self.searcher.index.has_visual else "image"
            matrix = np.asarray(self.searcher.index.vectors(space, self.ids), dtype=np.float32)
        except KeyError:  # an index that does not hold every item: compare by attributes only
            return None
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms > 0, norms, 1.0)

    @cached_property
    def _concept_groups(self) -> dict[Hashable, list[int]]:
        groups: dict[Hashable, list[int]] = {}
        if self.style_attribute is None:
            return groups
        for item_id in self.ids:
            key = self._concept_key(item_id)
            if key is not None:
                groups.setdefault(key, []).append(item_id)
        return groups

    @cached_property
    def _with_image(self) -> list[int]:
        return [i for i in self.ids if self.images.get(i)]

    def _same_concept(self, item_id: int) -> set[int]:
        """The item and its versions in other styles."""
        key = self._concept_key(item_id)
        return {item_id} | (set(self._concept_groups.get(key, [])) if key is not None else set())

    def _concept_key(self, item_id: int) -> Hashable | None:
        """What stays the same across styles: the concept, else every talkable value but the style."""
        if self.concept_attribute is not None:
            concept = self.values(item_id).get(self.concept_attribute)
            return concept if isinstance(concept, str) and concept else None
        if self.style_attribute is None or not self.value_list(item_id, self.style_attribute):
            return None
        return tuple((a.name, tuple(self.value_list(item_id, a.name)))
                     for a in self.talkable if a.name != self.style_attribute)


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
