"""`crs catalog info`: what a catalog holds, from the store."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from ..store import Store
from ..store.models import Attribute, Catalog, Item, ItemValue
from .images import ImageProblem, check_image_file
from .ingest import item_image_path

TOP_VALUES = 10


def catalog_info(store: Store, catalog: Catalog, verify_images: bool = False) -> dict[str, Any]:
    with store.session() as session:
        rows = session.scalars(select(Item).where(Item.catalog_id == catalog.id)).all()
        items = len(rows)
        paths = [item_image_path(catalog, item) for item in rows]
        attributes = []
        for attribute in session.scalars(select(Attribute).where(Attribute.catalog_id == catalog.id)
                                         .order_by(Attribute.position)):
            attributes.append(_attribute_info(session, attribute))
        sources = dict(session.execute(select(Item.source, func.count()).where(Item.catalog_id == catalog.id)
                                       .group_by(Item.source).order_by(func.count().desc())).all())
        licenses = dict(session.execute(select(Item.license, func.count()).where(Item.catalog_id == catalog.id)
                                        .group_by(Item.license).order_by(func.count().desc())).all())
    local = [p for p in paths if p is not None]
    present = sum(1 for p in local if p.is_file())
    images: dict[str, Any] = {"with_image_file": len(local), "present": present,
                              "coverage": round(present / items, 4) if items else 0.0, "readable": None}
    if verify_images:
        with ThreadPoolExecutor(4) as pool:
            images["readable"] = sum(pool.map(_readable, local))
    return {"catalog": catalog.name, "title": catalog.title, "items": items, "images": images,
            "attributes": attributes, "sources": sources, "licenses": licenses}


def _readable(path: Path) -> bool:
    try:
        check_image_file(path)
    except ImageProblem:
        return False
    return True


def _attribute_info(session, attribute: Attribute) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    where = ItemValue.attribute_id == attribute.id
    info: dict[str, Any] = {
        "name": attribute.name, "kind": attribute.kind, "askable": attribute.askable,
        "description": attribute.description,
        # what people read: the schema's label (else the name with spaces) and display names
        "label": attribute.label or attribute.name.replace("_", " "),
        "items_with_value": session.scalar(select(func.count(func.distinct(ItemValue.item_id))).where(where)) or 0,
    }
    if attribute.kind == "numeric":
        low, high = session.execute(select(func.min(ItemValue.number), func.max(ItemValue.number)).where(where)).one()
        info.update(min=low, max=high)
    else:
        counts = session.execute(select(ItemValue.value, func.count()).where(where).group_by(ItemValue.value)
                                 .order_by(func.count().desc(), ItemValue.value)).all()
        info.update(distinct_values=len(counts), top_values=[[value, count] for value, count in counts[:TOP_VALUES]])
        if attribute.value_order:
            info["order"] = attribute.value_order
        if attribute.display:
            info["display"] = attribute.display
    return info
