"""The one text that stands for an item in the joint space (training and indexing alike)."""
from __future__ import annotations


def item_text(title: str, description: str, tags: list[str] | str | None) -> str:
    """Title, description and tags, lower-cased (the queries people type are mostly lower-case).

    Training (`crs train-align`) and the index must build this text the same way, or item texts
    drift away from what the head learned.
    """
    if isinstance(tags, str):
        tags = [tags]
    parts = [title.strip(), (description or "").strip(), ", ".join(t.strip() for t in tags or [] if t.strip())]
    return ". ".join(p.rstrip(".") for p in parts if p).lower() + "."
