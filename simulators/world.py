"""What a simulated user may know of a catalog: its items, their attributes, text and pictures.

:class:`SimulationWorld` reads the catalog straight from the store (the same rows the ingest
wrote) and nothing else of the system: not the dialogue manager's catalog facts, not the
parser's lexicon, not the posterior. A simulated user that knew those would speak the system's
language and could never be misunderstood (import-linter holds this boundary, see pyproject).
Its "eye" is the picture vectors of the index (the raw visual features where the index keeps
them), handed in as a plain object with ``vectors(space, ids)``.

It is opened once per process and shared by that process's conversations, which only read it.
The start kinds of a plan (:mod:`simulators.targets`) are drawn from here:

* ``other-style-image``: a picture of the same thing in another version ("this emoji, but in
  3D"). Both halves are read from the catalog's data, never from attribute names
  (:meth:`SimulationWorld._find_versions`): the *identity* attribute, where there is one, is a
  categorical attribute people do not choose by whose values each name a handful of items (the
  demo's emoji code point, drawn by three artists); the *version* attribute is the talkable one
  that differs most often between such items (the demo's art style). Without an identity
  attribute, versions are items equal on every talkable attribute but the version one (the
  shapes catalog: the outline version of a flat red circle). A catalog without pictures has
  neither.
* ``similar-image``: a picture of a different item: among items sharing the target's value of
  its finest categorical attribute (most values: the demo's subcategory), one of the three
  nearest to the target by picture, never the target or its other versions.
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
IDENTITY_GROUP = (2, 10)  # an identity value names this many items: a few versions of one thing
IDENTITY_SHARE = 0.5  # ...for at least this share of the items that have a value
TIE = 0.02  # version-attribute scores this close are a tie
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

    def __init__(self, store: Store, catalog: Catalog, index: PictureIndex | None = None) -> None:
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
        # How versions of one thing differ (the other-style-image start): see the module docstring.
        self.identity_attribute, self.version_attribute = self._find_versions()

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
        """Other versions of the same thing, with an image (see the module docstring)."""
        if self.version_attribute is None:
            return []
        key = self._concept_key(item_id)
        if key is None:
            return []
        version = self.value_list(item_id, self.version_attribute)
        return [j for j in self._concept_groups.get(key, []) if j != item_id and self.images.get(j)
                and self.value_list(j, self.version_attribute) != version]

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
        if self.version_attribute is None:
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
        """The item and its other versions."""
        key = self._concept_key(item_id)
        return {item_id} | (set(self._concept_groups.get(key, [])) if key is not None else set())

    def _concept_key(self, item_id: int) -> Hashable | None:
        """What stays the same across versions: the identity value, else every talkable value but
        the version attribute's."""
        return self._version_key(item_id, self.identity_attribute, self.version_attribute)

    def _version_key(self, item_id: int, identity: str | None, version: str | None) -> Hashable | None:
        if identity is not None:
            value = self.values(item_id).get(identity)
            return value if isinstance(value, str) and value else None
        if version is None or not self.value_list(item_id, version):
            return None
        return tuple((a.name, tuple(self.value_list(item_id, a.name))) for a in self.talkable if a.name != version)

    # -- versions of one thing, from the data --------------------------------------------------------------

    def _find_versions(self) -> tuple[str | None, str | None]:
        """(identity attribute or None, version attribute or None), read from the items with a
        picture (a version start shows one): see the module docstring."""
        pictured = [i for i in self.ids if self.images.get(i)]
        if len(pictured) < 2 or not self.talkable:
            return None, None
        identity = self._identity_attribute(pictured)
        scores = {a.name: self._version_score(pictured, identity, a.name) for a in self.talkable}
        best = max(scores.values())
        if best <= 0:  # no item has another version
            return None, None
        tied = [name for name, score in scores.items() if score >= best - TIE]
        # Two attributes that change together: one determined by the other says nothing more (the
        # demo's artwork set follows from its art style); of the rest, the one with the fewest
        # values is the smallest change (flat or outline, rather than another shape).
        kept = [a for a in tied if not any(b != a and self._determines(pictured, b, a)
                                           and not self._determines(pictured, a, b) for b in tied)]
        version = min(kept or tied, key=lambda name: (len(self.attributes[name].values), name))
        return identity, version

    def _identity_attribute(self, pictured: list[int]) -> str | None:
        """A categorical attribute people do not choose by whose values each name a few items."""
        low, high = IDENTITY_GROUP
        for attribute in self.attributes.values():
            if attribute.askable or attribute.kind != "categorical":
                continue
            counts = Counter(v for i in pictured if isinstance(v := self.values(i).get(attribute.name), str) and v)
            grouped = sum(c for c in counts.values() if low <= c <= high)
            if grouped and grouped >= IDENTITY_SHARE * sum(counts.values()):
                return attribute.name
        return None

    def _version_score(self, pictured: list[int], identity: str | None, version: str) -> float:
        """The share of pictured items with another version that differs from them in ``version``."""
        groups: dict[Hashable, list[int]] = {}
        for item_id in pictured:
            key = self._version_key(item_id, identity, version)
            if key is not None:
                groups.setdefault(key, []).append(item_id)
        with_other = 0
        for members in groups.values():
            if len(members) > 1:
                seen = Counter(tuple(self.value_list(i, version)) for i in members)
                with_other += sum(1 for i in members if seen[tuple(self.value_list(i, version))] < len(members))
        return with_other / len(pictured)

    def _determines(self, pictured: list[int], first: str, second: str) -> bool:
        """Whether an item's ``first`` values fix its ``second`` values (the same for every item)."""
        seen: dict[tuple[str, ...], tuple[str, ...]] = {}
        for item_id in pictured:
            a, b = tuple(self.value_list(item_id, first)), tuple(self.value_list(item_id, second))
            if a and b and seen.setdefault(a, b) != b:
                return False
        return True
