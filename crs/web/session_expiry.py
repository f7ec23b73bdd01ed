"""Expiring idle chat sessions: a web visitor's conversation is deleted (with its turns and
ratings) once nobody has written to it for the configured idle time.

Only sessions that web clients opened (the chat page, the JSON API, the widget) expire: a
terminal ``crs chat`` session is its owner's to keep, and simulated sessions belong to an
evaluation run. The web app's janitor (:meth:`crs.web.services.Services.start_janitor`) calls
:func:`expire_sessions` every few minutes; deleting by primary key in small batches keeps each
write transaction short, so chats going on at the same time never wait long for the store.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from crs.store import Store
from crs.store.models import ChatFeedback, ChatSession, ChatTurn

WEB_CLIENTS = ("web", "api")  # ChatSession.settings["client"] of the sessions that expire
BATCH = 200


def expired_sessions(store: Store, idle: timedelta, now: datetime | None = None,
                     clients: Iterable[str] = WEB_CLIENTS) -> list[str]:
    """Ids of the web sessions last written before ``now - idle``."""
    cutoff = (now or datetime.utcnow()) - idle
    wanted = set(clients)
    with store.session() as db:
        rows = db.execute(select(ChatSession.id, ChatSession.settings).where(ChatSession.updated_at < cutoff))
        return [session_id for session_id, settings in rows if (settings or {}).get("client") in wanted]


def expire_sessions(store: Store, idle: timedelta, now: datetime | None = None,
                    clients: Iterable[str] = WEB_CLIENTS) -> list[str]:
    """Delete the expired web sessions with their turns and feedback; returns their ids."""
    ids = expired_sessions(store, idle, now, clients)
    for start in range(0, len(ids), BATCH):
        batch = ids[start:start + BATCH]
        with store.transaction() as db:
            # Children first: the schema cascades, but SQLite only does so with its foreign-key
            # pragma on, and a store opened by another tool may not have it.
            db.execute(delete(ChatTurn).where(ChatTurn.session_id.in_(batch)))
            db.execute(delete(ChatFeedback).where(ChatFeedback.session_id.in_(batch)))
            db.execute(delete(ChatSession).where(ChatSession.id.in_(batch)))
    return ids
