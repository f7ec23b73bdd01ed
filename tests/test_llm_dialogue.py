"""The LLM stages inside a real DialogueManager (shapes catalog, fake encoders, scripted models):
an LLM turn that fails is read by the rules, recorded, and the next turn uses the LLM again."""
from __future__ import annotations

import pytest

from crs.dialogue import DialogueManager
from crs.facts import CatalogFacts
from crs.llm.parser import LLMCritiqueParser
from crs.llm.fakes import ScriptedChatModel
from crs.llm.reader import LLMImageReader
from crs.llm.policy import LLMPolicy
from crs.search import CatalogSearch
from crs.turn import Message


@pytest.fixture
def searcher(shapes_catalog) -> CatalogSearch:
    return CatalogSearch.open(*shapes_catalog, "fake")


def test_the_real_catalog_vocabulary_reaches_the_prompt(shapes_catalog) -> None:
    from crs.understanding.parser import ParseContext

    facts = CatalogFacts.load(*shapes_catalog)
    parser = LLMCritiqueParser(ScriptedChatModel(responses=['{"require": {"colour": ["green"]}}']), spec="fake")
    assert parser.parse("green", ParseContext(facts)).require == {"colour": ["green"]}
    prompt = parser.model.prompt_text()
    assert "- colour: any of " in prompt and "green" in prompt
    assert "- shape:" not in prompt  # compact: only the attributes the message names
    parser.parse("a flat star", ParseContext(facts))  # a value named: its whole small vocabulary
    assert "- shape: one of circle, square, triangle, star" in parser.model.prompt_text()
    assert "- style: one of outline < flat (low to high)" in parser.model.prompt_text()


def test_llm_stages_drive_the_conversation_and_fall_back_per_turn(shapes_catalog, searcher) -> None:
    parser = LLMCritiqueParser(ScriptedChatModel(responses=[
        "I am not sure what you mean.",  # turn 1: garbage -> the rules read "a green circle"
        '{"require": {"style": ["outline"]}}',  # turn 2
    ]), spec="fake")
    policy = LLMPolicy(ScriptedChatModel(responses=[
        '{"action": "ask", "attribute": "price"}',  # turn 1: not a question it may ask -> the default policy
    ]), spec="fake")
    dm = DialogueManager(shapes_catalog[0], searcher, parser=parser, policy=policy, k=3)
    session = dm.start()
    first = dm.respond(session, Message("a green circle"))
    assert [f.split(":")[0] for f in first.fallbacks] == ["parser", "policy"]
    assert "no JSON in reply" in first.fallbacks[0]
    assert first.fallbacks[1] == "policy: field attribute: 'price' is not one of style"
    assert dm.belief(session).require == {"colour": ["green"], "shape": ["circle"]}  # the rules' reading
    second = dm.respond(session, Message("the outline one"))
    assert dm.belief(session).require["style"] == ["outline"]  # the LLM's reading
    assert second.action == "recommend" and second.fallbacks == []
    assert len(policy.model.received) == 1  # nothing left to ask on turn 2: the model was not consulted
    history = dm.history(session)
    assert history[0]["understanding"]["policy"] == "eig"  # turn 1 was decided by the fallback, and says so
    assert history[1]["understanding"]["critique"]["source"] == "llm:fake"
    assert history[1]["understanding"]["policy"] == "llm:fake"


def test_a_cut_off_reply_is_a_recorded_fallback_and_the_rules_read_the_turn(shapes_catalog, searcher) -> None:
    cut = '{"require": {"colour": ["red"]}, "exclude": {"colour": ["gre'  # cut at the token limit
    dm = DialogueManager(shapes_catalog[0], searcher, parser=LLMCritiqueParser(
        ScriptedChatModel(responses=[cut]), spec="fake"), k=3)
    session = dm.start()
    reply = dm.respond(session, Message("a red star, not green"))
    assert reply.fallbacks and reply.fallbacks[0].startswith("parser: reply cut off or malformed")
    assert dm.belief(session).require["colour"] == ["red"]  # the rules' reading, not an empty critique
    assert dm.belief(session).exclude.get("colour") == ["green"]


def test_an_llm_image_reading_reaches_the_belief(shapes_catalog, searcher) -> None:
    from PIL import Image

    reader = LLMImageReader(ScriptedChatModel(responses=[
        '{"attributes": {"shape": ["star"]}, "caption": "a red star", "colours": ["red"]}', "garbage"]), spec="fake")
    dm = DialogueManager(shapes_catalog[0], searcher, reader=reader, k=3)
    session = dm.start()
    image = Image.new("RGB", (64, 64), (220, 30, 30))
    reply = dm.respond(session, Message("", images=(image,)))
    assert "a red star" in reply.text and not reply.fallbacks
    assert dm.history(session)[0]["understanding"]["readings"][0]["source"] == "llm:fake"
    reply = dm.respond(session, Message("", images=(image,)))
    assert reply.fallbacks and reply.fallbacks[0].startswith("reader: no JSON in reply")
