"""The pick model ("more like #2" among the shown items) and how the belief and the dialogue
manager's posterior use it."""
from __future__ import annotations

import numpy as np
import pytest

import crs.posterior as posterior
from crs.belief import BeliefState
from crs.choice import choice_likelihood
from crs.dialogue import DialogueManager
from crs.policy.baselines import AlwaysRecommend
from crs.search import CatalogSearch
from crs.turn import Message


def unit(*rows: list[float]) -> np.ndarray:
    m = np.array(rows, dtype=float)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_choice_likelihood_arithmetic() -> None:
    shown = unit([1, 0], [0, 1])
    candidates = unit([1, 0], [0, 1], [1, 1])
    # No lapse, temperature 1: the candidate (1, 0) picks (1, 0) with e^1 / (e^1 + e^0).
    plain = choice_likelihood(candidates, shown, temperature=1.0, lapse=0.0)
    assert plain[0, 0] == pytest.approx(np.e / (np.e + 1)) and plain[1, 1] == pytest.approx(np.e / (np.e + 1))
    assert plain[2] == pytest.approx([0.5, 0.5])  # halfway between: either pick is as likely
    # A lapse of 0.3 mixes in a uniform pick: no pick is ever less likely than 0.3 / 2.
    lapsed = choice_likelihood(candidates, shown, temperature=0.01, lapse=0.3)
    assert lapsed[0] == pytest.approx([0.85, 0.15]) and lapsed.min() >= 0.15 - 1e-12
    assert np.allclose(lapsed.sum(axis=1), 1.0)


def test_liking_a_shown_item_is_a_pick_among_them() -> None:
    belief = BeliefState()
    belief.record_shown([4, 5, 6])
    belief.like(5)
    belief.like(5)  # said twice: one pick
    belief.like(9)  # not shown: a like (it pulls the query), no pick
    assert belief.picks == [[[4, 5, 6], 5]] and belief.liked_unpicked() == [9]
    again = BeliefState.from_json(belief.to_json())
    assert again.picks == belief.picks
    # A session stored before picks existed still loads.
    old = belief.to_json()
    del old["picks"]
    assert BeliefState.from_json(old).picks == []


@pytest.fixture
def dm(shapes_catalog) -> DialogueManager:
    searcher = CatalogSearch.open(*shapes_catalog, "fake")
    return DialogueManager(shapes_catalog[0], searcher, policy=AlwaysRecommend(), k=3)


def log_posterior(dm: DialogueManager, belief: BeliefState) -> dict[int, float]:
    candidates = dm.candidates(belief)
    return dict(zip(candidates.ids.tolist(), np.log(candidates.posterior).tolist()))


def test_the_posterior_weighs_candidates_by_the_pick_and_by_having_been_shown(dm) -> None:
    session = dm.start()
    shown = dm.respond(session, Message("a star"))
    dm.respond(session, Message("more like the second"))
    belief = dm.belief(session)
    shown_ids = [i.item_id for i in shown.items]
    assert belief.picks == [[shown_ids, shown_ids[1]]]

    bare = BeliefState.from_json({**belief.to_json(), "picks": [], "liked": [], "shown": []})
    with_pick = BeliefState.from_json({**belief.to_json(), "shown": []})
    base, picked, full = log_posterior(dm, bare), log_posterior(dm, with_pick), log_posterior(dm, belief)
    ids = np.array(sorted(base), dtype=np.int64)
    assert set(base) == set(picked) == set(full)
    # Up to normalisation, the pick adds log P(pick | item) and having been shown adds log SHOWN_MISS.
    pick = dm.pick_log_likelihood(belief, ids)
    assert np.ptp([picked[i] - base[i] - pick[r] for r, i in enumerate(ids)]) == pytest.approx(0.0, abs=1e-9)
    shown_term = np.log(posterior.SHOWN_MISS) * np.isin(ids, belief.shown)
    assert np.ptp([full[i] - picked[i] - shown_term[r] for r, i in enumerate(ids)]) == pytest.approx(0.0, abs=1e-9)
    # The picked item is the likeliest of the shown ones to be what the person meant.
    assert int(np.argmax(pick[np.searchsorted(ids, shown_ids)])) == 1


def test_every_item_meeting_the_wishes_is_a_candidate_when_they_are_few(dm, monkeypatch) -> None:
    monkeypatch.setattr(posterior, "POOL_FILTERED", 2)
    monkeypatch.setattr(posterior, "POOL_OPEN", 1)
    belief = BeliefState(require={"shape": ["star"]}, texts=["red"])
    meeting = set(dm.facts.ids[dm.facts.has_value("shape", ["star"], dm.facts.ids)].tolist())
    assert len(meeting) > 2
    assert meeting <= set(dm.candidates(belief).ids.tolist())
    monkeypatch.setattr(posterior, "POOL_ALL", 0)  # too many to weigh all: the top POOL_FILTERED of them
    assert len(meeting & set(dm.candidates(belief).ids.tolist())) <= 2 + 1 < len(meeting)
