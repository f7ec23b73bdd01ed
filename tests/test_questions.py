"""Questions people can answer: no attribute most live candidates lack, no two options that mean
the same, and the catalog's own words (schema labels and display names), never field names."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from crs.catalog.demo import open_catalog
from crs.catalog.ingest import IngestOptions, ingest
from crs.facts import AttributeInfo, CatalogFacts
from crs.policy import Ask, Candidates, PolicyContext, load_policy
from crs.policy.base import MIN_COVERAGE, near_duplicate, question_options
from crs.policy.planner import PlannedEIGPolicy
from crs.replies import question_text, reason
from crs.turn import Message
from crs.web.reply_json import client_reply

# A films-like catalog: mpaa_rating comes first (ask-N asks in catalog order), splits the few
# films that have it evenly (so it looks informative), and 17 of 20 films have none, as in the
# films sample where 85% lack it. genres and length every film has.
SCHEMA = {
    "name": "films", "title": "Films",
    "attributes": [
        {"name": "mpaa_rating", "kind": "categorical", "label": "MPAA rating", "values": ["g", "pg", "pg-13", "r"],
         "display": {"g": "G", "pg": "PG", "pg-13": "PG-13", "r": "R"}},
        {"name": "genres", "kind": "tags", "label": "Genre",
         "display": {"sci-fi": "Sci-Fi", "comedy": "Comedy", "drama": "Drama", "horror": "Horror"}},
        {"name": "length", "kind": "categorical", "label": "Length", "values": ["short", "feature", "long"],
         "display": {"short": "Short (40 min or less)", "feature": "Feature length", "long": "Long (2.5 h or more)"}},
    ],
}
GENRES = ["sci-fi", "comedy", "drama", "horror"]
LENGTHS = ["short", "feature", "long"]


def write_films(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    rows = []
    for i in range(20):
        attributes: dict[str, object] = {"genres": [GENRES[i % 4]], "length": LENGTHS[i % 3]}
        if i < 3:
            attributes["mpaa_rating"] = ["g", "pg-13", "r"][i]
        rows.append({"id": f"film-{i}", "title": f"Film number {i}", "description": f"a {GENRES[i % 4]} film",
                     "attributes": attributes})
    path = folder / "films.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def films(tmp_path: Path, store) -> tuple:
    ingest(store, write_films(tmp_path / "films"), IngestOptions(format="jsonl", catalog="films"))
    catalog = open_catalog(store, "films")
    return store, catalog, CatalogFacts.load(store, catalog)


def uniform(facts: CatalogFacts, **kwargs) -> PolicyContext:
    n = len(facts.ids)
    return PolicyContext(facts, Candidates(facts.ids, np.zeros(n), np.full(n, 1 / n)), **kwargs)


# -- an attribute most live candidates lack is never asked ----------------------------------------

POLICIES = ["eig", "eig-greedy", "eig-no-lookahead", "max-entropy", "ask-1", "ask-3", "random-ask", "fake:ask"]


@pytest.mark.parametrize("name", POLICIES)
def test_no_policy_asks_an_attribute_most_candidates_lack(films, name: str) -> None:
    _, _, facts = films
    asked = []
    for seed in range(6):
        policy = load_policy(name, seed=seed)
        for turn in (1, 2, 3):
            decision = policy.decide(uniform(facts, turn=turn, k=2))
            if isinstance(decision, Ask):
                asked.append(decision.attribute)
    assert "mpaa_rating" not in asked
    if name in ("ask-1", "ask-3", "fake:ask"):  # catalog order: without the rule it would be first
        assert asked and asked[0] == "genres"


def test_coverage_is_judged_on_the_live_posterior_mass(films) -> None:
    _, _, facts = films
    rated = np.isin(facts.ids, facts.ids[:3])  # the 3 films with a rating
    p = np.where(rated, 1.0, 0.1)  # the rated films hold 3 / 4.7 = 64% of the mass
    ctx = PolicyContext(facts, Candidates(facts.ids, np.zeros(len(p)), p / p.sum()))
    assert question_options(ctx, "mpaa_rating")[:-1] == ["g", "pg-13", "r"]
    # Shown (and not taken), two of them are no longer live: the rest of the mass mostly lacks it.
    shown = frozenset(int(i) for i in facts.ids[:2])
    ctx = PolicyContext(facts, Candidates(facts.ids, np.zeros(len(p)), p / p.sum()), shown=shown)
    assert question_options(ctx, "mpaa_rating") == []
    assert MIN_COVERAGE == 0.5


def test_the_planner_asks_a_well_covered_attribute_it_would_otherwise_skip(films) -> None:
    _, _, facts = films
    decision = PlannedEIGPolicy(probe=False).decide(uniform(facts, k=1))
    assert isinstance(decision, Ask) and decision.attribute in ("genres", "length")


# -- no near-duplicate options ------------------------------------------------------------------

def test_near_duplicates() -> None:
    for a, b in [("mammals", "animal mammal"), ("animals", "animal mammal"), ("arrows", "arrow"),
                 ("food & drink", "food and drink"), ("flags", "country flag"), ("boxes", "box")]:
        assert near_duplicate(a, b) and near_duplicate(b, a), (a, b)
    for a, b in [("pg", "pg-13"), ("m", "m/pg"), ("1990s", "1980s"), ("clip-art", "line-art"), ("red", "orange"),
                 ("face smiling", "face affection"), ("glass", "grass"), ("transport air", "transport ground")]:
        assert not near_duplicate(a, b), (a, b)


def groups_facts() -> CatalogFacts:
    """8 items whose 'group' holds the demo's source names, three of them one choice to a person."""
    values = ("animal mammal", "mammals", "animals", "birds", "arrows", "arrow", "food & drink", "food and drink")
    ids = np.arange(1, 9, dtype=np.int64)
    attributes = {"group": AttributeInfo("group", "categorical", True, values, None, label="Group")}
    return CatalogFacts("groups", ids, attributes, {"group": np.arange(8, dtype=np.int32)}, {}, {})


@pytest.mark.parametrize("name", ["eig", "eig-greedy", "max-entropy", "ask-1", "random-ask"])
def test_near_duplicate_options_are_not_offered_together(name: str) -> None:
    facts = groups_facts()
    p = np.array([8, 7, 6, 5, 4, 3, 2, 1], dtype=float)
    ctx = PolicyContext(facts, Candidates(facts.ids, np.zeros(8), p / p.sum()), k=1)
    decision = None
    for seed in range(10):  # random-ask asks on some seeds only
        decision = load_policy(name, seed=seed).decide(ctx)
        if isinstance(decision, Ask):
            break
    assert isinstance(decision, Ask), decision
    offered = [o for o in decision.options if o != "any"]
    assert offered[0] == "animal mammal"  # the most likely of the alike ones stays
    assert not any(near_duplicate(a, b) for i, a in enumerate(offered) for b in offered[i + 1:]), offered
    assert {"mammals", "animals"}.isdisjoint(offered) and not {"arrows", "arrow"} <= set(offered)


# -- the catalog's words: labels and display names ----------------------------------------------

def test_labels_and_display_names_are_stored_and_exposed(films) -> None:
    _, _, facts = films
    rating = facts.attributes["mpaa_rating"]
    assert rating.display_label == "MPAA rating" and rating.display_value("pg-13") == "PG-13"
    assert rating.display_value("unknown") == "unknown"  # no display name: as stored
    assert facts.attributes["length"].display_value("feature") == "Feature length"


def test_question_text_uses_labels_and_display_names(films) -> None:
    _, _, facts = films
    # The sentence names the attribute in words; the options appear once, as buttons (option_labels).
    text = question_text(facts, Ask("length", ["feature", "short", "any"]))
    assert text == "Which length would you like?"
    text = question_text(facts, Ask("mpaa_rating", ["pg-13", "r", "any"]))
    assert text == "Which MPAA rating would you like?" and "PG-13" not in text and "mpaa" not in text
    assert question_text(facts, Ask("mpaa_rating", ["pg-13", "any"])) == "Would you like MPAA rating PG-13?"


def test_a_label_less_attribute_never_shows_its_field_name() -> None:
    facts = CatalogFacts("t", np.arange(1, 3, dtype=np.int64),
                         {"main_category": AttributeInfo("main_category", "categorical", True, ("a", "b"), None)},
                         {"main_category": np.array([0, 1], dtype=np.int32)}, {}, {})
    assert "main_category" not in question_text(facts, Ask("main_category", ["a", "b", "any"]))


def test_the_reply_json_keeps_values_and_adds_what_to_show(films) -> None:
    _, _, facts = films
    reply = {"reply": "Which length?", "action": "ask", "items": [],
             "question": {"attribute": "length", "options": ["feature", "long", "any"], "text": "Which length?"}}
    question = client_reply(reply, facts)["question"]
    assert question["options"] == ["feature", "long", "any"]  # what a click sends back
    assert question["label"] == "Length"
    assert question["option_labels"] == ["Feature length", "Long (2.5 h or more)", "any"]
    assert client_reply(reply)["question"]["option_labels"] == ["feature", "long", "any"]  # no facts: as stored


def test_conversation_shows_labels_and_a_click_on_an_option_is_understood(films) -> None:
    from crs.dialogue import DialogueManager
    from crs.search import CatalogSearch

    store, catalog, _ = films
    dm = DialogueManager(store, CatalogSearch.open(store, catalog, "fake"), k=3, policy=load_policy("ask-2"))
    session = dm.start()
    reply = dm.respond(session, Message("a film"))
    assert reply.action == "ask" and reply.question.attribute == "genres"
    assert "genres" not in reply.text and re.search(r"Which genre would you like\?", reply.text)
    # The options are shown once, as buttons: not repeated in the sentence.
    assert not any(name in reply.text for name in ("Sci-Fi", "Comedy", "Drama", "Horror"))
    assert set(reply.question.options[:-1]) <= {"sci-fi", "comedy", "drama", "horror"}
    # A click sends the option itself (the stored value): understood as the answer.
    option = reply.question.options[0]
    reply = dm.respond(session, Message(option))
    assert list(dm.belief(session).require["genres"]) == [option]
    reply = dm.respond(session, Message("feature"))
    assert reply.action == "recommend" and reply.items
    display = {"sci-fi": "Sci-Fi", "comedy": "Comedy", "drama": "Drama", "horror": "Horror"}[option]
    assert any(display in item.reason for item in reply.items), [item.reason for item in reply.items]


def test_reasons_show_display_names(films) -> None:
    from crs.belief import BeliefState
    from crs.search import SearchHit

    _, _, facts = films
    belief = BeliefState(require={"length": ["feature"], "genres": ["sci-fi"]})
    hit = SearchHit("film-0", 1, "Film", 1.0, {"length": "feature", "genres": ["sci-fi"]}, "")
    assert reason(hit, belief, facts) == "Feature length, Sci-Fi"


def test_the_chat_page_shows_display_names_and_a_click_sends_the_value(films) -> None:
    from crs.dialogue import DialogueManager
    from crs.search import CatalogSearch
    from webui.chat import MAX_OPTIONS, render
    from webui.session import ChatTabs, TabState

    store, catalog, _ = films
    dm = DialogueManager(store, CatalogSearch.open(store, catalog, "fake"), k=3, policy=load_policy("ask-2"))
    tabs = ChatTabs(lambda: dm)
    state = tabs.send(tabs.send(TabState(), "a film"), "sci-fi")  # genres answered: length is asked
    assert state.options[:-1] and set(state.options[:-1]) <= set(LENGTHS)
    names = {"short": "Short (40 min or less)", "feature": "Feature length", "long": "Long (2.5 h or more)"}
    assert state.option_labels == [names[o] for o in state.options[:-1]] + ["any"]
    buttons = [b for b in render(state)[5:5 + MAX_OPTIONS] if b.visible]
    assert [b.value for b in buttons] == state.option_labels
    resumed = tabs.resume(state.session_id)  # after a reload the buttons keep their names
    assert resumed.option_labels == state.option_labels
    after = tabs.pick(state, 0)
    assert after.turns[-1].text == state.options[0]  # the value, which the parser reads as the answer
    assert list(dm.belief(after.session_id).require["length"]) == [state.options[0]]
