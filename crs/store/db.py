"""Opening the store: an engine for any SQLAlchemy URL, migrated, with SQLite set up for concurrency.

Several processes may share one store (``python app.py --workers N``, an evaluation beside the
web app). On SQLite, Python's driver (pysqlite) starts its own transactions lazily, at the first
INSERT or UPDATE, so a read-then-write unit of work is not one transaction; and a transaction that
read first and writes later can fail at once with "database is locked" instead of waiting when
another process committed meanwhile (WAL's stale snapshot: the busy timeout does not apply).
So SQLAlchemy's documented recipe ("Serializable isolation / Savepoints / Transactional DDL" in
its SQLite dialect notes) is applied: pysqlite's own BEGIN is turned off and the engine's
``begin`` event emits ours: ``BEGIN IMMEDIATE`` for :meth:`Store.transaction` (the write lock is
taken at the start, waiting up to the busy timeout, so nothing it read can change before it
commits) and a plain deferred ``BEGIN`` for :meth:`Store.session` (reads take no write lock).

Store errors reach people who must not see the database's address: the JSON API answers with
the message, and a PostgreSQL URL carries its password while a SQLite URL is a path on the
server. So a :class:`StoreError` message never holds a URL or a file path, not even the
driver's own text (a socket path, a file name); the original exception stays chained for the
server's log. Where the command line names a database it prints :func:`redact_url`.
"""
from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..config import default_db_url
from ..errors import UserError
from .migrations import migrate

RETRY_AFTER_S = 5  # what a busy store tells callers to wait: a few of SQLite's write transactions
UNPARSEABLE_URL = "<database URL that cannot be parsed>"


class StoreError(UserError, RuntimeError):
    """The database could not be used (unreachable, unwritable, not a database); the message says
    which, without the database's URL or path."""


class StoreBusy(StoreError):
    """Another process holds the write lock and the busy timeout ran out; nothing was written.
    A retry in ``retry_after`` seconds usually succeeds (the API answers 503 with Retry-After)."""

    def __init__(self, message: str = "", retry_after: int = RETRY_AFTER_S) -> None:
        super().__init__(message or "the database is busy (another process is writing to it); nothing was "
                                    "written; try again in a few seconds")
        self.retry_after = retry_after


# The execution option that makes a SQLite transaction start with BEGIN IMMEDIATE (see the module's
# docstring); other backends ignore it.
SQLITE_BEGIN = "crs_sqlite_begin"


@dataclass
class Store:
    url: str  # as given, password included: never put it in a message (see redact_url)
    engine: Engine
    sessions: sessionmaker[Session]
    # Sessions for units of work that write: on SQLite they take the write lock when they begin.
    writers: sessionmaker[Session]

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back entirely on any error. On
        SQLite it holds the database's write lock from its start (BEGIN IMMEDIATE), so what it
        reads cannot change before it commits: keep it short, other writers wait for it."""
        session = self.writers()
        try:
            with session.begin():
                yield session
        except OperationalError as exc:
            raise explain(exc) from exc
        finally:
            session.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for reads, closed when the block ends. A read fails like a write does, as a
        StoreError (StoreBusy when locked), never as a raw driver error carrying the URL."""
        session = self.sessions()
        try:
            yield session
        except OperationalError as exc:
            raise explain(exc) from exc
        finally:
            session.close()


# Driver messages that mean "locked, try again": SQLite's, and PostgreSQL's lock timeout,
# deadlock and serialisation failure (by SQLSTATE, which psycopg 2 and 3 expose differently).
_BUSY_TEXT = ("database is locked", "database table is locked", "database is busy", "lock timeout",
              "deadlock detected")
_BUSY_SQLSTATES = {"55P03", "40P01", "40001"}
_PATHS_AND_URLS = re.compile("|".join((
    r"[A-Za-z][\w+.-]*://\S+",  # URLs
    r"(?<![\w.])(?:~|\.{1,2})?/[^\s\"',;)]*",  # POSIX paths
    r"\b[A-Za-z]:\\\S*",  # Windows paths
    r'"[^"]*[/\\][^"]*"',  # quoted strings with a slash in them: PostgreSQL's socket path
)))


def explain(exc: DatabaseError) -> StoreError:
    """A StoreError (or StoreBusy) for a driver error, in words that hold no URL and no path."""
    text = str(getattr(exc, "orig", None) or exc)
    low = text.lower()
    state = getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
    if any(t in low for t in _BUSY_TEXT) or state in _BUSY_SQLSTATES:
        return StoreBusy()
    unreachable = ("unable to open database file", "could not connect", "connection refused", "could not translate")
    if any(t in low for t in unreachable) or ("connection" in low and "failed" in low):
        return StoreError("cannot open or reach the database: check --db (or CRS_DB), that its folder exists and is "
                          "writable, or that the database server is running and accepts these credentials")
    if "readonly" in low or "read-only" in low:
        return StoreError("the database is read-only for this process; nothing was written")
    if "file is not a database" in low:
        return StoreError("the database file is not a SQLite database")
    if "disk" in low and ("full" in low or "i/o" in low):
        return StoreError("the database could not write to disk (disk full or an I/O error); nothing was written")
    return StoreError(f"the database failed: {scrub(text.splitlines()[0] if text else type(exc).__name__)}")


def scrub(text: str) -> str:
    """``text`` with anything that looks like a URL or a file path replaced by '...'."""
    return _PATHS_AND_URLS.sub("...", text)


def redact_url(url: str) -> str:
    """The database URL fit to print: the password hidden (``***``); a URL that does not parse is
    not echoed at all (it could be anything, a password included)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        return UNPARSEABLE_URL


def _sqlite_pragmas(busy_timeout_s: float):  # type: ignore[no-untyped-def]
    def on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # The recipe's first half: pysqlite emits no BEGIN (nor a COMMIT before DDL) of its own.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        # busy_timeout first: it makes the other statements wait for a lock instead of failing at once.
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        # WAL lets the web app read while an evaluation run writes. Switching a new database to WAL
        # needs it to itself, and SQLite can answer "locked" at once while another process is
        # creating it (seen: 4 processes opening one new store), so the switch is retried.
        deadline = time.monotonic() + busy_timeout_s
        while True:
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        cursor.close()

    return on_connect


def _sqlite_begin(conn: Connection) -> None:
    """The recipe's second half: every transaction begins here, IMMEDIATE when asked for."""
    mode = conn.get_execution_options().get(SQLITE_BEGIN)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")


def open_store(url: str | None = None, *, busy_timeout_s: float = 10.0) -> Store:
    """Open (and create or migrate) the store at `url`; default: SQLite under CRS_HOME."""
    url = url or default_db_url()
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # SQLAlchemy's message quotes the whole URL
        raise StoreError("the database URL cannot be parsed: give a SQLAlchemy database URL (a SQLite file, "
                         "or a server's dialect, user, password, host and database name)") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
        try:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the database's folder: {exc.strerror}") from exc
    # PostgreSQL waits for a row or table lock forever by default; with lock_timeout a write held up
    # by another process (a session's row lock) fails as StoreBusy (SQLSTATE 55P03) like SQLite's
    # busy timeout, and the API answers 503 + Retry-After instead of hanging.
    connect_args = ({"options": f"-c lock_timeout={int(busy_timeout_s * 1000)}"}
                    if backend == "postgresql" else {})
    try:
        engine = create_engine(url, connect_args=connect_args)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"no database driver for {backend!r} URLs is installed or known") from exc
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_s))
        event.listen(engine, "begin", _sqlite_begin)
    # Shares the engine's pool and events; only the BEGIN differs (and only on SQLite).
    writer_engine = engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
    try:
        migrate(engine, writer_engine)
    except DatabaseError as exc:  # OperationalError, and "file is not a database" on first contact
        raise explain(exc) from exc
    return Store(url=url, engine=engine, sessions=sessionmaker(engine, expire_on_commit=False),
                 writers=sessionmaker(writer_engine, expire_on_commit=False))
