"""The catalog's attributes and every item's values, in memory, as arrays.

Each turn the policy scores questions over a few hundred candidates and the belief checks
constraints on them; a database round trip per check would cost more than the whole turn's
budget. :class:`CatalogFacts` loads the values once per catalog (about a second for the 12k
demo items) and answers "which of these items are blue?" with one numpy operation.

Open tag attributes with very many values (free keywords) are left out: nobody is asked about
them and the text query already covers them.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from .store import Store
from .store.models import Attribute, Catalog, Item, ItemValue

MAX_TAG_VALUES = 300  # tag attributes with more distinct values are keywords, not facts to ask about


def in_sentence(label: str) -> str:
    """A label or display name inside a sentence: "Genre" -> "genre", but "MPAA rating" and "3D"
    stay (an acronym)."""
    return label if len(label) > 1 and label[1].isupper() else label[:1].lower() + label[1:]


@dataclass(frozen=True)
class AttributeInfo:
    name: str
    kind: str  # categorical | tags | numeric
    askable: bool
    values: tuple[str, ...]  # the vocabulary: declared values, else those present, most common first
    order: tuple[str, ...] | None  # low to high, for relative critiques on categorical values
    description: str = ""
    label: str = ""  # what people call it (the schema's `label`); "" = from the name
    # The schema's `display` names of values, as (value, name) pairs (hashable, like the spec's).
    display: tuple[tuple[str, str], ...] = ()

    @property
    def ordered(self) -> bool:
        return self.kind == "numeric" or self.order is not None

    @property
    def display_label(self) -> str:
        """The attribute as people read it: the schema's label, else the name with spaces
        ("mpaa_rating" -> "mpaa rating"); never the raw field name."""
        return self.label or self.name.replace("_", " ")

    def display_value(self, value: str) -> str:
        """A value as people read it: its display name, else the value as stored."""
        return dict(self.display).get(value, value)


class CatalogFacts:
    def __init__(self, catalog: str, ids: np.ndarray, attributes: dict[str, AttributeInfo],
                 codes: dict[str, np.ndarray], tags: dict[str, np.ndarray], numbers: dict[str, np.ndarray],
                 keywords: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        self.catalog = catalog
        self.ids = ids  # sorted store ids; row r of every array belongs to ids[r]
        self.attributes = attributes
        self._codes = codes  # categorical: value index per row, -1 = none
        self._tags = tags  # tags: bool (rows, values)
        self._numbers = numbers  # numeric: float per row, NaN = none
        # tags with more than MAX_TAG_VALUES values (a film's cast): (rows, value codes) per
        # (item, value) pair, sorted by row. Too many values to ask about or to hold as a dense
        # matrix, but a person names them ("with tom hanks"), so constraints on them must hold.
        self._keywords = keywords or {}

    @classmethod
    def load(cls, store: Store, catalog: Catalog) -> CatalogFacts:
        with store.session() as session:
            ids = np.array(session.scalars(select(Item.id).where(Item.catalog_id == catalog.id).order_by(Item.id)).all(),
                           dtype=np.int64)
            attributes = session.scalars(select(Attribute).where(Attribute.catalog_id == catalog.id)
                                         .order_by(Attribute.position)).all()
            rows = session.execute(select(ItemValue.attribute_id, ItemValue.item_id, ItemValue.value, ItemValue.number)
                                   .join(Attribute, Attribute.id == ItemValue.attribute_id)
                                   .where(Attribute.catalog_id == catalog.id)).all()
        by_attribute: dict[int, list[tuple[int, str | None, float | None]]] = {}
        for attribute_id, item_id, value, number in rows:
            by_attribute.setdefault(attribute_id, []).append((item_id, value, number))
        infos, codes, tags, numbers, keywords = {}, {}, {}, {}, {}
        for attribute in attributes:
            values = by_attribute.get(attribute.id, [])
            item_rows = np.searchsorted(ids, np.array([v[0] for v in values], dtype=np.int64))
            if attribute.kind == "numeric":
                column = np.full(len(ids), np.nan)
                column[item_rows] = [v[2] for v in values]
                numbers[attribute.name] = column
                vocabulary: tuple[str, ...] = ()
            else:
                counts = Counter(v[1] for v in values if v[1] is not None)
                present = [value for value, _ in counts.most_common()]
                declared = list(attribute.allowed_values or [])
                vocabulary = tuple(declared + [v for v in present if v not in declared]) if declared else tuple(present)
                index = {value: i for i, value in enumerate(vocabulary)}
                if attribute.kind == "tags" and len(vocabulary) > MAX_TAG_VALUES:
                    order = np.argsort(item_rows, kind="stable")
                    keywords[attribute.name] = (item_rows[order].astype(np.int64),
                                                np.array([index[v[1]] for v in values], dtype=np.int64)[order])
                elif attribute.kind == "categorical":
                    column = np.full(len(ids), -1, dtype=np.int32)
                    column[item_rows] = [index[v[1]] for v in values]
                    codes[attribute.name] = column
                else:
                    matrix = np.zeros((len(ids), len(vocabulary)), dtype=bool)
                    matrix[item_rows, [index[v[1]] for v in values]] = True
                    tags[attribute.name] = matrix
            infos[attribute.name] = AttributeInfo(
                attribute.name, attribute.kind, bool(attribute.askable), vocabulary,
                tuple(attribute.value_order) if attribute.value_order else None, attribute.description or "",
                attribute.label or "", tuple(sorted((attribute.display or {}).items())))
        return cls(catalog.name, ids, infos, codes, tags, numbers, keywords)

    # -- lookups -------------------------------------------------------------------------------------

    def rows(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        rows = np.searchsorted(self.ids, ids)
        if len(ids) and (rows.max(initial=0) >= len(self.ids) or (self.ids[np.minimum(rows, len(self.ids) - 1)] != ids).any()):
            raise KeyError(f"items not in catalog {self.catalog!r}")
        return rows

    def has_value(self, attribute: str, values: Iterable[str], ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """True per item that has any of ``values`` (categorical or tags)."""
        info = self.attributes[attribute]
        wanted = [info.values.index(v) for v in values if v in info.values]
        rows = self.rows(ids)
        if info.kind == "categorical":
            return np.isin(self._codes[attribute][rows], wanted)
        if attribute in self._keywords:
            entry_rows, entry_codes = self._keywords[attribute]
            return np.isin(rows, entry_rows[np.isin(entry_codes, wanted)])
        if info.kind == "tags":
            return self._tags[attribute][rows][:, wanted].any(axis=1) if wanted else np.zeros(len(rows), dtype=bool)
        raise ValueError(f"{attribute} is numeric: compare numbers, not values")

    def value_counts(self, attribute: str) -> dict[str, int]:
        """How many items have each value of a categorical or tags attribute."""
        info = self.attributes[attribute]
        if attribute in self._keywords:
            codes = self._keywords[attribute][1]
        elif attribute in self._codes:
            codes = self._codes[attribute][self._codes[attribute] >= 0]
        elif attribute in self._tags:
            return {v: int(c) for v, c in zip(info.values, self._tags[attribute].sum(axis=0))}
        else:
            raise ValueError(f"{attribute} is numeric: it has no values to count")
        counts = np.bincount(codes, minlength=len(info.values))
        return {v: int(c) for v, c in zip(info.values, counts)}

    def value_matrix(self, attribute: str, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """(items, vocabulary) bool: which values each item has (one at most for categorical)."""
        info = self.attributes[attribute]
        rows = self.rows(ids)
        if info.kind == "tags":
            return self._tags[attribute][rows]
        if info.kind == "categorical":
            codes = self._codes[attribute][rows]
            matrix = np.zeros((len(rows), len(info.values)), dtype=bool)
            known = codes >= 0
            matrix[np.flatnonzero(known), codes[known]] = True
            return matrix
        raise ValueError(f"{attribute} is numeric")

    def numbers(self, attribute: str, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        return self._numbers[attribute][self.rows(ids)]

    def ranks(self, attribute: str, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Position on the attribute's scale per item (number, or index in ``order``); NaN if unknown."""
        info = self.attributes[attribute]
        if info.kind == "numeric":
            return self.numbers(attribute, ids)
        if info.order is None:
            raise ValueError(f"{attribute} has no order: it cannot be 'more' or 'less'")
        position = np.array([info.order.index(v) if v in info.order else np.nan for v in info.values] + [np.nan])
        codes = self._codes[attribute][self.rows(ids)]
        return position[np.where(codes >= 0, codes, len(info.values))]

    def values_of(self, ids: Sequence[int] | np.ndarray) -> list[dict[str, list[str] | str | float]]:
        """Every loaded attribute value of each item (for reasons, references and simulators)."""
        rows = self.rows(ids)
        out: list[dict[str, list[str] | str | float]] = [{} for _ in rows]
        for name, info in self.attributes.items():
            for i, row in enumerate(rows):
                if name in self._codes and self._codes[name][row] >= 0:
                    out[i][name] = info.values[self._codes[name][row]]
                elif name in self._tags:
                    present = np.flatnonzero(self._tags[name][row])
                    if len(present):
                        out[i][name] = [info.values[j] for j in present]
                elif name in self._keywords:
                    entry_rows, entry_codes = self._keywords[name]
                    lo, hi = np.searchsorted(entry_rows, [row, row + 1])
                    if hi > lo:
                        out[i][name] = [info.values[j] for j in entry_codes[lo:hi]]
                elif name in self._numbers and not np.isnan(self._numbers[name][row]):
                    out[i][name] = float(self._numbers[name][row])
        return out

    def askable(self) -> list[AttributeInfo]:
        return [a for a in self.attributes.values() if a.askable and a.kind != "numeric"
                and (a.name in self._codes or a.name in self._tags)]
