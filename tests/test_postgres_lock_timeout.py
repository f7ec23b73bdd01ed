"""open_store's busy timeout holds on PostgreSQL too: a write blocked by another connection's lock
fails as StoreBusy after it (PostgreSQL's own default is to wait forever)."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from crs.store import open_store
from crs.store.db import StoreBusy
from crs.store.models import SchemaMigration


def test_a_blocked_postgres_write_gives_up_after_the_busy_timeout(postgres_url: str) -> None:
    store = open_store(postgres_url, busy_timeout_s=0.3)
    blocker = create_engine(postgres_url)
    try:
        with blocker.connect() as other:
            other.execute(text("LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE"))  # held until rollback
            started = time.monotonic()
            with pytest.raises(StoreBusy):
                with store.transaction() as session:  # no SET LOCAL here: the store's own setting applies
                    session.add(SchemaMigration(name="x"))
            assert time.monotonic() - started < 5
            other.rollback()
    finally:
        blocker.dispose()
        store.engine.dispose()
