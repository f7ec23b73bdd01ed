"""What a simulated user may know of a catalog: its items, their attributes, text and pictures.

:class:`SimulationWorld` reads the catalog straight from the store (the same rows the ingest
wrote) and nothing else of the system: not the dialogue manager's catalog facts, not the
parser's lexicon, not the posterior. A simulated user that knew those would speak the system's
language and could never be misunderstood (import-linter holds this boundary, see pyproject).
Its "eye" is the picture vectors of the index (the raw visual features where the index keeps
them), handed in as a plain object with ``vectors(space, ids)``.

It is opened once per process and shared by that process's conversations, which only read it.
The start kinds of a plan (:mod:`simulators.targets`) are drawn from here:

* ``other-style-image``: a picture of the target's concept in another style ("this emoji, but
  in 3D"). The same concept is the catalog's ``concept`` attribute where it has one (the demo:
  the same emoji drawn by another artist); otherwise an item with the target's values on every
  talkable attribute but its style (the shapes catalog: the outline version of a flat red
  circle).
* ``similar-image``: a picture of a different item: among items sharing the target's value of
  its finest categorical attribute (most values: the demo's subcategory), one of the three
  nearest to the target by picture, never the target or its other-style versions.
"""
from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from sqlalchemy import select

from crs.catalog.ingest import item_image_path
from crs.store import Store
from crs.store.models import Attribute, Catalog, Item, ItemValue

from .leaks import COMMON_WORDS, LeakDetector

if TYPE_CHECKING:
    from .targets import ConversationPlan

SIMILAR_CHOICES = 3  # a similar-image start picks among this many nearest items
TALKABLE_KINDS = ("categorical", "tags")
COMMON_SHARE = 0.002  # a title word this many items share does not single one out (12k items: 24)
_WORD = re.compile(r"[^\W\d_]+")
# A value a person could say: it has letters and is not a code (hex ids, emoji code points).
_CODE = re.compile(r"^[0-9a-f]{4,}(?:[-_][0-9a-f]{2,})*$", re.IGNORECASE)


class PictureIndex(Protocol):
    """The part of a vector index a simulated user's eye uses (retrieval's FAISS index has it)."""

    has_visual: bool

    def vectors(self, space: str, ids: Sequence[int]) -> Any: ...


@dataclass(frozen=True)
class CatalogAttribute:
    """One attribute as the catalog declares it, with its values, most common first."""

    name: str
    kind: str  # categorical | tags | numeric | text
    description: str
    askable: bool
    values: tuple[str, ...]


def sayable(value: str) -> bool:
    """Whether a person could name this value: it has letters and is not a code."""
    return bool(re.search(r"[^\W\d_]", value)) and not _CODE.match(value.strip())


class SimulationWorld:
    """A catalog as simulated users see it; opened once per process, shared by its conversations."""

    def __init__(self, store: Store, catalog: Catalog, index: PictureIndex | None = None, *,
                 style_attribute: str = "style", concept_attribute: str = "concept") -> None:
        self.store = store
        self.catalog = catalog
        self.index = index
        with store.session() as db:
            items = db.scalars(select(Item).where(Item.catalog_id == catalog.id).order_by(Item.id)).all()
            self.ids: list[int] = [i.id for i in items]
            self.titles: dict[int, str] = {i.id: i.title for i in items}
            self.external_ids: dict[int, str] = {i.id: i.external_id for i in items}
            self.descriptions: dict[int, str] = {i.id: i.description or "" for i in items}
            # A local file when there is one, else the catalog's reference (a URL); None: no image.
            self.images: dict[int, str | None] = {}
            for item in items:
                path = item_image_path(catalog, item)
                self.images[item.id] = str(path) if path is not None else (item.image_ref or None)
            declared = db.scalars(select(Attribute).where(Attribute.catalog_id == catalog.id)
                                  .order_by(Attribute.position, Attribute.id)).all()
            kinds = {a.id: (a.name, a.kind) for a in declared}
            self._item_values: dict[int, dict[str, Any]] = {i: {} for i in self.ids}
            counts: dict[str, Counter[str]] = {a.name: Counter() for a in declared}
            rows = db.execute(select(ItemValue.item_id, ItemValue.attribute_id, ItemValue.value, ItemValue.number)
                              .where(ItemValue.attribute_id.in_(list(kinds))).order_by(ItemValue.id))
            for item_id, attribute_id, value, number in rows:
                name, kind = kinds[attribute_id]
                values = self._item_values.get(item_id)
                if values is None:
                    continue
                if kind == "numeric":
                    values[name] = number
                elif value is not None:
                    counts[name][value] += 1
                    if kind == "tags":
                        values.setdefault(name, []).append(value)
                    else:
                        values[name] = value
        self.attributes: dict[str, CatalogAttribute] = {
            a.name: CatalogAttribute(a.name, a.kind, a.description or "", bool(a.askable),
                                     tuple(v for v, _ in counts[a.name].most_common()))
            for a in declared}
        # What a simulated user talks about: the attributes the catalog says people choose by
        # (askable), with at least two values a person could name.
        self.talkable: tuple[CatalogAttribute, ...] = tuple(
            a for a in self.attributes.values()
            if a.askable and a.kind in TALKABLE_KINDS and sum(map(sayable, a.values)) >= 2)
        info = self.attributes
        self.style_attribute = style_attribute if style_attribute in info and info[style_attribute].kind != "numeric" \
            else None
        self.concept_attribute = concept_attribute if concept_attribute in info \
            and info[concept_attribute].kind == "categorical" else None

    # -- item facts ------------------------------------------------------------------------------------

    def values(self, item_id: int) -> dict[str, Any]:
        """Every attribute value of an item (tags as lists, numbers as floats)."""
        return self._item_values[item_id]

    def value_list(self, item_id: int, attribute: str) -> list[str]:
        """An item's values of a categorical or tag attribute as a list ([] when it has none)."""
        value = self.values(item_id).get(attribute)
        if value is None or isinstance(value, float):
            return []
        return list(value) if isinstance(value, list) else [value]

    def attributes_of(self, item_id: int) -> dict[str, Any]:
        """All of an item's attribute values (for an LLM user's brief)."""
        return dict(self.values(item_id))

    def common_words(self, item_id: int) -> list[str]:
        """Words of an item's title and description that many items share (at least
        ``COMMON_SHARE`` of the catalog, and 3 items): what a person may say about what it shows
        without naming it. Value words and short words are left out."""
        text = f"{self.titles[item_id]} {self.descriptions[item_id]}".lower()
        words = dict.fromkeys(w for w in _WORD.findall(text) if len(w) >= 3 and not w.isdigit())
        least = max(3, int(COMMON_SHARE * len(self.ids)))
        return [w for w in words if self._title_words.get(w, 0) >= least and w not in self._value_words
                and w not in COMMON_WORDS]

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
        attribute where possible, then nearest by picture."""
        same = self._same_concept(item_id)
        pool = [i for i in self._with_image if i not in same]
        finest = sorted((a for a in self.talkable if a.kind == "categorical"), key=lambda a: -len(a.values))
        for attribute in finest:
            values = set(self.value_list(item_id, attribute.name))
            if values:
                sharing = [i for i in pool if values & set(self.value_list(i, attribute.name))]
                if sharing:
                    pool = sharing
                    break
        if not pool:
            return []
        similarity = self.image_similarity(item_id, pool)
        order = np.argsort(-similarity, kind="stable") if similarity is not None else np.arange(len(pool))
        return [int(pool[i]) for i in order[:limit]]

    def has_similar(self, item_id: int) -> bool:
        """Whether :meth:`similar_items` has anything to offer (without ranking it)."""
        same = self._same_concept(item_id)
        return any(i not in same for i in self._with_image)

    def image_similarity(self, item_id: int, others: list[int]) -> np.ndarray | None:
        """Cosine of ``item_id``'s picture vector with each of ``others``; None without pictures."""
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
    def _title_words(self) -> Counter[str]:
        """In how many items' titles each word appears."""
        return Counter(w for i in self.ids for w in set(_WORD.findall(self.titles[i].lower())))

    @cached_property
    def _value_words(self) -> frozenset[str]:
        """Words of the values a user may name (they never count as naming the target)."""
        return frozenset(w for info in self.talkable for value in info.values
                         for w in re.findall(r"[^\W_]+", value.lower()))

    @cached_property
    def _image_vectors(self) -> np.ndarray | None:
        if self.index is None:
            return None
        try:
            # The simulated person's eye: the raw picture features where the index keeps them, not
            # the joint space the dialogue manager judges "looks" in (crs.choice), so that the
            # system is not handed back its own notion of similarity.
            space = "visual" if self.index.has_visual else "image"
            matrix = np.asarray(self.index.vectors(space, self.ids), dtype=np.float32)
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
