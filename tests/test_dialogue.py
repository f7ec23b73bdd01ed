"""Scripted conversations through DialogueManager.respond, the one public entry point."""
from __future__ import annotations

from pathlib import Path

import pytest

from crs.understanding.fakes import ScriptedParser
from crs.dialogue import DialogueManager, SessionNotFound
from crs.errors import UserError
from crs.errors import StageFailure as LLMError  # what crs.llm's errors derive from
from crs.policy import Ask, Policy, PolicyContext, Recommend
from crs.policy.baselines import AlwaysRecommend
from crs.search import CatalogSearch
from crs.turn import Critique, Message


@pytest.fixture
def searcher(shapes_catalog) -> CatalogSearch:
    return CatalogSearch.open(*shapes_catalog, "fake")


@pytest.fixture
def dm(shapes_catalog, searcher) -> DialogueManager:
    return DialogueManager(shapes_catalog[0], searcher, k=3)


def image_path(searcher: CatalogSearch, external_id: str) -> str:
    from retrieval.multimodal import ScoredItem

    return searcher.hits([ScoredItem(searcher.item_ids([external_id])[0], 0.0)])[0].image


def ids_of(reply) -> list[str]:
    return [item.id for item in reply.items]


def test_image_first_turn_reads_the_image_and_searches_by_it(dm, searcher) -> None:
    session = dm.start()
    reply = dm.respond(session, Message("", (image_path(searcher, "blue-square-flat"),)))
    assert reply.text.startswith("I see a blue")
    history = dm.history(session)
    reading = history[0]["understanding"]["readings"][0]
    assert reading["attributes"]["colour"] == ["blue"] and reading["nearest"]
    belief = dm.belief(session)
    assert belief.image_vectors is not None and belief.image_captions
    # The posterior follows the picture: its own colour first.
    candidates = dm.candidates(belief)
    top = dm.facts.values_of(candidates.ids[:6])
    assert all(v["colour"] == ["blue"] for v in top)


def test_ask_then_recommend_and_options_come_from_live_candidates(dm) -> None:
    session = dm.start()
    reply = dm.respond(session, Message("a sticker"))
    assert reply.action == "ask" and reply.question.options[-1] == "any"
    asked = []
    for _ in range(6):
        if reply.action != "ask":
            break
        asked.append(reply.question.attribute)
        reply = dm.respond(session, Message(reply.question.options[0]))
    assert reply.action == "recommend" and len(reply.items) == 3
    assert len(asked) == len(set(asked))  # never the same question twice
    assert all(item.reason for item in reply.items)


def test_constraints_relative_critiques_and_dont_care_update_the_belief(dm) -> None:
    session = dm.start()
    dm.respond(session, Message("a blue shape, not outlined"))
    belief = dm.belief(session)
    assert belief.require == {"colour": ["blue"]} and belief.exclude == {"style": ["outline"]}
    reply = dm.respond(session, Message("show me circles"))
    belief = dm.belief(session)
    assert belief.require["shape"] == ["circle"]
    # The latest message wins: "outline after all" lifts the exclusion.
    dm.respond(session, Message("in outline style after all"))
    belief = dm.belief(session)
    assert "style" not in belief.exclude and belief.require["style"] == ["outline"]
    dm.respond(session, Message("I don't care about the colour"))
    assert "colour" not in dm.belief(session).require and "colour" in dm.belief(session).settled
    assert reply.action in ("ask", "recommend")


def test_references_relative_and_reject_all_with_shown_items(shapes_catalog, searcher) -> None:
    dm = DialogueManager(shapes_catalog[0], searcher, policy=AlwaysRecommend(), k=3)
    session = dm.start()
    first = dm.respond(session, Message("a red star"))
    assert first.action == "recommend" and len(first.items) == 3
    second = dm.respond(session, Message("like the first but green"))
    belief = dm.belief(session)
    # The latest colour replaces red; the shape asked for earlier stays.
    assert belief.liked == [first.items[0].item_id] and belief.require == {"colour": ["green"], "shape": ["star"]}
    # Only two green stars exist: they lead, then the soft constraints let a near miss in.
    assert {i.id for i in second.items[:2]} == {"green-star-flat", "green-star-outline"}
    cheaper = dm.respond(session, Message("cheaper than the second"))
    limit = dm.facts.numbers("price", [second.items[1].item_id])[0]
    assert dm.belief(session).bounds["price"] == [None, limit]
    assert all(dm.facts.numbers("price", [i.item_id])[0] < limit for i in cheaper.items)
    rejected = dm.respond(session, Message("none of these"))
    assert rejected.text.startswith("Sorry")
    assert not set(ids_of(rejected)) & set(ids_of(cheaper))
    assert set(i.item_id for i in cheaper.items) <= set(dm.belief(session).disliked)


def test_accept_ends_with_an_answer(shapes_catalog, searcher) -> None:
    dm = DialogueManager(shapes_catalog[0], searcher, policy=AlwaysRecommend(), k=3)
    session = dm.start()
    shown = dm.respond(session, Message("green circle"))
    reply = dm.respond(session, Message("#2 is perfect"))
    assert reply.action == "answer" and ids_of(reply) == [shown.items[1].id]
    assert dm.belief(session).accepted == shown.items[1].item_id


def test_session_resumes_in_a_new_manager(shapes_catalog, searcher) -> None:
    store = shapes_catalog[0]
    first_dm = DialogueManager(store, searcher, policy=AlwaysRecommend(), k=3)
    session = first_dm.start()
    shown = first_dm.respond(session, Message("a blue triangle"))
    # A restart: a new manager over the same store continues the conversation.
    second_dm = DialogueManager(store, CatalogSearch.open(*shapes_catalog, "fake"), policy=AlwaysRecommend(), k=3)
    reply = second_dm.respond(session, Message("the second one is it"))
    assert reply.action == "answer" and ids_of(reply) == [shown.items[1].id]
    assert [t["number"] for t in second_dm.history(session)] == [1, 2]


def test_feedback_feeds_the_next_query(dm) -> None:
    session = dm.start()
    shown = dm.respond(session, Message("a red circle"))
    dm.feedback(session, shown.items[0].item_id, liked=False) if shown.items else None
    belief = dm.belief(session)
    if shown.items:
        assert belief.disliked == [shown.items[0].item_id]
    with pytest.raises(UserError, match="no item"):
        dm.feedback(session, 999999, liked=True)


def test_unknown_session_and_broken_images(dm, tmp_path: Path) -> None:
    with pytest.raises(SessionNotFound, match="no session"):
        dm.respond("not-a-session", Message("hi"))
    session = dm.start()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    reply = dm.respond(session, Message("a red star", (broken,)))
    assert "could not read image 1" in reply.text and reply.action in ("ask", "recommend")
    assert dm.history(session)[0]["understanding"]["notes"]


class FailingPolicy(Policy):
    name = "failing"

    def decide(self, context: PolicyContext):  # type: ignore[no-untyped-def]
        raise LLMError("timeout after 8.0 s")


def test_llm_failures_fall_back_to_rules_for_that_turn(shapes_catalog, searcher) -> None:
    parser = ScriptedParser([LLMError("no JSON in reply"), Critique(require={"shape": ["star"]}, source="llm:fake")])
    dm = DialogueManager(shapes_catalog[0], searcher, parser=parser, policy=FailingPolicy(), k=3)
    session = dm.start()
    reply = dm.respond(session, Message("a green circle"))
    assert any(f.startswith("parser: no JSON") for f in reply.fallbacks)
    assert any(f.startswith("policy: timeout") for f in reply.fallbacks)
    assert dm.belief(session).require == {"colour": ["green"], "shape": ["circle"]}  # the rules' reading
    dm.respond(session, Message("whatever the LLM says"))
    assert dm.belief(session).require["shape"] == ["star"]  # the LLM parser's reading, next turn
    assert dm.history(session)[0]["fallbacks"]


def test_a_non_llm_error_in_a_stage_is_not_swallowed(shapes_catalog, searcher) -> None:
    dm = DialogueManager(shapes_catalog[0], searcher, parser=ScriptedParser([RuntimeError("bug")]))
    with pytest.raises(RuntimeError, match="bug"):
        dm.respond(dm.start(), Message("hi"))


def test_policy_decisions_shape_the_reply(shapes_catalog, searcher) -> None:
    class AskColour(Policy):
        def decide(self, context: PolicyContext):  # type: ignore[no-untyped-def]
            return Ask("colour", ["red", "blue", "any"]) if context.turn == 1 else Recommend([int(context.candidates.ids[0])])

    dm = DialogueManager(shapes_catalog[0], searcher, policy=AskColour(), k=3)
    session = dm.start()
    ask = dm.respond(session, Message("a star"))
    assert ask.action == "ask" and ask.question.attribute == "colour" and ask.text == "Which colour would you like?"
    assert ask.question.options == ["red", "blue", "any"]  # the options, once: as buttons, not in the sentence
    reply = dm.respond(session, Message("blue"))
    assert dm.belief(session).require["colour"] == ["blue"] and reply.action == "recommend"
    assert dm.belief(session).question is None
