"""Chat sessions in the store: a session's belief, its turns and feedback, written so that two
requests for the same session take turns, even in different server processes.

A session belongs to one catalog; asking for it with another catalog's dialogue manager is
:class:`SessionNotFound`, as for an id that was never issued.

How turns of one session are serialised (optimistic concurrency): a turn reads the belief with
the session's ``version`` (:meth:`Sessions.read`), computes its reply without holding any lock
in the store, and stores the new belief only if the version is still the one it read
(:meth:`Sessions.save_turn`; the version goes up by one). If another process stored a turn or a
like meanwhile, nothing is written, :class:`SessionChanged` is raised and the caller computes
the turn again on the fresh belief (:meth:`crs.dialogue.DialogueManager.respond`). Two messages
sent at once therefore become two consecutive turns, the second built on the first.

Why not hold a lock in the store for the whole turn: on SQLite the only write lock is the whole
database's, so holding it while the encoders and FAISS run (20-60 ms, seconds with an LLM) would
make every other session's writes wait for it; on PostgreSQL a ``SELECT ... FOR UPDATE`` held
through the turn would keep a pooled connection idle in a transaction for as long as an LLM
takes. Here the store's lock is held only for the check and the write (one short transaction:
SQLite's BEGIN IMMEDIATE, PostgreSQL's row lock from ``with_for_update``), and one design serves
both backends. The price is a recomputed turn when two processes answer the same session at the
same moment, which a person's chat almost never does.

Within one process a per-session lock (:meth:`Sessions.lock`) still makes same-session requests
wait for each other instead of racing: a fast path that saves the recomputation, not what makes
it correct.
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
from sqlalchemy.orm import Session

from .belief import BeliefState
from .errors import UserError
from .store import Store, StoreBusy
from .store.models import Catalog, ChatFeedback, ChatSession, ChatTurn
from .turn import Critique, ImageReading, Message, Reply


class SessionNotFound(UserError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class SessionChanged(Exception):
    """Another request stored a turn or a rating of this session after this one read it; nothing
    was written. Not a user error: the caller reads the session again and recomputes."""


class SessionBusy(StoreBusy):
    """A message lost the race for its session to other messages again and again; nothing was
    stored. The API answers 503 with Retry-After, like any busy store."""

    def __init__(self, attempts: int) -> None:
        super().__init__(f"this session was changed by {attempts} other messages sent at the same time while this "
                         "one was answered; nothing was stored; send it again", retry_after=1)


@dataclass(frozen=True)
class SessionState:
    """A session's belief as read, with the version it had: a write must name that version."""

    belief: BeliefState
    version: int


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

    def read(self, session_id: str) -> SessionState:
        """The session's belief and version; a turn that will store a new belief starts here."""
        with self.store.session() as db:
            row = db.get(ChatSession, session_id)
            if row is None or row.catalog_id != self.catalog.id:
                raise SessionNotFound(f"no session {session_id!r}")
            return SessionState(BeliefState.from_json(row.belief), row.version)

    def belief(self, session_id: str) -> BeliefState:
        return self.read(session_id).belief

    def history(self, session_id: str) -> list[dict[str, Any]]:
        """The session's turns, oldest first: message, reply and what was understood."""
        self.belief(session_id)
        with self.store.session() as db:
            turns = db.scalars(select(ChatTurn).where(ChatTurn.session_id == session_id).order_by(ChatTurn.number))
            return [{"number": t.number, "message": t.message, "images": t.images, "reply": t.reply,
                     "understanding": t.understanding, "fallbacks": t.fallbacks, "latency_ms": t.latency_ms}
                    for t in turns]

    def save_feedback(self, session_id: str, item_id: int, liked: bool, belief: BeliefState, *, version: int) -> None:
        """Store a like or dislike and the belief it led to from the session at ``version``
        (:class:`SessionChanged` if it is no longer at that version: nothing is written)."""
        with self.store.transaction() as db:
            row = self._claim(db, session_id, version)
            row.belief = belief.to_json()
            db.add(ChatFeedback(session_id=session_id, item_id=item_id, liked=liked))

    def save_turn(self, session_id: str, belief: BeliefState, message: Message, images: list[Image.Image],
                  record: TurnRecord, reply: Reply, seconds: float, *, version: int) -> None:
        """Store one turn (message, what was understood, reply, latency) and the new belief,
        computed from the session at ``version`` (:class:`SessionChanged` if it is no longer at
        that version: nothing is written)."""
        image_info = [{"size": list(im.size), "sha1": hashlib.sha1(im.tobytes()).hexdigest()} for im in images]
        understanding = {"critique": record.critique.to_json() if record.critique else None,
                         "readings": [r.to_json() for r in record.readings], "notes": record.notes,
                         "policy": record.policy, "belief": belief.summary()}
        with self.store.transaction() as db:
            row = self._claim(db, session_id, version)
            row.turns = belief.turns
            row.belief = belief.to_json()
            db.add(ChatTurn(session_id=session_id, number=belief.turns, message=message.text, images=image_info,
                            understanding=understanding, action=reply.action, reply=reply.to_json(),
                            fallbacks=list(record.fallbacks), latency_ms=round(seconds * 1000, 3)))

    def _claim(self, db: Session, session_id: str, version: int) -> ChatSession:
        """The session's row, locked for this write transaction and moved to the next version,
        if it is still at ``version``. On PostgreSQL ``with_for_update`` locks the row until the
        commit (another writer waits, then sees the new version); on SQLite the transaction
        already holds the database's write lock (BEGIN IMMEDIATE, crs.store.db)."""
        row = db.get(ChatSession, session_id, with_for_update=True)
        if row is None or row.catalog_id != self.catalog.id:
            raise SessionNotFound(f"no session {session_id!r}")  # deleted meanwhile (it expired)
        if row.version != version:
            raise SessionChanged(f"session at version {row.version}, read at {version}")
        row.version = version + 1
        row.updated_at = datetime.utcnow()
        return row

    def lock(self, session_id: str) -> threading.Lock:
        """The session's lock in this process: hold it from reading the belief to storing the new
        one, so this process's requests for a session wait for each other instead of racing
        (other processes are kept out by the version check, see the module's docstring)."""
        with self._locks_guard:
            return self._locks.setdefault(session_id, threading.Lock())

    def forget(self, session_ids: list[str]) -> None:
        """Drop the per-session locks of sessions deleted from the store (see crs.web.session_expiry),
        so a long-running server does not keep one lock per session it ever served."""
        with self._locks_guard:
            for session_id in session_ids:
                self._locks.pop(session_id, None)
