"""Time limits that mean something, over a scripted llama.cpp server (fast; the real one is in
test_llm_llamacpp.py): an abandoned call is stopped in the server, so the next call does not
wait behind it; each stage's limit comes from the speed measured when the model loads; the
start-up check says once which stages the model serves; the servers shut down in order."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from crs.dialogue import DialogueManager
from crs.llm import llamacpp_chat
from crs.llm.fakes import ScriptedChatModel
from crs.llm.parser import LLMCritiqueParser
from crs.llm.policy import LLMPolicy
from crs.llm.reader import LLMImageReader
from crs.llm.speed import MARGIN, OVERHEAD_S, Speed
from crs.llm.startup import check_llm_stages
from crs.llm.structured import LLMError, abandon_all, call_with_timeout, cancelled, in_flight
from crs.search import CatalogSearch
from crs.turn import Message
from tests.test_llm import context

TOKEN_S = 0.02  # the scripted server's time per generated token
TIMINGS = {"prompt_per_second": 400.0, "predicted_per_second": 50.0}


class SingleSlotServer:
    """Stands in for ``xllamacpp.Server``: one generation at a time (llama.cpp's one slot), token
    by token; a stream stops when its callback returns True, as llama.cpp cancels the task."""

    def __init__(self, params: Any = None, reply: str = '{"require": {"colour": ["red"]}}') -> None:
        self.slot = threading.Lock()
        self.reply = reply
        self.stopped_early = 0
        self.requests: list[dict[str, Any]] = []

    def handle_chat_completions(self, request: dict[str, Any], callback: Any = None) -> Any:
        self.requests.append(request)
        with self.slot:
            if not request.get("stream"):  # the warm-up
                time.sleep(TOKEN_S)
                return {"choices": [{"message": {"content": "ok"}}], "timings": TIMINGS,
                        "usage": {"prompt_tokens": 40, "completion_tokens": 24}}
            tokens = ["{"] + ["x"] * 500 if request["messages"][-1]["content"] == "ramble" else list(self.reply)
            for token in tokens:
                time.sleep(TOKEN_S)
                if callback({"choices": [{"delta": {"content": token}}]}):
                    self.stopped_early += 1
                    return None
            callback({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": len(tokens)}})
        return None


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[SingleSlotServer, Path]:
    """A GGUF-looking file and xllamacpp.Server replaced by one shared SingleSlotServer."""
    import xllamacpp

    engine = SingleSlotServer()
    monkeypatch.setattr(xllamacpp, "Server", lambda params: engine)
    monkeypatch.setattr(llamacpp_chat, "_SERVERS", {})
    monkeypatch.setattr(llamacpp_chat, "_SPEEDS", {})
    monkeypatch.setattr(llamacpp_chat, "_SHUT_DOWN", threading.Event())
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF" + bytes(16))
    return engine, model


def test_the_cancellation_flag_is_set_in_the_abandoned_call_only() -> None:
    seen: list[bool] = []

    def slow() -> None:
        while not cancelled():
            time.sleep(0.01)
        seen.append(True)

    with pytest.raises(LLMError, match="timeout"):
        call_with_timeout(slow, 0.1)
    assert call_with_timeout(cancelled, 1.0) is False  # a new call starts uncancelled
    assert abandon_all(2.0) and seen == [True] and in_flight() == 0
    assert cancelled() is False  # outside any call


def test_an_abandoned_call_is_stopped_and_the_next_call_does_not_wait_behind_it(fake_server) -> None:
    engine, path = fake_server
    model = llamacpp_chat.LlamaCppChat(model_path=str(path), max_tokens=600)
    rambling = llamacpp_chat.LlamaCppChat(model_path=str(path), max_tokens=600)
    with pytest.raises(LLMError, match="timeout"):  # would take 500 * 20 ms = 10 s
        call_with_timeout(lambda: rambling.complete([{"role": "user", "content": "ramble"}], []), 0.2)
    started = time.perf_counter()
    reply = call_with_timeout(lambda: model.complete([{"role": "user", "content": "red"}], []), 5.0)
    waited = time.perf_counter() - started
    assert reply.text == engine.reply and reply.completion_tokens == len(engine.reply)
    assert engine.stopped_early == 1  # the server was told to stop the abandoned generation
    assert waited < 0.5 + len(engine.reply) * TOKEN_S * 3, waited  # not the 10 s the dead call had left
    assert engine.requests[-1]["stream"] is True


def test_stage_time_limits_come_from_the_speed_measured_at_load(fake_server) -> None:
    engine, path = fake_server
    parser = LLMCritiqueParser.from_spec(f"llamacpp:{path}")
    policy = LLMPolicy.from_spec(f"llamacpp:{path}")
    speed = Speed(TIMINGS["prompt_per_second"], TIMINGS["predicted_per_second"])
    assert parser.model.speed() == speed and len([r for r in engine.requests if not r.get("stream")]) == 1
    assert parser.timeout_s == speed.timeout(300, 64)
    assert parser.timeout_s == round(MARGIN * (300 / 400 + 64 / 50) + OVERHEAD_S, 1)
    assert policy.timeout_s == speed.timeout(300, 24) < parser.timeout_s  # a shorter answer, a shorter limit
    assert parser.model.timeout_s == parser.timeout_s  # llama.cpp's own generation deadline too
    assert LLMCritiqueParser.from_spec(f"llamacpp:{path}", timeout_s=42).timeout_s == 42  # given: kept
    assert parser.parse("red", context()).require == {"colour": ["red"]}


def test_limits_are_bounded_and_unmeasured_backends_keep_the_default(tmp_path: Path) -> None:
    assert Speed(1.0, 0.01).timeout(300, 64) == 180.0 and Speed(1e6, 1e6).timeout(10, 1) == 3.0
    script = tmp_path / "script.json"
    script.write_text('["{}"]')
    assert LLMCritiqueParser.from_spec(f"fake:{script}").timeout_s == 10.0


def test_shutdown_cancels_running_calls_then_frees_the_servers(fake_server) -> None:
    engine, path = fake_server
    model = llamacpp_chat.LlamaCppChat(model_path=str(path), max_tokens=600)
    errors: list[BaseException] = []

    def ramble() -> None:
        try:
            call_with_timeout(lambda: model.complete([{"role": "user", "content": "ramble"}], []), 30.0)
        except RuntimeError as exc:  # stopped by the shutdown
            errors.append(exc)

    thread = threading.Thread(target=ramble, daemon=True)
    thread.start()
    time.sleep(0.1)
    started = time.perf_counter()
    llamacpp_chat.shutdown()
    assert time.perf_counter() - started < 2.0 and engine.stopped_early == 1
    thread.join(2.0)
    assert "the call was abandoned" in str(errors[0])
    assert llamacpp_chat._SERVERS == {}
    with pytest.raises(llamacpp_chat.ModelShutDown):
        model.complete([{"role": "user", "content": "red"}], [])


# -- the start-up check ------------------------------------------------------------------------------------


@pytest.fixture
def searcher(shapes_catalog) -> CatalogSearch:
    return CatalogSearch.open(*shapes_catalog, "fake")


def test_a_text_only_model_leaves_the_image_reader_offline_said_once_at_start(shapes_catalog, searcher,
                                                                             fake_server) -> None:
    engine, path = fake_server
    spec = f"llamacpp:{path}"
    dm = DialogueManager(shapes_catalog[0], searcher, parser=LLMCritiqueParser.from_spec(spec),
                         reader=LLMImageReader.from_spec(spec), k=3)
    lines = check_llm_stages(dm)
    assert lines[0].startswith(f"critique parser: llm:{spec}, time limit ")
    assert "measured 400 prompt / 50.0 reply tokens/s" in lines[0]
    assert lines[1] == f"image reader: stays offline (llm:{spec} takes text only; pictures are read by the offline reader)"
    assert dm.model_reader is None  # the offline reader now, for every turn
    session = dm.start()
    reply = dm.respond(session, Message("", images=(Image.new("RGB", (32, 32), "red"),)))
    assert not any(f.startswith("reader") for f in reply.fallbacks)  # no per-turn fallback


def test_a_model_that_may_take_images_keeps_the_llm_reader(shapes_catalog, searcher) -> None:
    reader = LLMImageReader(ScriptedChatModel(responses=["{}"]), spec="fake")
    policy = LLMPolicy(ScriptedChatModel(responses=["{}"]), spec="fake")
    dm = DialogueManager(shapes_catalog[0], searcher, reader=reader, policy=policy, k=3)
    assert check_llm_stages(dm) == ["policy: llm:fake, time limit 10.0 s", "image reader: llm:fake, time limit 30.0 s"]
    assert dm.model_reader is reader
    assert check_llm_stages(DialogueManager(shapes_catalog[0], searcher, k=3)) == []  # no LLM: nothing said


def test_crs_chat_says_once_at_start_which_stages_the_model_serves(monkeypatch, capsys, shapes_catalog,
                                                                    fake_server) -> None:
    from tests.test_chat_cli import chat

    engine, path = fake_server
    store, _ = shapes_catalog
    code, out, err = chat(monkeypatch, capsys, store, "a red star\nsomething flat\n", "--llm", f"llamacpp:{path}",
                          "--json")
    assert code == 0, err
    assert err.count("LLM image reader: stays offline") == 1
    assert err.count("LLM critique parser: llm:llamacpp:") == 1 and "measured 400 prompt" in err
    assert len(out.strip().splitlines()) == 2


def test_the_web_app_checks_the_stages_once_when_it_opens_the_dialogue_manager(caplog, shapes_catalog,
                                                                               fake_server) -> None:
    """The server, like crs chat, leaves the reader offline over a text-only model (said once in
    its log), so picture turns record no per-turn reader fallback."""
    import logging

    from crs.settings import Settings
    from crs.web.services import Services

    _, path = fake_server
    store, _ = shapes_catalog
    services = Services(Settings(db_url=store.url, catalog="shapes", embedder="fake", k=3, llm=f"llamacpp:{path}"))
    with caplog.at_level(logging.INFO, logger="crs.web.services"):
        dm = services.dm
    assert dm.reader is dm.offline_reader and dm.model_reader is None  # the LLM reader was replaced at start
    assert sum("LLM image reader: stays offline" in r.getMessage() for r in caplog.records) == 1


def test_crs_eval_checks_the_stages_once_and_keeps_the_reader_offline(capsys, shapes_catalog, fake_server) -> None:
    """An evaluation's workers assemble the system as crs chat does, start-up check included."""
    from tests.test_eval_cli import crs_eval

    _, path = fake_server
    store, _ = shapes_catalog
    code, out, err = crs_eval(capsys, store, "--llm", f"llamacpp:{path}", "--n", "2", "--max-turns", "2",
                              "--policy", "always-recommend", "--starts", "other-style-image", "--json")
    assert code == 0, err
    assert err.count("LLM image reader: stays offline") == 1 and err.count("LLM critique parser: llm:llamacpp:") == 1
