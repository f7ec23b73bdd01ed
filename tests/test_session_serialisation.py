"""Turns of one session are serialised through the store, not a process's memory (crs.sessions):
two messages to one session answered at the same moment by two processes become two
consecutive turns, the second built on the first, never an interleaving or a lost update.

Each race here is forced, not hoped for: the parser of each side waits at a barrier until both
sides have read the session, so both compute on the same version and one must lose the write.
Without the version check both turns would be stored as turn 1 and the second write would drop
the first one's wish.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select, text

from crs.belief import BeliefState
from crs.dialogue import SAVE_ATTEMPTS, DialogueManager
from crs.search import CatalogSearch
from crs.sessions import SessionBusy, SessionChanged, SessionNotFound, Sessions, TurnRecord
from crs.store import open_store
from crs.store.migrations import MIGRATIONS, _ledger
from crs.store.models import Catalog, ChatSession, ChatTurn
from crs.turn import Message, Reply
from crs.understanding.parser import CritiqueParser, ParseContext
from crs.web.session_expiry import expire_sessions

ROOT = Path(__file__).resolve().parent.parent


class BarrierParser(CritiqueParser):
    """The offline parser, but its first parse waits until ``parties`` parsers reached it (a
    folder of marker files, so the parties may be processes): by then every party has read the
    session, so their writes race."""

    name = "barrier"

    def __init__(self, inner: CritiqueParser, folder: Path, party: str, parties: int = 2, timeout_s: float = 60) -> None:
        self.inner, self.folder, self.party, self.parties, self.timeout_s = inner, folder, party, parties, timeout_s
        self.waited = False
        self.calls = 0

    def parse(self, text: str, context: ParseContext):  # type: ignore[no-untyped-def]
        self.calls += 1
        if not self.waited:
            self.waited = True
            (self.folder / self.party).touch()
            deadline = time.monotonic() + self.timeout_s
            while len(list(self.folder.iterdir())) < self.parties:
                assert time.monotonic() < deadline, "the other side never reached the barrier"
                time.sleep(0.01)
        return self.inner.parse(text, context)


def add_catalog(url: str) -> Catalog:
    store = open_store(url)
    with store.transaction() as db:
        catalog = Catalog(name="c", title="C", image_root="", content_hash="")
        db.add(catalog)
    return catalog


def stored_turns(url: str, session_id: str) -> list[tuple[int, str, str]]:
    store = open_store(url)
    with store.session() as db:
        rows = db.execute(select(ChatTurn.number, ChatTurn.message, ChatTurn.understanding)
                          .where(ChatTurn.session_id == session_id).order_by(ChatTurn.number, ChatTurn.id)).all()
    store.engine.dispose()
    return [(number, message, understanding["belief"]) for number, message, understanding in rows]


def stored_belief(url: str, session_id: str) -> tuple[BeliefState, int]:
    store = open_store(url)
    with store.session() as db:
        row = db.get(ChatSession, session_id)
        result = BeliefState.from_json(row.belief), row.version
    store.engine.dispose()
    return result


# -- the store's check, on SQLite and PostgreSQL --------------------------------------------------

def test_a_write_from_a_stale_read_is_refused_and_writes_nothing(store_url: str) -> None:
    catalog = add_catalog(store_url)
    # Two processes: two engines, two Sessions (their in-process locks are not shared).
    first, second = Sessions(open_store(store_url), catalog), Sessions(open_store(store_url), catalog)
    session_id = first.start({"client": "api"})
    a, b = first.read(session_id), second.read(session_id)
    assert a.version == b.version == 0
    reply = Reply("ok", "ask")
    a.belief.texts.append("a red one")
    a.belief.turns = 1
    first.save_turn(session_id, a.belief, Message("a red one"), [], TurnRecord(), reply, 0.01, version=a.version)
    b.belief.texts.append("a square")
    b.belief.turns = 1
    with pytest.raises(SessionChanged):
        second.save_turn(session_id, b.belief, Message("a square"), [], TurnRecord(), reply, 0.01, version=b.version)
    with pytest.raises(SessionChanged):
        second.save_feedback(session_id, 1, True, b.belief, version=b.version)
    assert [(n, m) for n, m, _ in stored_turns(store_url, session_id)] == [(1, "a red one")]
    belief, version = stored_belief(store_url, session_id)
    assert belief.texts == ["a red one"] and version == 1
    fresh = second.read(session_id)  # read again: now the second process may write, on top of the first
    fresh.belief.texts.append("a square")
    fresh.belief.turns += 1
    second.save_turn(session_id, fresh.belief, Message("a square"), [], TurnRecord(), reply, 0.01,
                     version=fresh.version)
    belief, version = stored_belief(store_url, session_id)
    assert belief.texts == ["a red one", "a square"] and version == 2
    assert [n for n, _, _ in stored_turns(store_url, session_id)] == [1, 2]


def test_a_session_deleted_during_a_turn_is_not_found_at_the_write(store_url: str) -> None:

    catalog = add_catalog(store_url)
    sessions = Sessions(open_store(store_url), catalog)
    session_id = sessions.start({"client": "api"})
    state = sessions.read(session_id)
    assert expire_sessions(sessions.store, timedelta(0), now=datetime.utcnow() + timedelta(seconds=1)) == [session_id]
    with pytest.raises(SessionNotFound):
        sessions.save_turn(session_id, state.belief, Message("hi"), [], TurnRecord(), Reply("ok", "ask"), 0.0,
                           version=state.version)


def test_two_dialogue_managers_racing_on_one_session_give_consecutive_turns(store_url: str, tmp_path: Path) -> None:
    """Two dialogue managers over two engines (as two server processes) answer one session at the
    same moment: one turn is computed again on the other's belief."""
    from crs.catalog.demo import open_catalog
    from crs.catalog.ingest import IngestOptions, ingest
    from tests.shapes import write_shapes_catalog

    ingest(open_store(store_url), write_shapes_catalog(tmp_path / "shapes"), IngestOptions(format="jsonl",
                                                                                         catalog="shapes"))
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    managers = []
    for party in ("a", "b"):
        store = open_store(store_url)
        dm = DialogueManager(store, CatalogSearch.open(store, open_catalog(store, "shapes"), "fake"))
        dm.parser = BarrierParser(dm.rule_parser, barrier, party)
        managers.append(dm)
    session_id = managers[0].start({"client": "api"})
    replies: dict[str, object] = {}

    def send(dm: DialogueManager, text: str) -> None:
        replies[text] = dm.respond(session_id, Message(text))

    threads = [threading.Thread(target=send, args=(dm, text)) for dm, text in zip(managers, ("red", "square"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert set(replies) == {"red", "square"}
    turns = stored_turns(store_url, session_id)
    assert [number for number, _, _ in turns] == [1, 2]
    first, second = turns
    assert "colour = red" in (first[2] if first[1] == "red" else second[2])
    assert "colour = red" in second[2] and "shape = square" in second[2]  # the second turn kept the first's wish
    belief, version = stored_belief(store_url, session_id)
    assert belief.require == {"colour": ["red"], "shape": ["square"]} and belief.turns == 2 and version == 2
    # Exactly one side lost the race and parsed its message twice.
    assert sorted(dm.parser.calls for dm in managers) == [1, 2]  # type: ignore[attr-defined]


def test_a_message_that_keeps_losing_the_race_is_a_busy_store(store_url: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Every try finds the session changed: after SAVE_ATTEMPTS tries, SessionBusy (503), nothing stored."""
    from crs.catalog.demo import open_catalog
    from crs.catalog.ingest import IngestOptions, ingest
    from tests.shapes import write_shapes_catalog

    store = open_store(store_url)
    ingest(store, write_shapes_catalog(tmp_path / "shapes"), IngestOptions(format="jsonl", catalog="shapes"))
    dm = DialogueManager(store, CatalogSearch.open(store, open_catalog(store, "shapes"), "fake"))
    session_id = dm.start()
    saves = []

    def always_changed(*args, **kwargs):  # type: ignore[no-untyped-def]
        saves.append(kwargs["version"])
        raise SessionChanged("changed")

    monkeypatch.setattr(dm.sessions, "save_turn", always_changed)
    with pytest.raises(SessionBusy) as raised:
        dm.respond(session_id, Message("red"))
    assert len(saves) == SAVE_ATTEMPTS and raised.value.retry_after == 1
    assert "send it again" in str(raised.value)
    assert stored_turns(store_url, session_id) == []


# -- the migration ------------------------------------------------------------------------------

def test_session_versions_migrate_an_existing_store(store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.begin() as conn:  # the store as migration 0004 left it, with a session in it
        _ledger.create(conn)
        for migration in MIGRATIONS[:4]:
            migration.upgrade(conn)
            conn.execute(_ledger.insert().values(name=migration.NAME, applied_at=datetime.utcnow()))
        conn.execute(text("INSERT INTO catalogs (id, name, title, image_root, content_hash, updated_at) "
                          "VALUES (1, 'c', 'C', '', '', '2025-01-01')"))
        conn.execute(text("INSERT INTO chat_sessions (id, catalog_id, created_at, updated_at, turns, belief, settings) "
                          "VALUES ('s', 1, '2025-01-01', '2025-01-01', 0, '{}', '{}')"))
    engine.dispose()
    store = open_store(store_url)
    with store.session() as db:
        assert db.get(ChatSession, "s").version == 0
        catalog = db.get(Catalog, 1)
    state = Sessions(store, catalog).read("s")
    assert state.version == 0


def test_processes_opening_a_new_store_at_once_apply_each_migration_once(store_url: str) -> None:
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            open_store(store_url).engine.dispose()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    store = open_store(store_url)
    with store.session() as db:
        assert list(db.execute(text("SELECT name FROM schema_migrations ORDER BY name")).scalars()) == \
            [m.NAME for m in MIGRATIONS]


# -- two real server processes over one SQLite file ------------------------------------------------

def serve(port: int, db_url: str, barrier: str, party: str) -> None:
    """One app instance (app.create_app, as app.py builds it) whose parser waits at ``barrier``."""
    import uvicorn

    import app as webapp
    from crs.settings import Settings
    from crs.web.services import Services

    services = Services(Settings(db_url=db_url, catalog="shapes", embedder="fake"))
    dm = services.dm
    dm.parser = BarrierParser(dm.rule_parser, Path(barrier), party)
    uvicorn.run(webapp.create_app(services), host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.network
def test_two_server_processes_answering_one_session_at_once(shapes_catalog, tmp_path: Path) -> None:
    store, _ = shapes_catalog
    store.engine.dispose()
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    ports = [free_port(), free_port()]
    env = {**os.environ, "CRS_RATE_LIMITS": "off"}
    servers = [subprocess.Popen([sys.executable, "-c", "import sys; from tests.test_session_serialisation import serve; "
                                 "serve(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])",
                                 str(port), store.url, str(barrier), party], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for port, party in zip(ports, ("a", "b"))]
    try:
        urls = [f"http://127.0.0.1:{port}/api/v1" for port in ports]
        deadline = time.monotonic() + 180
        for server, url in zip(servers, urls):
            while True:
                assert server.poll() is None, server.stdout.read()  # type: ignore[union-attr]
                try:
                    if httpx.get(f"{url}/health", timeout=5).json().get("ready"):
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "a server was not ready within 180 s"
                time.sleep(0.2)
        session_id = httpx.post(f"{urls[0]}/sessions", timeout=30).json()["session_id"]
        statuses: dict[str, int] = {}

        def send(url: str, words: str) -> None:
            statuses[words] = httpx.post(f"{url}/sessions/{session_id}/messages", data={"text": words},
                                         timeout=120).status_code

        threads = [threading.Thread(target=send, args=(url, words)) for url, words in zip(urls, ("red", "square"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=150)
        assert statuses == {"red": 200, "square": 200}
        held = httpx.get(f"{urls[1]}/sessions/{session_id}", timeout=30).json()
        assert sorted(t["text"] for t in held["turns"]) == ["red", "square"]
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
    turns = stored_turns(store.url, session_id)
    assert [number for number, _, _ in turns] == [1, 2]
    assert "colour = red" in turns[1][2] and "shape = square" in turns[1][2]
    belief, version = stored_belief(store.url, session_id)
    assert belief.require == {"colour": ["red"], "shape": ["square"]} and version == 2
