"""The LLM user with scripted chat models: prompts, leaks redacted and counted, per-turn fallback."""
from __future__ import annotations

import pytest

from crs.dialogue import DialogueManager
from crs.llm.fakes import ScriptedChatModel
from crs.llm.structured import LLMError
from crs.search import CatalogSearch
from crs.turn import Question, Reply
from simulators.agenda import AgendaConfig, AgendaSimulator
from simulators.conversation import SimulatorSpec, run_conversation
from simulators.leaks import REDACTED
from simulators.llm_user import LLMSimulator, clean_line
from simulators.metrics import summarize
from simulators.targets import ConversationPlan
from simulators.world import SimulationWorld
from tests.test_simulators import item, reply_showing


@pytest.fixture
def world(shapes_catalog) -> SimulationWorld:
    return SimulationWorld(*shapes_catalog, CatalogSearch.open(*shapes_catalog, "fake").index)


@pytest.fixture
def dm(world) -> DialogueManager:
    return DialogueManager(world.store, CatalogSearch.open(world.store, world.catalog, "fake"), k=3)


def llm_user(world, target: str, replies: list[str], *, start: str = "text", sleep: float | None = None,
             timeout_s: float = 5.0, vision: bool = False) -> LLMSimulator:
    plan = ConversationPlan(0, 4, item(world, target), start)
    model = ScriptedChatModel(responses=replies, sleep=sleep)
    return LLMSimulator(world, plan, model, spec="fake", vision=vision, timeout_s=timeout_s,
                        agenda=AgendaConfig(wrong_rate=0.0))


def test_the_model_plays_the_user_with_the_target_in_its_prompt(world) -> None:
    user = llm_user(world, "red-circle-outline", ["I'm after a red shape", "circle please", "like #1 but outline"],
                    start="other-style-image")
    opening = user.respond(None)
    assert opening.text == "I'm after a red shape" and user.notes.fallbacks == () and not user.notes.leaked
    assert opening.images == (world.images[item(world, "red-circle-flat")],)  # the plan's picture, as the agenda user's
    first = user.model.prompt_text(0)
    assert "its name (never say it): Red circle outline" in first and "- shape: circle" in first
    assert "another version" in first and "\u201cRed circle\u201d" in first  # what the uploaded picture shows
    question = Question("shape", ["circle", "square", "any"], "Which shape?")
    assert user.respond(Reply("Which shape would you like?", "ask", question)).text == "circle please"
    assert "the options: circle, square, any" in user.model.prompt_text()
    shown = user.respond(reply_showing(world, "red-circle-flat", "blue-circle-outline"))
    assert shown.text == "like #1 but outline" and shown.images == ()
    prompt = user.model.prompt_text()
    assert "#1. Red circle\n#2. Blue circle outline" in prompt
    assert "circle please" in prompt  # its own earlier lines are in the history


def test_a_line_naming_the_target_is_redacted_and_counted(world) -> None:
    user = llm_user(world, "red-circle-outline", ["is red-circle-outline in stock?", "a red one"])
    message = user.respond(None)
    assert message.text == f"is {REDACTED} in stock?" and user.notes.leaked
    user.respond(Reply("Which shape?", "ask", Question("shape", ["circle", "any"])))
    assert not user.notes.leaked
    assert REDACTED in user.model.prompt_text()  # the model's history holds what the system saw


@pytest.mark.parametrize("garbage", ["", "   ", '{"message": "blue"}', "x" * 600, "<think>hmm</think>"])
def test_garbage_falls_back_to_the_agenda_user_for_that_turn(world, garbage) -> None:
    user = llm_user(world, "blue-star-flat", [garbage, "a star please"])
    shadow = AgendaSimulator(world, user.plan, AgendaConfig(wrong_rate=0.0))
    assert user.respond(None).text == shadow.respond(None).text
    assert user.notes.fallbacks == ("simulator",)
    ask = Reply("Which shape?", "ask", Question("shape", ["star", "any"]))
    assert user.respond(ask).text == "a star please" and user.notes.fallbacks == ()


def test_a_model_too_slow_falls_back(world) -> None:
    user = llm_user(world, "blue-star-flat", ["too late"], sleep=2.0, timeout_s=0.1)
    shadow = AgendaSimulator(world, user.plan, AgendaConfig(wrong_rate=0.0))
    assert user.respond(None).text == shadow.respond(None).text and user.notes.fallbacks == ("simulator",)


def test_vision_sends_the_target_picture_once(world) -> None:
    user = llm_user(world, "green-square-flat", ["a green one", "square"], vision=True)
    user.respond(None)
    user.respond(Reply("Which shape?", "ask", Question("shape", ["square", "any"])))
    calls = user.model.received
    first, second = calls[0][1].content, calls[1]
    assert first[1]["type"] == "image_url" and first[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "A picture of the item is attached" in calls[0][0].content
    assert sum(isinstance(m.content, list) for m in second) == 1  # still only the first message carries it


def test_clean_line_takes_a_chat_line_or_refuses() -> None:
    assert clean_line('<think>plan</think> Shopper: "a blue one, please"\n') == "a blue one, please"
    for bad in ("", "...", "```json\n{}\n```", "[1, 2]"):
        with pytest.raises(LLMError):
            clean_line(bad)


def test_a_conversation_with_an_llm_user_records_leaks_and_fallbacks(world, dm, monkeypatch) -> None:
    scripted = ScriptedChatModel(responses=["I want blue-star-flat", "", "star", "flat", "blue", "star"])
    monkeypatch.setattr("simulators.llm_user.shared_chat_model", lambda spec, timeout_s: scripted)
    spec = SimulatorSpec(kind="llm", llm="ollama:fake", wrong_rate=0.0)
    plan = ConversationPlan(0, 5, item(world, "blue-star-flat"), "text")
    user = spec.build(world, plan)
    assert isinstance(user, LLMSimulator) and user.model is scripted
    result = run_conversation(dm, user, plan, max_turns=4)
    first = result.turns[0]
    assert first.leaked and first.user_text == f"I want {REDACTED}" and first.fallbacks == []
    assert len(result.turns) > 1  # a redacted wish tells the system nothing: it goes on
    assert result.turns[1].fallbacks[:1] == ["simulator"] and not result.turns[1].leaked
    assert summarize([result], max_turns=4, k=3)["leak_rate"] == pytest.approx(1 / len(result.turns))


def test_an_unknown_llm_setting_is_refused_when_built(world) -> None:
    spec = SimulatorSpec(kind="llm", llm="nosuch:model")
    with pytest.raises(ValueError, match="SCHEME"):
        spec.build(world, ConversationPlan(0, 1, item(world, "blue-star-flat"), "text"))
