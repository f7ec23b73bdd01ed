"""Chat sessions in the store: a session's belief, its turns and feedback, and one lock per
session so that two requests for the same session take turns.

A session belongs to one catalog; asking for it with another catalog's dialogue manager is
:class:`SessionNotFound`, as for an id that was never issued.
"""
from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from PIL import Image
from sqlalchemy import select

from .belief import BeliefState
from .errors import UserError
from .store import Store
from .store.models import Catalog, ChatFeedback, ChatSession, ChatTurn
from .turn import Critique, ImageReading, Message, Reply


class SessionNotFound(UserError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass
class TurnRecord:
    """What happened in one turn, beyond the reply: stored with it for inspection."""

    readings: list[ImageReading] = field(default_factory=list)
    critique: Critique | None = None
    fallbacks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # problems the person is told about (a broken image)
    policy: str = ""


class Sessions:
    """The sessions of one catalog in one store."""

    def __init__(self, store: Store, catalog: Catalog) -> None:
        self.store = store
        self.catalog = catalog
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def start(self, settings: dict[str, Any] | None = None) -> str:
        """A new session; its id is an unguessable token."""
        session_id = secrets.token_urlsafe(18)
        with self.store.transaction() as db:
            db.add(ChatSession(id=session_id, catalog_id=self.catalog.id, turns=0, belief=BeliefState().to_json(),
                               settings=dict(settings or {})))
        return session_id

    def exists(self, session_id: str) -> bool:
        """Whether the session is stored (for this catalog): one indexed lookup, no belief decoded."""
        with self.store.session() as db:
            found = db.scalar(select(ChatSession.id).where(ChatSession.id == session_id,
                                                           ChatSession.catalog_id == self.catalog.id))
        return found is not None

    def belief(self, session_id: str) -> BeliefState:
        with self.store.session() as db:
            row = db.get(ChatSession, session_id)
            if row is None or row.catalog_id != self.catalog.id:
                raise SessionNotFound(f"no session {session_id!r}")
            return BeliefState.from_json(row.belief)

    def history(self, session_id: str) -> list[dict[str, Any]]:
        """The session's turns, oldest first: message, reply and what was understood."""
        self.belief(session_id)
        with self.store.session() as db:
            turns = db.scalars(select(ChatTurn).where(ChatTurn.session_id == session_id).order_by(ChatTurn.number))
            return [{"number": t.number, "message": t.message, "images": t.images, "reply": t.reply,
                     "understanding": t.understanding, "fallbacks": t.fallbacks, "latency_ms": t.latency_ms}
                    for t in turns]

    def save_feedback(self, session_id: str, item_id: int, liked: bool, belief: BeliefState) -> None:
        """Store a like or dislike and the belief it led to."""
        with self.store.transaction() as db:
            db.add(ChatFeedback(session_id=session_id, item_id=item_id, liked=liked))
            row = db.get(ChatSession, session_id)
            row.belief = belief.to_json()
            row.updated_at = datetime.utcnow()

    def save_turn(self, session_id: str, belief: BeliefState, message: Message, images: list[Image.Image],
                  record: TurnRecord, reply: Reply, seconds: float) -> None:
        """Store one turn (message, what was understood, reply, latency) and the new belief."""
        image_info = [{"size": list(im.size), "sha1": hashlib.sha1(im.tobytes()).hexdigest()} for im in images]
        understanding = {"critique": record.critique.to_json() if record.critique else None,
                         "readings": [r.to_json() for r in record.readings], "notes": record.notes,
                         "policy": record.policy, "belief": belief.summary()}
        with self.store.transaction() as db:
            row = db.get(ChatSession, session_id)
            row.turns = belief.turns
            row.belief = belief.to_json()
            row.updated_at = datetime.utcnow()
            db.add(ChatTurn(session_id=session_id, number=belief.turns, message=message.text, images=image_info,
                            understanding=understanding, action=reply.action, reply=reply.to_json(),
                            fallbacks=list(record.fallbacks), latency_ms=round(seconds * 1000, 3)))

    def lock(self, session_id: str) -> threading.Lock:
        """The session's lock: hold it from reading the belief to storing the new one."""
        with self._locks_guard:
            return self._locks.setdefault(session_id, threading.Lock())

    def forget(self, session_ids: list[str]) -> None:
        """Drop the per-session locks of sessions deleted from the store (see crs.web.session_expiry),
        so a long-running server does not keep one lock per session it ever served."""
        with self._locks_guard:
            for session_id in session_ids:
                self._locks.pop(session_id, None)
