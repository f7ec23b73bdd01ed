"""The belief as a query, the live candidates, and the posterior over them.

    p_i ∝ exp(score_i / TEMPERATURE) * VIOLATION ** v_i * SHOWN_MISS ** s_i * prod_picks P(pick | i)

``score_i`` is the fused retrieval score of the composed query, ``v_i`` the number of
constraints item i breaks, ``s_i`` whether it was shown before (and not taken), and each pick
("more like #2") weighs i by how likely that pick is if i is the wanted item (:mod:`crs.choice`).
Candidates are the items meeting the constraints (all of them when there are at most
POOL_ALL, else the top POOL_FILTERED) plus the top items ignoring them, so one wrong answer
makes the right item unlikely, not impossible.

How the constants were chosen: docs/experiments.md.
"""
from __future__ import annotations

import re

import numpy as np

from retrieval.multimodal import Query

from .belief import BeliefState
from .turn import Critique
from .understanding.stopwords import STOPWORDS
from .choice import LOOKS_SPACE, choice_likelihood
from .facts import CatalogFacts
from .policy import Candidates
from .search import CatalogSearch

TEMPERATURE = 0.1  # posterior sharpness over fused scores (cosine units)
VIOLATION = 0.05  # factor per broken constraint: soft-hard, so a wrong answer is recoverable
POOL_FILTERED = 200  # candidates under the constraints
POOL_OPEN = 50  # candidates ignoring them
POOL_ALL = 2000  # when at most this many items meet the constraints, all of them are candidates
SHOWN_MISS = 0.1  # factor on an item shown before and not taken
TEXT_CACHE = 512  # query texts whose encodings are kept


class Posterior:
    """Composes a belief's query and weighs the catalog's items under it, for one searcher."""

    def __init__(self, searcher: CatalogSearch, facts: CatalogFacts) -> None:
        self.searcher = searcher
        self.facts = facts
        self.text_cache: dict[str, np.ndarray] = {}

    def query(self, belief: BeliefState) -> Query:
        text = belief.query_text()
        return Query(text=self._encode_text(text) if text else None, words=text,
                     images=belief.image_vectors, visual=belief.visual_vectors,
                     liked=tuple(belief.liked_unpicked()), disliked=tuple(belief.disliked))

    def candidates(self, belief: BeliefState, query: Query | None = None) -> Candidates:
        """The live candidates and the posterior over them."""
        query = query if query is not None else self.query(belief)
        violations_all = self.violations(belief, self.facts.ids)
        allowed = self.facts.ids[violations_all == 0]
        exclude = set(belief.disliked)
        if query.is_empty():
            # Nothing to rank by yet: the items meeting the constraints, equally likely.
            pool = [int(i) for i in allowed if int(i) not in exclude][:POOL_FILTERED * 5]
            ids = np.array(pool, dtype=np.int64)
            scores = np.zeros(len(ids))
        else:
            if violations_all.any() and len(allowed) <= POOL_ALL:
                # Few enough items meet the wishes to weigh them all: the wanted one cannot
                # drop out of the pool because the query text or a liked item points elsewhere.
                keep = allowed[~np.isin(allowed, list(exclude))]
                hits = self.searcher.index.score_ids(self.searcher.index.targets(query), keep)
            else:
                hits = self.searcher.index.search(query, POOL_FILTERED, allowed_ids=allowed, exclude_ids=exclude)
            if violations_all.any():
                hits += self.searcher.index.search(query, POOL_OPEN, exclude_ids=exclude)
            best: dict[int, float] = {}
            for hit in hits:
                best[hit.id] = hit.score
            if belief.picks:
                # "the second one, but blue": items like the one picked that meet the wishes join
                # the pool, scored by the whole query; the pick then weighs them (crs.choice).
                near = self.searcher.index.search(Query(liked=(int(belief.picks[-1][1]),)), POOL_OPEN,
                                                  allowed_ids=allowed, exclude_ids=exclude)
                extra = np.array([h.id for h in near if h.id not in best], dtype=np.int64)
                if len(extra):
                    for hit in self.searcher.index.score_ids(self.searcher.index.targets(query), extra):
                        best[hit.id] = hit.score
            ids = np.array(list(best), dtype=np.int64)
            scores = np.array(list(best.values()), dtype=np.float64)
        if len(ids) == 0:
            return Candidates(ids, scores, scores)
        logits = scores / TEMPERATURE + np.log(VIOLATION) * self.violations(belief, ids)
        # Shown and not taken: the person would most likely have said so had it been theirs.
        logits += np.log(SHOWN_MISS) * np.isin(ids, belief.shown)
        logits += self.pick_log_likelihood(belief, ids)
        order = np.argsort(-logits, kind="stable")
        ids, scores, logits = ids[order], scores[order], logits[order]
        posterior = np.exp(logits - logits.max())
        return Candidates(ids, scores, posterior / posterior.sum())

    def stale_wishes(self, belief: BeliefState, critique: Critique) -> tuple[list[str], list[str]]:
        """Earlier wishes that no catalog item meets together with this message's: (texts,
        required attributes). The latest message wins a contradiction (see :mod:`crs.belief`),
        and a wish nothing can meet beside the new ones was about something else: "a sleepy cat",
        then "red hearts" (no red heart's words hold "sleepy" or "cat"). A text counts as met by
        an item whose own words hold any of its words (the lexical index); one that no item holds
        tells nothing either way. A message about a shown item ("the second one, but blue") goes
        on from it: nothing is stale."""
        lexical = self.searcher.index.lexical
        if critique.references or critique.accept is not None or not (critique.require or critique.text.strip()):
            return [], []
        new = np.ones(len(self.facts.ids), dtype=bool)
        for attribute, values in critique.require.items():
            if attribute in self.facts.attributes and self.facts.attributes[attribute].kind != "numeric":
                new &= self.facts.has_value(attribute, values, self.facts.ids)
        words = self._holding(lexical, critique.text)
        if words is not None:
            new &= words
        if not new.any():  # the message alone meets nothing: no ground to judge the others by
            return [], []
        texts = []
        for text in belief.texts:
            held = self._holding(lexical, text)
            if held is not None and not (held & new).any():
                texts.append(text)
        # Earlier stated values give way to the message's values, or to a phrase that names items
        # by every one of its words ("a sleepy cat" after "red hearts": no sleeping cat is a red
        # heart). A single word does not overrule a stated value: it is as often a modifier as a
        # new subject ("more sleepy" after "a cat face"), and a word the catalog uses in passing
        # ("the second one" with nothing shown) must not undo "3D".
        phrase = len(_content_words(critique.text)) >= 2
        subject = new if critique.require else self._naming(critique.text) if phrase else None
        attributes = []
        for attribute, values in belief.require.items() if subject is not None else ():
            if attribute in critique.require or attribute not in self.facts.attributes \
                    or self.facts.attributes[attribute].kind == "numeric":
                continue
            if not (self.facts.has_value(attribute, values, self.facts.ids) & subject).any():
                attributes.append(attribute)
        return texts, attributes

    def names_items(self, texts: list[str]) -> bool:
        """Whether some catalog item's own words hold every word of one of ``texts`` (each word
        or a form of it: "sleepy" is held by "sleeping"): the person named something the catalog
        has, so plain search finds it and a page can go first (the policies' ``named``)."""
        return any(self._naming(text) is not None for text in texts)

    def _naming(self, text: str) -> np.ndarray | None:
        """Per catalog item (facts order): whether its own words hold every word of ``text`` (or
        a form of it); None when no item's do (or there is no lexical index)."""
        lexical = self.searcher.index.lexical
        words = _content_words(text)
        if lexical is None or not words:
            return None
        held = np.ones(lexical.size, dtype=bool)
        for word in words:
            held &= np.logical_or.reduce([lexical.scores(form) > 0 for form in _forms(word)])
        rows = lexical.rows_of(self.facts.ids)
        named = np.where(rows >= 0, held[np.maximum(rows, 0)], False)
        return named if named.any() else None

    def _holding(self, lexical, text: str) -> np.ndarray | None:  # type: ignore[no-untyped-def]
        """Per catalog item (facts order): whether its words hold any word of ``text``; None when
        no item's do (or there is no lexical index)."""
        if lexical is None or not text.strip():
            return None
        scores = lexical.scores(text)
        rows = lexical.rows_of(self.facts.ids)
        held = np.where(rows >= 0, scores[np.maximum(rows, 0)] > 0, False)
        return held if held.any() else None

    def pick_log_likelihood(self, belief: BeliefState, ids: np.ndarray) -> np.ndarray:
        """Sum over the person's picks ("more like #2") of log P(that pick | item i is theirs)."""
        total = np.zeros(len(ids))
        if not belief.picks:
            return total
        looks = self.searcher.index.vectors(LOOKS_SPACE, ids)
        for shown, picked in belief.picks:
            likelihood = choice_likelihood(looks, self.searcher.index.vectors(LOOKS_SPACE, shown))
            total += np.log(likelihood[:, shown.index(picked)])
        return total

    def violations(self, belief: BeliefState, ids: np.ndarray) -> np.ndarray:
        """How many of the belief's constraints each item breaks."""
        count = np.zeros(len(ids), dtype=np.int32)
        for attribute, values in belief.require.items():
            if attribute in self.facts.attributes and self.facts.attributes[attribute].kind != "numeric":
                if attribute in belief.all_of:  # each wanted value the item lacks is a broken constraint
                    for value in values:
                        count += ~self.facts.has_value(attribute, [value], ids)
                else:
                    count += ~self.facts.has_value(attribute, values, ids)
        for attribute, values in belief.exclude.items():
            if attribute in self.facts.attributes and self.facts.attributes[attribute].kind != "numeric":
                count += self.facts.has_value(attribute, values, ids)
        for attribute, (low, high) in belief.bounds.items():
            ranks = self.facts.ranks(attribute, ids)
            with np.errstate(invalid="ignore"):
                if low is not None:
                    count += ~(ranks > low)
                if high is not None:
                    count += ~(ranks < high)
        return count

    def _encode_text(self, text: str) -> np.ndarray:
        # Answering a question often leaves the query text as it was: keep recent encodings.
        vector = self.text_cache.get(text)
        if vector is None:
            vector = self.searcher.embedder.encode_query_text(text)
            if len(self.text_cache) >= TEXT_CACHE:
                self.text_cache.pop(next(iter(self.text_cache)))
            self.text_cache[text] = vector
        return vector


def _forms(word: str) -> list[str]:
    """A word and the forms of its stem people and titles use ("sleepy": sleep, sleeping, sleeps,
    slept is not guessed); the lexical index folds plurals only."""
    stem = word
    for suffix in ("ing", "ed", "y", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[:-len(suffix)]
            break
    return list(dict.fromkeys([word, stem, stem + "ing", stem + "y", stem + "ed", stem + "s"]))


def _content_words(text: str) -> list[str]:
    """The words of ``text`` that can name something (stop words dropped), lower case."""
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS]
