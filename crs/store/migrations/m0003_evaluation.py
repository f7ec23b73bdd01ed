"""Evaluation runs: a run's configuration and status, its finished conversations and their turns.

A conversation row is written in one transaction with its turns, so a run killed at any moment
holds only whole conversations; ``(run_id, policy, conversation_index)`` is unique, so a resumed
run can never store one twice.
"""
from __future__ import annotations

from sqlalchemy import (
    JSON, Boolean, Column, Connection, DateTime, Float, ForeignKey, Integer, MetaData, String, Table, UniqueConstraint,
)

NAME = "0003_evaluation"


def upgrade(conn: Connection) -> None:
    md = MetaData()
    Table("catalogs", md, autoload_with=conn)  # reflected so the foreign key resolves
    Table(
        "eval_runs", md,
        Column("id", String(100), primary_key=True),
        Column("catalog_id", Integer, ForeignKey("catalogs.id", ondelete="CASCADE"), nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
        Column("config", JSON, nullable=False),
        Column("status", String(20), nullable=False),
    )
    Table(
        "eval_conversations", md,
        Column("id", Integer, primary_key=True),
        Column("run_id", String(100), ForeignKey("eval_runs.id", ondelete="CASCADE"), nullable=False),
        Column("policy", String(100), nullable=False),
        Column("conversation_index", Integer, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("plan", JSON, nullable=False),
        Column("result", JSON, nullable=False),
        Column("target_id", Integer, nullable=False),
        Column("start", String(40), nullable=False),
        Column("success", Boolean, nullable=False),
        Column("success_turn", Integer, nullable=True),
        Column("turn_count", Integer, nullable=False),
        Column("questions", Integer, nullable=False),
        Column("wall_s", Float, nullable=False),
        UniqueConstraint("run_id", "policy", "conversation_index"),
    )
    Table(
        "eval_turns", md,
        Column("id", Integer, primary_key=True),
        Column("conversation_id", Integer, ForeignKey("eval_conversations.id", ondelete="CASCADE"), nullable=False,
               index=True),
        Column("number", Integer, nullable=False),
        Column("action", String(20), nullable=False),
        Column("leaked", Boolean, nullable=False),
        Column("latency_ms", Float, nullable=False),
        Column("data", JSON, nullable=False),
    )
    md.create_all(conn, tables=[md.tables[n] for n in ("eval_runs", "eval_conversations", "eval_turns")])
