"""Small named migrations, applied in order and recorded in `schema_migrations`.

Each migration is a module with `NAME` and `upgrade(connection)`; its DDL is frozen in the
module (not taken from the live models), so a fresh database and an old one reach the same
schema. To change the schema, add a module and append it to MIGRATIONS.

Several processes may open one store at once (``uvicorn app:app --workers N``: every worker
migrates on its first open), so each migration runs in a transaction that first takes a lock
all of them wait for (SQLite: BEGIN IMMEDIATE, PostgreSQL: a transaction-scoped advisory lock)
and then checks the ledger again: the first applies it, the others find it done.
"""
from __future__ import annotations

from datetime import datetime
from types import ModuleType

from sqlalchemy import Column, Connection, DateTime, Engine, MetaData, String, Table, insert, select, text

from . import m0001_catalog, m0002_conversations, m0003_evaluation, m0004_attribute_labels, m0005_session_versions

MIGRATIONS: list[ModuleType] = [m0001_catalog, m0002_conversations, m0003_evaluation, m0004_attribute_labels,
                                m0005_session_versions]

# Any fixed number: the key of the advisory lock the migrations of this schema take on PostgreSQL.
_PG_LOCK_KEY = 0x637273  # "crs"

_ledger = Table(
    "schema_migrations",
    MetaData(),
    Column("name", String(100), primary_key=True),
    Column("applied_at", DateTime, nullable=False),
)


def migrate(engine: Engine, writer: Engine | None = None) -> list[str]:
    """Apply pending migrations, each in its own transaction; returns the names applied.
    ``writer``: the same engine set to take SQLite's write lock at BEGIN (crs.store.db)."""
    writer = writer or engine
    with writer.begin() as conn:
        _exclusive(conn)
        _ledger.create(conn, checkfirst=True)
        done = set(conn.scalars(select(_ledger.c.name)))
    applied = []
    for migration in MIGRATIONS:
        if migration.NAME in done:
            continue
        with writer.begin() as conn:
            _exclusive(conn)
            if conn.scalar(select(_ledger.c.name).where(_ledger.c.name == migration.NAME)) is not None:
                continue  # another process applied it while this one waited for the lock
            migration.upgrade(conn)
            conn.execute(insert(_ledger).values(name=migration.NAME, applied_at=datetime.utcnow()))
        applied.append(migration.NAME)
    return applied


def _exclusive(conn: Connection) -> None:
    """Wait until no other process is migrating this database (SQLite: BEGIN IMMEDIATE did)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
