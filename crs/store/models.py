"""The store's tables as SQLAlchemy 2 models.

The schema itself is created and changed only by the named migrations in
`crs.store.migrations`; a test checks that these models and the migrated schema agree.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ATTRIBUTE_KINDS = ("categorical", "tags", "numeric")


class Base(DeclarativeBase):
    pass


class Catalog(Base):
    __tablename__ = "catalogs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    # Relative image paths of items resolve against this folder (the ingested file's folder or --images).
    image_root: Mapped[str] = mapped_column(Text, default="")
    # Hash of the ingested files; lets the bundled demo catalog reload only when it changed.
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=datetime.utcnow)

    attributes: Mapped[list[Attribute]] = relationship(
        back_populates="catalog", cascade="all, delete-orphan", order_by="Attribute.position"
    )


class Attribute(Base):
    __tablename__ = "attributes"
    __table_args__ = (UniqueConstraint("catalog_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    catalog_id: Mapped[int] = mapped_column(ForeignKey("catalogs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # one of ATTRIBUTE_KINDS
    description: Mapped[str] = mapped_column(Text, default="")
    askable: Mapped[bool] = mapped_column(Boolean, default=True)
    # Closed vocabulary (None = open) and value order for relative critiques (None = unordered).
    allowed_values: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    value_order: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # For people only (migration 0004): the attribute's name ("MPAA rating") and value -> display
    # name ({"pg-13": "PG-13"}); None = the name with spaces, the values as stored.
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    display: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)

    catalog: Mapped[Catalog] = relationship(back_populates="attributes")


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("catalog_id", "external_id"),)

    # The integer primary key doubles as the FAISS external id.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    catalog_id: Mapped[int] = mapped_column(ForeignKey("catalogs.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    image_ref: Mapped[str] = mapped_column(Text, default="")  # as given: a path or a URL
    image_file: Mapped[str | None] = mapped_column(Text, nullable=True)  # local file, relative to image_root or absolute
    image_sha1: Mapped[str | None] = mapped_column(String(40), nullable=True)
    source: Mapped[str] = mapped_column(Text, default="")
    license: Mapped[str] = mapped_column(Text, default="")
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Hash of the normalised record: re-ingesting an unchanged row touches nothing.
    row_hash: Mapped[str] = mapped_column(String(40))

    values: Mapped[list[ItemValue]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class ItemValue(Base):
    """One attribute value of one item: a row per tag; `number` for numeric attributes."""

    __tablename__ = "item_values"
    __table_args__ = (
        Index("ix_item_values_attribute_value", "attribute_id", "value"),
        Index("ix_item_values_item", "item_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    attribute_id: Mapped[int] = mapped_column(ForeignKey("attributes.id", ondelete="CASCADE"))
    value: Mapped[str | None] = mapped_column(Text, nullable=True)
    number: Mapped[float | None] = mapped_column(Float, nullable=True)


class ChatSession(Base):
    """One conversation: its belief state lives here, so a session resumes after a restart."""

    __tablename__ = "chat_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    catalog_id: Mapped[int] = mapped_column(ForeignKey("catalogs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=datetime.utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=datetime.utcnow)
    turns: Mapped[int] = mapped_column(Integer, default=0)
    belief: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Raised by every write of the belief (migration 0005): a write that read an older version
    # is refused and recomputed (crs.sessions), so concurrent turns never overwrite each other.
    version: Mapped[int] = mapped_column(Integer, default=0)


class ChatTurn(Base):
    """One message and the reply to it, with what was understood, the fallbacks and the latency."""

    __tablename__ = "chat_turns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=datetime.utcnow)
    message: Mapped[str] = mapped_column(Text, default="")
    images: Mapped[list[Any]] = mapped_column(JSON, default=list)  # sha1 and size of each uploaded image
    understanding: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    action: Mapped[str] = mapped_column(String(20))
    reply: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fallbacks: Mapped[list[str]] = mapped_column(JSON, default=list)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)


class ChatFeedback(Base):
    __tablename__ = "chat_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    liked: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=datetime.utcnow)


class EvalRun(Base):
    """One simulated-user evaluation run (simulators/runner.py), resumable by its id."""

    __tablename__ = "eval_runs"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # --run-id, or generated
    catalog_id: Mapped[int] = mapped_column(ForeignKey("catalogs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=datetime.utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=datetime.utcnow)
    # Everything the figures depend on (policies, simulator, n, T, k, seed, catalog and its hash,
    # embedder, LLM): a restart with other settings under the same id is refused.
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="running")  # "running" | "finished"


class EvalConversation(Base):
    """One finished simulated conversation of a run: its plan, its result (turns apart) and summary columns."""

    __tablename__ = "eval_conversations"
    __table_args__ = (UniqueConstraint("run_id", "policy", "conversation_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("eval_runs.id", ondelete="CASCADE"))
    policy: Mapped[str] = mapped_column(String(100))
    conversation_index: Mapped[int] = mapped_column(Integer)  # i of n: its plan depends only on (seed, i)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=datetime.utcnow)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # ConversationResult.to_json() minus turns
    target_id: Mapped[int] = mapped_column(Integer)
    start: Mapped[str] = mapped_column(String(40))
    success: Mapped[bool] = mapped_column(Boolean)
    success_turn: Mapped[int | None] = mapped_column(Integer, nullable=True)
    turn_count: Mapped[int] = mapped_column(Integer)
    questions: Mapped[int] = mapped_column(Integer)
    # Wall time the run spent on it (since the previous conversation was stored): sums to the
    # run's running time, model loading excluded, across restarts.
    wall_s: Mapped[float] = mapped_column(Float, default=0.0)


class EvalTurn(Base):
    """One turn of a stored simulated conversation: the whole TurnResult in ``data``, plus columns to query."""

    __tablename__ = "eval_turns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("eval_conversations.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))
    leaked: Mapped[bool] = mapped_column(Boolean)
    latency_ms: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SchemaMigration(Base):
    __tablename__ = "schema_migrations"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(DateTime, default=datetime.utcnow)
