"""The dialogue manager: one turn = read images, parse the critique, update the belief,
retrieve candidates, let the policy ask or recommend, reply, and store it all.

:meth:`DialogueManager.respond` is THE public entry point: the web UI, the JSON API, the
terminal chat and the simulated users all talk through it, so they all measure the same system.

This module only runs the turn; its parts live apart: the query, candidates and posterior in
:mod:`crs.posterior`, sessions, turns and feedback in the store in :mod:`crs.sessions`, and the
reply's wording in :mod:`crs.replies` (a swappable :class:`~crs.replies.ReplyWriter`).
Measurements behind the posterior's constants: docs/experiments.md.

Any model-backed stage that fails (raises :class:`crs.errors.StageFailure`: timeout, garbage)
is replaced for that turn by the rule-based stage; the turn records which, and the
conversation goes on.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from PIL import Image
from sqlalchemy import select

from retrieval.images import ImageLoadError, ImageSource, load_image
from retrieval.multimodal import Query, ScoredItem

from .belief import BeliefState
from crs.understanding.parser import CritiqueParser, ParseContext, ShownItem
from crs.understanding.offline_parser import OfflineCritiqueParser
from .errors import StageFailure, UserError
from .facts import CatalogFacts
from crs.understanding.reader import LIKELY_VALUES, ImageReader, ReadContext
from crs.understanding.offline_reader import OfflineImageReader
from .policy import Ask, Candidates, Policy, PolicyContext, Recommend, load_policy
from .posterior import Posterior
from .choice import LOOKS_SPACE
from .replies import (ReplyDraft, ReplyWriter, Resemblance, TemplateReplyWriter, question_text, reason,
                      reply_items)
from .search import CatalogSearch, SearchHit
from .sessions import SessionBusy, SessionChanged, SessionNotFound, Sessions, TurnRecord
from .store import Store
from .store.models import Item
from .turn import Critique, Message, Question, Reply, ReplyItem

__all__ = ["DialogueManager", "SessionNotFound", "TurnRecord", "MAX_IMAGES"]

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_IMAGES = 4  # images read per message
# Tries to store a turn or a rating whose session other processes keep changing meanwhile. Each
# lost try means another message of that session was stored, so only a flood of messages to one
# session runs out of them (then SessionBusy: 503, send it again).
SAVE_ATTEMPTS = 10


def page_reply(critique: Critique) -> tuple[int, int]:
    """A reply to a page as (said what was wrong or what to change, bare rejection): (1, 0),
    (0, 1), or (0, 0) for an accept. A page that gets a reason tells more than a silent one."""
    if critique.accept is not None:
        return 0, 0
    told = critique.require or critique.exclude or critique.relative or critique.references or critique.text.strip()
    return (1, 0) if told else (0, 1)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) cosine similarities."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


class DialogueManager:
    def __init__(self, store: Store, searcher: CatalogSearch, *, facts: CatalogFacts | None = None,
                 reader: ImageReader | None = None, parser: CritiqueParser | None = None,
                 policy: Policy | None = None, writer: ReplyWriter | None = None, k: int = 5) -> None:
        self.store = store
        self.searcher = searcher
        self.catalog = searcher.catalog
        self.facts = facts or CatalogFacts.load(store, searcher.catalog)
        self.offline_reader = OfflineImageReader(searcher)
        # The offline parser: the default, and every turn's fallback when an LLM parser fails.
        self.rule_parser = OfflineCritiqueParser.for_searcher(self.facts, searcher)
        self.default_policy = load_policy("eig")
        self.default_writer = TemplateReplyWriter()
        self.reader = reader or self.offline_reader
        self.parser = parser or self.rule_parser
        self.policy = policy or self.default_policy
        self.writer = writer or self.default_writer
        self.k = k
        self.sessions = Sessions(store, searcher.catalog)
        self.posterior = Posterior(searcher, self.facts)

    @property
    def model_reader(self) -> ImageReader | None:
        """The model-backed image reader (an LLM), or None when the offline reader reads."""
        return None if self.reader is self.offline_reader else self.reader

    @property
    def model_parser(self) -> CritiqueParser | None:
        """The model-backed critique parser (an LLM), or None when the rules parse."""
        return None if self.parser is self.rule_parser else self.parser

    # -- sessions (crs.sessions) -------------------------------------------------------------------

    def start(self, settings: dict[str, Any] | None = None) -> str:
        """A new session; its id is an unguessable token."""
        return self.sessions.start(settings)

    def exists(self, session_id: str) -> bool:
        return self.sessions.exists(session_id)

    def belief(self, session_id: str) -> BeliefState:
        return self.sessions.belief(session_id)

    def history(self, session_id: str) -> list[dict[str, Any]]:
        """The session's turns, oldest first: message, reply and what was understood."""
        return self.sessions.history(session_id)

    def feedback(self, session_id: str, item_id: int, liked: bool) -> None:
        """A like or dislike on an item (a button in the UI): feeds the next turn's query."""
        with self._lock(session_id):
            for _ in range(SAVE_ATTEMPTS):
                state = self.sessions.read(session_id)
                if not np.isin(item_id, self.facts.ids):
                    raise UserError(f"no item {item_id} in catalog {self.catalog.name!r}")
                state.belief.like(item_id) if liked else state.belief.dislike(item_id)
                try:
                    self.sessions.save_feedback(session_id, item_id, liked, state.belief, version=state.version)
                    return
                except SessionChanged:  # another process stored a turn meanwhile: apply it to that
                    continue
            raise SessionBusy(SAVE_ATTEMPTS)

    def forget(self, session_ids: list[str]) -> None:
        """Drop the per-session locks of sessions deleted from the store (see crs.web.session_expiry)."""
        self.sessions.forget(session_ids)

    def warm_up(self) -> None:
        """Load what loads on first use (the query text encoder's weights, the image reader's
        value prototypes: seconds) now, so that no person's first turn pays for it."""
        self.searcher.embedder.encode_query_text("warm-up")
        self.offline_reader.read(Image.new("RGB", (64, 64), "white"), ReadContext(self.facts))

    # -- the turn ------------------------------------------------------------------------------------

    def respond(self, session_id: str, message: Message) -> Reply:
        """Take one message, return the reply; the turn and the new belief are stored.

        Turns of one session are serialised through the store (crs.sessions): if another process
        stored a turn of this session while this one was computed, it is computed again on the
        fresh belief, so concurrent messages give consecutive turns and no update is lost."""
        started = time.perf_counter()
        with self._lock(session_id):
            for _ in range(SAVE_ATTEMPTS):
                state = self.sessions.read(session_id)
                reply, belief, record, images = self._turn(state.belief, message)
                try:
                    self._save(session_id, belief, message, images, record, reply, time.perf_counter() - started,
                               version=state.version)
                    return reply
                except SessionChanged:
                    log.info("session changed by another process during a turn: computing it again")
            raise SessionBusy(SAVE_ATTEMPTS)

    def _turn(self, belief: BeliefState, message: Message) -> tuple[Reply, BeliefState, TurnRecord, list[Image.Image]]:
        """One turn on ``belief`` (changed in place): the reply and what the store keeps of it."""
        record = TurnRecord()
        images = self._decode(message.images, record)
        shown = self._shown(belief)
        question = Question(**belief.question) if belief.question else None
        if images:
            self._read_images(images, belief, record)
        critique = self._stage("parser", record,
                               lambda: self.parser.parse(message.text, ParseContext(self.facts, shown, question)),
                               lambda: self.rule_parser.parse(message.text, ParseContext(self.facts, shown, question)),
                               self.parser is not self.rule_parser) if message.text.strip() else Critique()
        record.critique = critique
        if question is not None and (question.attribute in critique.require or question.attribute in critique.dont_care
                                     or question.attribute in critique.exclude):  # answered, "none of these" too
            belief.question = None
        replied_to_page = question is None and bool(belief.last_shown)
        answered_page = belief.last_action == "recommend"
        belief.drop_topic(*self.posterior.stale_wishes(belief, critique))
        belief.apply(critique, self.facts)
        belief.turns += 1
        tally = page_reply(critique)
        past = (belief.page_replies[0], belief.page_replies[1])
        page_replies = (past[0] + tally[0], past[1] + tally[1]) if replied_to_page else past
        reply = self._decide(belief, critique, record, page_replies)
        if answered_page:  # kept in the belief, so no turn re-reads the session's history
            belief.page_replies = [past[0] + tally[0], past[1] + tally[1]]
        belief.last_action = reply.action
        return reply, belief, record, images

    def _decide(self, belief: BeliefState, critique: Critique, record: TurnRecord,
                page_replies: tuple[int, int] = (0, 0)) -> Reply:
        notes = tuple(record.notes)
        caption = record.readings[0].caption if record.readings else None
        if critique.accept is not None and belief.accepted is not None:
            hit = self.searcher.hits([ScoredItem(belief.accepted, 1.0)])[0]
            item = ReplyItem(hit.id, hit.title, hit.image, 1.0, "your choice", hit.item_id)
            text = self._write(ReplyDraft("answer", notes, caption, items=(item,)), record)
            return Reply(text, "answer", items=[item], fallbacks=record.fallbacks)
        query = self.query(belief)
        candidates = self.candidates(belief, query)
        context = PolicyContext(self.facts, candidates, frozenset(belief.asked), frozenset(belief.settled),
                                belief.turns, self.k, frozenset(belief.shown), belief.summary(),
                                {a: frozenset(v) for a, v in belief.exclude.items()}, page_replies,
                                named=not belief.shown and self.posterior.names_items(belief.texts))
        fallbacks_before = len(record.fallbacks)
        decision = self._stage("policy", record, lambda: self.policy.decide(context),
                               lambda: self.default_policy.decide(context), self.policy is not self.default_policy)
        # The stored turn names the policy that decided: after a fallback that is the default one.
        decided = self.default_policy if len(record.fallbacks) > fallbacks_before else self.policy
        record.policy = getattr(decided, "name", type(decided).__name__)
        ranking = [int(i) for i in candidates.ids[np.argsort(-candidates.posterior, kind="stable")[:self.k]]]
        if isinstance(decision, Ask):
            belief.record_question(decision.attribute)
            belief.question = {"attribute": decision.attribute, "options": list(decision.options)}
            asked = Question(decision.attribute, decision.options, question_text(self.facts, decision))
            text = self._write(ReplyDraft("ask", notes, caption, question=asked), record)
            return Reply(text, "ask", asked, fallbacks=record.fallbacks, ranking=ranking)
        assert isinstance(decision, Recommend)
        belief.question = None
        items = self._items(decision.ids, belief, query)
        belief.record_shown([i.item_id for i in items])
        text = self._write(ReplyDraft("recommend", notes, caption, items=tuple(items),
                                      reject_all=critique.reject_all), record)
        return Reply(text, "recommend", items=items, fallbacks=record.fallbacks, ranking=ranking)

    def _write(self, draft: ReplyDraft, record: TurnRecord) -> str:
        return self._stage("writer", record, lambda: self.writer.write(draft),
                           lambda: self.default_writer.write(draft), self.writer is not self.default_writer)

    # -- retrieval and the posterior (crs.posterior) -------------------------------------------------

    def query(self, belief: BeliefState) -> Query:
        return self.posterior.query(belief)

    def candidates(self, belief: BeliefState, query: Query | None = None) -> Candidates:
        """The live candidates and the posterior over them."""
        return self.posterior.candidates(belief, query)

    def pick_log_likelihood(self, belief: BeliefState, ids: np.ndarray) -> np.ndarray:
        return self.posterior.pick_log_likelihood(belief, ids)

    def violations(self, belief: BeliefState, ids: np.ndarray) -> np.ndarray:
        return self.posterior.violations(belief, ids)

    @property
    def _text_cache(self) -> dict[str, np.ndarray]:  # benchmarks/turn_latency.py clears it
        return self.posterior.text_cache

    # -- pieces ------------------------------------------------------------------------------------------

    def _stage(self, name: str, record: TurnRecord, primary: Callable[[], T], fallback: Callable[[], T],
               has_fallback: bool) -> T:
        if not has_fallback:
            return primary()
        try:
            return primary()
        except StageFailure as exc:  # timeout, garbage, out-of-vocabulary: rules take this turn
            log.warning("%s fell back to rules: %s", name, exc)
            record.fallbacks.append(f"{name}: {exc}")
            return fallback()

    def _decode(self, sources: tuple[ImageSource, ...], record: TurnRecord) -> list[Image.Image]:
        images = []
        for number, source in enumerate(sources[:MAX_IMAGES], start=1):
            try:
                images.append(load_image(source))
            except ImageLoadError as exc:  # the conversation goes on with the text and other images
                record.notes.append(f"I could not read image {number} ({exc}).")
        if len(sources) > MAX_IMAGES:
            record.notes.append(f"I looked at the first {MAX_IMAGES} images only.")
        return images

    def _read_images(self, images: list[Image.Image], belief: BeliefState, record: TurnRecord) -> None:
        joint, visual = self.searcher.embedder.encode_images(images)
        readings = []
        for row, image in enumerate(images):
            offline = lambda row=row, image=image: self.offline_reader.read_encoded(  # noqa: E731
                image, joint[row], None if visual is None else visual[row], ReadContext(self.facts))
            if self.reader is self.offline_reader:
                readings.append(offline())
                continue
            # The model reader is offered the values this picture most likely has (a short prompt).
            likely = self.offline_reader.likely_values(joint[row], None if visual is None else visual[row], self.facts,
                                                       LIKELY_VALUES)
            readings.append(self._stage("reader", record, lambda image=image, likely=likely: self.reader.read(
                image, ReadContext(self.facts, likely)), offline, True))
        record.readings = readings
        attributes: dict[str, list[str]] = {}
        for reading in readings:
            for name, values in reading.attributes.items():
                attributes.setdefault(name, []).extend(v for v in values if v not in attributes.get(name, []))
        belief.add_images(joint, visual, [r.caption for r in readings], attributes)

    def _shown(self, belief: BeliefState) -> list[ShownItem]:
        """The items shown last, as the critique parser sees them ("the red one", "the second")."""
        if not belief.last_shown:
            return []
        values = self.facts.values_of(belief.last_shown)
        titles = self._titles(belief.last_shown)
        return [ShownItem(i, titles.get(i, ""), v) for i, v in zip(belief.last_shown, values)]

    def _titles(self, ids: list[int]) -> dict[int, str]:
        with self.store.session() as db:
            return dict(db.execute(select(Item.id, Item.title).where(Item.id.in_(ids))).all())

    def _items(self, ids: list[int], belief: BeliefState, query: Query) -> list[ReplyItem]:
        if not ids:
            return []
        if query.is_empty():
            scored = [ScoredItem(i, 0.0) for i in ids]
        else:
            scored = self.searcher.index.score_ids(self.searcher.index.targets(query), np.array(ids, dtype=np.int64))
        return reply_items(self.searcher.hits(scored), belief, self.facts, self._resemblance(ids, belief))

    def _resemblance(self, ids: list[int], belief: BeliefState) -> dict[int, Resemblance]:
        """How much each item looks like the person's picture (raw visual space, else the joint
        image space) and like the closest item they liked (the choice model's space): the only
        grounds on which a reason may say so."""
        index = self.searcher.index
        if not index.has_pictures:
            return {}
        items = np.array(ids, dtype=np.int64)
        picture = liked = None
        if belief.image_vectors is not None:
            space, vectors = ("visual", belief.visual_vectors) if index.has_visual and belief.visual_vectors is not None \
                else ("image", belief.image_vectors)
            picture = _cosines(index.vectors(space, items), vectors).max(axis=1)
        if belief.liked:
            liked = _cosines(index.vectors(LOOKS_SPACE, items),
                             index.vectors(LOOKS_SPACE, np.array(belief.liked, dtype=np.int64))).max(axis=1)
        return {i: Resemblance(None if picture is None else float(picture[n]), None if liked is None else float(liked[n]))
                for n, i in enumerate(ids)}

    def reason(self, hit: SearchHit, belief: BeliefState) -> str:
        """One line on why an item is shown (:func:`crs.replies.reason`)."""
        return reason(hit, belief, self.facts)

    def _lock(self, session_id: str) -> threading.Lock:
        return self.sessions.lock(session_id)

    def _save(self, session_id: str, belief: BeliefState, message: Message, images: list[Image.Image],
              record: TurnRecord, reply: Reply, seconds: float, *, version: int) -> None:
        # A method of its own: benchmarks/eval_throughput.py times the store writes through it.
        self.sessions.save_turn(session_id, belief, message, images, record, reply, seconds, version=version)
