"""A version per chat session, raised by every write of its belief (a turn, a like or dislike).

A turn reads the belief and its version, computes the reply, and stores the new belief only if
the version is still the one it read (crs.sessions): two messages to one session answered at
once by different server processes then give two consecutive turns, never a lost update. The
existing sessions start at 0; NOT NULL with a default is the same DDL on SQLite and PostgreSQL.
"""
from __future__ import annotations

from sqlalchemy import Connection, inspect, text

NAME = "0005_session_versions"


def upgrade(conn: Connection) -> None:
    present = {c["name"] for c in inspect(conn).get_columns("chat_sessions")}
    if "version" not in present:
        conn.execute(text("ALTER TABLE chat_sessions ADD COLUMN version INTEGER NOT NULL DEFAULT 0"))
