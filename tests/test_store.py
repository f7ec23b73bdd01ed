from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import OperationalError

from crs.store import StoreBusy, StoreError, open_store, redact_url
from crs.store.db import explain
from crs.store.migrations import MIGRATIONS
from crs.store.models import Base, SchemaMigration


def test_migrations_are_recorded_once(store_url: str) -> None:
    url = store_url
    store = open_store(url)
    with store.session() as session:
        names = list(session.scalars(select(SchemaMigration.name)))
    assert names == [m.NAME for m in MIGRATIONS]
    open_store(url)  # a second open applies nothing and does not fail
    with store.session() as session:
        assert list(session.scalars(select(SchemaMigration.name))) == names


def test_migrated_schema_matches_the_models(store_url: str) -> None:
    """The frozen migration DDL and the ORM models must not drift apart, on either backend."""
    store = open_store(store_url)
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
        with pytest.raises(StoreBusy, match="busy"):
            with store.transaction() as session:
                session.add(SchemaMigration(name="x"))
    finally:
        blocker.rollback()
        blocker.close()
    with store.session() as session:  # nothing was written, and the store still works
        assert "x" not in set(session.scalars(select(SchemaMigration.name)))


# -- no URL, no path, no password in a store error ------------------------------------------------

PG_URL = "postgresql://crs:s3cret@db.internal:5432/crs"


def migration_names(path: Path) -> list[str]:
    connection = sqlite3.connect(path)  # closed at once: an open one would keep the blockers out
    try:
        return [name for (name,) in connection.execute("SELECT name FROM schema_migrations ORDER BY name")]
    finally:
        connection.close()


def assert_no_address(message: str, *also: str) -> None:
    for secret in ("s3cret", "sqlite:", "postgresql:", "://", *also):
        assert secret not in message, f"{secret!r} in {message!r}"


def test_a_busy_write_is_store_busy_without_the_path(tmp_path: Path) -> None:
    """Replays: a write while another process holds the lock named the database file."""
    path = tmp_path / "busy.db"
    store = open_store(f"sqlite:///{path}", busy_timeout_s=0.01)
    before = migration_names(path)
    blocker = sqlite3.connect(path, timeout=0, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process's write transaction, left open
    try:
        with pytest.raises(StoreBusy) as raised:
            with store.transaction() as session:
                session.add(SchemaMigration(name="x"))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert isinstance(raised.value, StoreError) and raised.value.retry_after == 5
    assert str(raised.value) == ("the database is busy (another process is writing to it); nothing was written; "
                                 "try again in a few seconds")
    assert_no_address(str(raised.value), str(tmp_path), "busy.db")
    assert migration_names(path) == before  # nothing was written


def test_a_busy_read_is_store_busy_too(tmp_path: Path) -> None:
    """Reads outside transaction() raised the driver's OperationalError as it was."""
    path = tmp_path / "busy.db"
    store = open_store(f"sqlite:///{path}", busy_timeout_s=0.01)
    before = migration_names(path)
    store.engine.dispose()  # so the blocker can take the file for itself
    blocker = sqlite3.connect(path, timeout=0, isolation_level=None)
    blocker.execute("PRAGMA locking_mode=EXCLUSIVE")  # in WAL mode this shuts readers out as well
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreBusy) as raised:
            with store.session() as session:
                session.scalars(select(SchemaMigration.name)).all()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert_no_address(str(raised.value), str(tmp_path), "busy.db")
    assert migration_names(path) == before


@pytest.mark.parametrize("driver_text, expected", [
    ('connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: No such file or directory',
     "cannot open or reach the database"),
    ('connection to server at "db.internal" (10.0.0.5), port 5432 failed: FATAL:  password authentication failed '
     'for user "crs"', "cannot open or reach the database"),
    ("unable to open database file", "cannot open or reach the database"),
    ("attempt to write a readonly database", "read-only"),
    ("canceling statement due to lock timeout", "the database is busy"),
    ("could not write /srv/crs/pg/base/16384 (postgresql://crs:s3cret@db.internal/crs)", "the database failed: "),
])
def test_driver_errors_become_messages_without_paths_or_urls(driver_text: str, expected: str) -> None:
    message = str(explain(OperationalError("SELECT 1", {}, Exception(driver_text))))
    assert expected in message
    assert_no_address(message, "/var/run", "/srv/", ".s.PGSQL")


def test_postgres_lock_timeouts_are_busy_by_sqlstate() -> None:
    class LockNotAvailable(Exception):
        pgcode = "55P03"

    assert isinstance(explain(OperationalError("UPDATE x", {}, LockNotAvailable("lock timeout"))), StoreBusy)


@pytest.mark.parametrize("url", [PG_URL, "postgresql+nosuchdriver://crs:s3cret@db.internal/crs",
                                 "::crs:s3cret@db.internal", "sqlite:////proc/no-such/folder/crs.db"])
def test_open_store_errors_hold_no_url(url: str) -> None:
    """A bad --db is a StoreError naming no URL (SQLAlchemy's own messages quote the whole URL)."""
    with pytest.raises(StoreError) as raised:
        open_store(url)
    assert_no_address(str(raised.value), "/proc/")


def test_redact_url_hides_the_password() -> None:
    assert redact_url(PG_URL) == "postgresql://crs:***@db.internal:5432/crs"
    assert redact_url("postgresql+psycopg://crs:s3cret@h/db?sslmode=require") == (
        "postgresql+psycopg://crs:***@h/db?sslmode=require")
    assert redact_url("sqlite:///relative.db") == "sqlite:///relative.db"
    assert "s3cret" not in redact_url("::crs:s3cret@db.internal")  # unparseable: not echoed at all


def test_cli_messages_never_show_the_password(shapes_catalog, capsys: pytest.CaptureFixture[str]) -> None:
    """Every command fails cleanly on an unreachable PostgreSQL URL, without its password."""
    from crs.cli import main

    for argv in (["catalog", "info"], ["search", "cat", "--embedder", "fake"], ["chat", "--embedder", "fake"],
                 ["eval", "--embedder", "fake", "--n", "1"], ["ingest", "nothing.jsonl", "--format", "jsonl"]):
        assert main([*argv, "--db", PG_URL, "--catalog", "shapes"]) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err, err
        assert_no_address(err)


def ledger_names(url: str) -> list[str]:
    """The applied migrations' names, read through a connection of its own (any backend)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(text("SELECT name FROM schema_migrations ORDER BY name")))
    finally:
        engine.dispose()


def test_attribute_labels_migrate_an_existing_store(store_url: str, tmp_path: Path) -> None:
    """A store made before migration 0004 gains the label columns, keeps its rows, and the next
    ingest fills the labels from the schema file (ALTER TABLE on SQLite and on PostgreSQL)."""
    from datetime import datetime

    from crs.catalog.ingest import IngestOptions, ingest
    from crs.store.migrations import _ledger, m0001_catalog, m0002_conversations, m0003_evaluation
    from crs.store.models import Attribute

    url = store_url
    engine = create_engine(url)
    with engine.begin() as conn:  # the store as the three earlier migrations left it, with a catalog in it
        _ledger.create(conn)
        for migration in (m0001_catalog, m0002_conversations, m0003_evaluation):
            migration.upgrade(conn)
            conn.execute(_ledger.insert().values(name=migration.NAME, applied_at=datetime.utcnow()))
        # Bound values, not literals: PostgreSQL refuses 1 for a boolean and a string for a timestamp.
        catalog_id = conn.scalar(text("INSERT INTO catalogs (name, title, image_root, content_hash, updated_at) "
                                      "VALUES ('films', 'Films', '', '', :now) RETURNING id"),
                                 {"now": datetime(2025, 1, 1)})
        conn.execute(text("INSERT INTO attributes (catalog_id, name, kind, description, askable, position) "
                          "VALUES (:catalog, 'mpaa_rating', 'categorical', '', :yes, 0)"),
                     {"catalog": catalog_id, "yes": True})
    engine.dispose()
    store = open_store(url)
    assert ledger_names(url)[-1] == MIGRATIONS[-1].NAME and "0004_attribute_labels" in ledger_names(url)
    with store.session() as session:
        (attribute,) = session.scalars(select(Attribute)).all()
    assert attribute.name == "mpaa_rating" and attribute.label is None and attribute.display is None
    folder = tmp_path / "films"
    folder.mkdir()
    (folder / "schema.json").write_text('{"name": "films", "attributes": [{"name": "mpaa_rating", "kind": '
                                        '"categorical", "label": "MPAA rating", "display": {"PG-13": "PG-13"}}]}')
    (folder / "films.jsonl").write_text('{"id": "a", "title": "A", "attributes": {"mpaa_rating": "PG-13"}}\n')
    ingest(store, folder / "films.jsonl", IngestOptions(format="jsonl"))
    with store.session() as session:
        (attribute,) = session.scalars(select(Attribute)).all()
    assert attribute.label == "MPAA rating" and attribute.display == {"pg-13": "PG-13"}
    open_store(url).engine.dispose()  # a second open applies nothing
    assert ledger_names(url).count("0004_attribute_labels") == 1
    store.engine.dispose()


# -- PostgreSQL's own errors, from a real server --------------------------------------------------

def test_a_postgres_lock_timeout_is_store_busy_without_the_url(postgres_url: str) -> None:
    """A write that waits for a lock another connection holds, past PostgreSQL's lock_timeout,
    is StoreBusy (SQLSTATE 55P03 from psycopg), names no URL, and writes nothing."""
    store = open_store(postgres_url)
    blocker = create_engine(postgres_url)
    try:
        with blocker.connect() as other:
            other.execute(text("LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE"))  # held until rollback
            with pytest.raises(StoreBusy) as raised:
                with store.transaction() as session:
                    session.execute(text("SET LOCAL lock_timeout = '200ms'"))
                    session.add(SchemaMigration(name="x"))
            other.rollback()
        assert_no_address(str(raised.value), postgres_url)
        with store.session() as session:  # nothing was written, and the store still works
            assert "x" not in set(session.scalars(select(SchemaMigration.name)))
    finally:
        blocker.dispose()
        store.engine.dispose()


def test_an_unreachable_postgres_server_is_a_store_error_without_the_socket_path(tmp_path: Path) -> None:
    """psycopg's own message names the socket file (and the URL holds the password): neither may
    reach the message. Needs no server, only the driver (the dev extra installs psycopg)."""
    pytest.importorskip("psycopg")
    with pytest.raises(StoreError) as raised:
        open_store(f"postgresql+psycopg://crs:s3cret@/crs?host={tmp_path}")
    assert "cannot open or reach the database" in str(raised.value)
    assert_no_address(str(raised.value), str(tmp_path), ".s.PGSQL")
