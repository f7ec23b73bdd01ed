"""Catalogs, their declared attributes, items and item attribute values."""
from __future__ import annotations

from sqlalchemy import (
    JSON, Boolean, Column, Connection, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
    UniqueConstraint,
)

NAME = "0001_catalog"


def upgrade(conn: Connection) -> None:
    md = MetaData()
    Table(
        "catalogs", md,
        Column("id", Integer, primary_key=True),
        Column("name", String(100), nullable=False, unique=True),
        Column("title", String(300), nullable=False),
        Column("image_root", Text, nullable=False),
        Column("content_hash", String(64), nullable=False),
        Column("updated_at", DateTime, nullable=False),
    )
    Table(
        "attributes", md,
        Column("id", Integer, primary_key=True),
        Column("catalog_id", Integer, ForeignKey("catalogs.id", ondelete="CASCADE"), nullable=False),
        Column("name", String(100), nullable=False),
        Column("kind", String(20), nullable=False),
        Column("description", Text, nullable=False),
        Column("askable", Boolean, nullable=False),
        Column("allowed_values", JSON, nullable=True),
        Column("value_order", JSON, nullable=True),
        Column("position", Integer, nullable=False),
        UniqueConstraint("catalog_id", "name"),
    )
    Table(
        "items", md,
        Column("id", Integer, primary_key=True),
        Column("catalog_id", Integer, ForeignKey("catalogs.id", ondelete="CASCADE"), nullable=False, index=True),
        Column("external_id", String(200), nullable=False),
        Column("title", Text, nullable=False),
        Column("description", Text, nullable=False),
        Column("image_ref", Text, nullable=False),
        Column("image_file", Text, nullable=True),
        Column("image_sha1", String(40), nullable=True),
        Column("source", Text, nullable=False),
        Column("license", Text, nullable=False),
        Column("extra", JSON, nullable=True),
        Column("row_hash", String(40), nullable=False),
        UniqueConstraint("catalog_id", "external_id"),
    )
    Table(
        "item_values", md,
        Column("id", Integer, primary_key=True),
        Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
        Column("attribute_id", Integer, ForeignKey("attributes.id", ondelete="CASCADE"), nullable=False),
        Column("value", Text, nullable=True),
        Column("number", Float, nullable=True),
        Index("ix_item_values_attribute_value", "attribute_id", "value"),
        Index("ix_item_values_item", "item_id"),
    )
    md.create_all(conn)
