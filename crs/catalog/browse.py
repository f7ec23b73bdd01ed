"""Read-side catalog queries shared by the web app and the CLI: items by id, attribute values."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from ..store import Store
from ..store.models import Attribute, Catalog, Item, ItemValue
from .ingest import item_image_path


@dataclass(frozen=True)
class ItemView:
    id: str
    title: str
    description: str
    image_path: Path | None
    attributes: dict[str, Any]
    source: str
    license: str
    # The picture's address when the catalog knows it only by URL (ingested without fetching it).
    remote_image: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "description": self.description, "attributes": self.attributes,
                "source": self.source, "license": self.license, "has_image": self.image_path is not None}


def item_attributes(session, item_ids: list[int]) -> dict[int, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """All attribute values of the given items: tags as lists, categorical as a string, numbers as floats."""
    out: dict[int, dict[str, Any]] = {i: {} for i in item_ids}
    if not item_ids:
        return out
    rows = session.execute(select(ItemValue.item_id, Attribute.name, Attribute.kind, ItemValue.value, ItemValue.number)
                           .join(Attribute, Attribute.id == ItemValue.attribute_id)
                           .where(ItemValue.item_id.in_(item_ids)).order_by(ItemValue.id)).all()
    for item_id, name, kind, value, number in rows:
        if kind == "tags":
            out[item_id].setdefault(name, []).append(value)
        else:
            out[item_id][name] = number if kind == "numeric" else value
    return out


def get_item(store: Store, catalog: Catalog, external_id: str) -> ItemView | None:
    with store.session() as session:
        item = session.scalar(select(Item).where(Item.catalog_id == catalog.id, Item.external_id == external_id))
        if item is None:
            return None
        return _view(catalog, item, item_attributes(session, [item.id])[item.id])


def attribute_values(store: Store, catalog: Catalog, name: str, limit: int = 50) -> list[str]:
    """The most common values of one attribute, most common first."""
    with store.session() as session:
        rows = session.execute(select(ItemValue.value).join(Attribute, Attribute.id == ItemValue.attribute_id)
                               .where(Attribute.catalog_id == catalog.id, Attribute.name == name,
                                      ItemValue.value.is_not(None))
                               .group_by(ItemValue.value).order_by(func.count().desc()).limit(limit)).all()
    return [r[0] for r in rows]


def _view(catalog: Catalog, item: Item, attributes: dict[str, Any]) -> ItemView:
    ref = item.image_ref or ""
    return ItemView(item.external_id, item.title, item.description, item_image_path(catalog, item), attributes,
                    item.source, item.license, ref if ref.startswith(("http://", "https://")) else "")
