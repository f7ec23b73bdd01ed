"""Small named migrations, applied in order and recorded in `schema_migrations`.

Each migration is a module with `NAME` and `upgrade(connection)`; its DDL is frozen in the
module (not taken from the live models), so a fresh database and an old one reach the same
schema. To change the schema, add a module and append it to MIGRATIONS.
"""
from __future__ import annotations

from datetime import datetime
from types import ModuleType

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, insert, select

from . import m0001_catalog, m0002_conversations, m0003_evaluation, m0004_attribute_labels

MIGRATIONS: list[ModuleType] = [m0001_catalog, m0002_conversations, m0003_evaluation, m0004_attribute_labels]

_ledger = Table(
    "schema_migrations",
    MetaData(),
    Column("name", String(100), primary_key=True),
    Column("applied_at", DateTime, nullable=False),
)


def migrate(engine: Engine) -> list[str]:
    """Apply pending migrations, each in its own transaction; returns the names applied."""
    with engine.begin() as conn:
        _ledger.create(conn, checkfirst=True)
        done = set(conn.scalars(select(_ledger.c.name)))
    applied = []
    for migration in MIGRATIONS:
        if migration.NAME in done:
            continue
        with engine.begin() as conn:
            migration.upgrade(conn)
            conn.execute(insert(_ledger).values(name=migration.NAME, applied_at=datetime.utcnow()))
        applied.append(migration.NAME)
    return applied
