"""Conversations: sessions (with their belief state), turns and item feedback."""
from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Connection, DateTime, Float, ForeignKey, Integer, MetaData, String, Table, Text

NAME = "0002_conversations"


def upgrade(conn: Connection) -> None:
    md = MetaData()
    # The referenced tables are reflected (not redeclared) so the foreign keys resolve.
    Table("catalogs", md, autoload_with=conn)
    Table("items", md, autoload_with=conn)
    Table(
        "chat_sessions", md,
        Column("id", String(64), primary_key=True),  # an unguessable token, not a counter
        Column("catalog_id", Integer, ForeignKey("catalogs.id", ondelete="CASCADE"), nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
        Column("turns", Integer, nullable=False),
        Column("belief", JSON, nullable=False),
        Column("settings", JSON, nullable=False),
    )
    Table(
        "chat_turns", md,
        Column("id", Integer, primary_key=True),
        Column("session_id", String(64), ForeignKey("chat_sessions.id", ondelete="CASCADE"), nullable=False,
               index=True),
        Column("number", Integer, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("message", Text, nullable=False),
        Column("images", JSON, nullable=False),
        Column("understanding", JSON, nullable=False),
        Column("action", String(20), nullable=False),
        Column("reply", JSON, nullable=False),
        Column("fallbacks", JSON, nullable=False),
        Column("latency_ms", Float, nullable=False),
    )
    Table(
        "chat_feedback", md,
        Column("id", Integer, primary_key=True),
        Column("session_id", String(64), ForeignKey("chat_sessions.id", ondelete="CASCADE"), nullable=False,
               index=True),
        Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
        Column("liked", Boolean, nullable=False),
        Column("created_at", DateTime, nullable=False),
    )
    md.create_all(conn, tables=[md.tables[n] for n in ("chat_sessions", "chat_turns", "chat_feedback")])
