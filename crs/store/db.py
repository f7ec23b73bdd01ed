"""Opening the store: an engine for any SQLAlchemy URL, migrated, with SQLite set up for concurrency."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..config import default_db_url
from ..errors import UserError
from .migrations import migrate


class StoreError(UserError, RuntimeError):
    """The database could not be used (locked, unreachable, unwritable); the message says which."""


@dataclass
class Store:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back entirely on any error."""
        session = self.sessions()
        try:
            with session.begin():
                yield session
        except OperationalError as exc:
            raise _explain(exc, self.url) from exc
        finally:
            session.close()

    def session(self) -> Session:
        """A session for reads; the caller closes it (use it as a context manager)."""
        return self.sessions()


def _explain(exc: OperationalError, url: str) -> StoreError:
    text = str(exc.orig)
    if "locked" in text:
        return StoreError(f"database {url} is locked by another process; nothing was written, try again ({text})")
    return StoreError(f"database {url}: {text}")


def _sqlite_pragmas(busy_timeout_s: float):  # type: ignore[no-untyped-def]
    def on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL lets the web app read while an evaluation run writes; busy_timeout waits for a
        # lock instead of failing at once.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.close()

    return on_connect


def open_store(url: str | None = None, *, busy_timeout_s: float = 10.0) -> Store:
    """Open (and create or migrate) the store at `url`; default: SQLite under CRS_HOME."""
    url = url or default_db_url()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_s))
    try:
        migrate(engine)
    except OperationalError as exc:
        raise _explain(exc, url) from exc
    return Store(url=url, engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))
