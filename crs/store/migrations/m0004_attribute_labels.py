"""Attribute labels: what people call an attribute (``label``) and its values (``display``).

Both come from the catalog's schema file (docs/catalog-format.md) and are only shown to people:
questions, option buttons and reasons use them instead of field names like ``mpaa_rating``. Both
are nullable, so an existing store keeps working unchanged; the next ingest of a catalog (or of
the demo, when its schema changes) fills them.
"""
from __future__ import annotations

from sqlalchemy import JSON, Connection, String, inspect, text

NAME = "0004_attribute_labels"


def upgrade(conn: Connection) -> None:
    present = {c["name"] for c in inspect(conn).get_columns("attributes")}
    # ALTER TABLE ... ADD COLUMN with the dialect's own type names: the same DDL on SQLite and PostgreSQL.
    for name, kind in (("label", String(200)), ("display", JSON())):
        if name not in present:
            conn.execute(text(f"ALTER TABLE attributes ADD COLUMN {name} {kind.compile(dialect=conn.dialect)}"))
