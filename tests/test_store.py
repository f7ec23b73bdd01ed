from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from crs.store import StoreError, open_store
from crs.store.migrations import MIGRATIONS
from crs.store.models import Base, SchemaMigration


def test_migrations_are_recorded_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    store = open_store(url)
    with store.session() as session:
        names = list(session.scalars(select(SchemaMigration.name)))
    assert names == [m.NAME for m in MIGRATIONS]
    open_store(url)  # a second open applies nothing and does not fail
    with store.session() as session:
        assert list(session.scalars(select(SchemaMigration.name))) == names


def test_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    """The frozen migration DDL and the ORM models must not drift apart."""
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    inspector = inspect(store.engine)
    for table in Base.metadata.sorted_tables:
        migrated = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(migrated) == {c.name for c in table.columns}, table.name
        for column in table.columns:
            assert bool(migrated[column.name]["nullable"]) == bool(column.nullable), (table.name, column.name)


def test_locked_database_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = open_store(f"sqlite:///{path}", busy_timeout_s=0.1)
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked"):
            with store.transaction() as session:
                session.add(SchemaMigration(name="x"))
    finally:
        blocker.rollback()
        blocker.close()
    with store.session() as session:  # nothing was written, and the store still works
        assert "x" not in set(session.scalars(select(SchemaMigration.name)))
