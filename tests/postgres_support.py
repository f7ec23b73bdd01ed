"""PostgreSQL for the tests: a server from ``CRS_TEST_POSTGRES_URL``, a fresh database per test,
and ``store_url``, which runs a test once on SQLite and once on PostgreSQL.

``CRS_TEST_POSTGRES_URL`` is a SQLAlchemy URL of a server's maintenance database whose user may
create databases, e.g. ``postgresql+psycopg://crs@/postgres?host=/tmp/crs-pg.x/sock``;
``.ci/postgres.sh COMMAND`` starts a throwaway cluster and runs COMMAND with it set. Without it
the PostgreSQL cases skip, saying so, except under CI (``CI=true``), where they fail: CI must
really test PostgreSQL. A URL that is set but unreachable fails too, in and out of CI.

Each test gets its own database (``CREATE DATABASE`` with a unique name, dropped after the test,
its connections closed by force), so tests never see one another's rows, and they may run in
parallel against one server.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

ENV = "CRS_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")


def _under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _admin_engine(url: str) -> Engine:
    # CREATE/DROP DATABASE cannot run inside a transaction block, hence AUTOCOMMIT.
    return create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """The server's URL from CRS_TEST_POSTGRES_URL, checked once per run: skipped when unset
    (failed when unset under CI=true), failed when set but unusable."""
    url = os.environ.get(ENV, "").strip()
    if not url:
        reason = (f"{ENV} is not set: no PostgreSQL server to test against "
                  "(run the tests under .ci/postgres.sh to start a throwaway one)")
        if _under_ci():
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the same mistake in the variable
        pytest.fail(f"{ENV} is not a SQLAlchemy URL ({type(exc).__name__})", pytrace=False)
    if parsed.get_backend_name() != "postgresql":
        pytest.fail(f"{ENV} must be a postgresql URL (postgresql+psycopg://...), "
                    f"not a {parsed.get_backend_name()!r} one", pytrace=False)
    engine = _admin_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        first_line = (str(cause).splitlines() or [""])[0]
        pytest.fail(f"{ENV} is set but the server cannot be used: {type(cause).__name__}: {first_line}",
                    pytrace=False)
    finally:
        engine.dispose()
    yield url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """The URL of a new, empty database on the test server, dropped after the test."""
    name = f"crs_test_{uuid.uuid4().hex[:16]}"  # unquoted lower-case: no quoting needed anywhere
    admin = _admin_engine(postgres_server_url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        yield make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            with admin.connect() as conn:
                # WITH (FORCE) (PostgreSQL 13+) closes the test's own pooled connections, which
                # stores opened by the test keep until they are garbage-collected.
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        finally:
            admin.dispose()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL: a SQLite file in tmp_path, and (second case) a fresh PostgreSQL database,
    which skips or fails as ``postgres_server_url`` says."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))
