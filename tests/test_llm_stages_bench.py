"""benchmarks/llm_stages.py on something tiny: its figures are computed right, and it runs end to
end over a scripted model (no accuracy asserted; the real figures come from a GGUF by hand)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from tests.benchmark_support import load_benchmark
from tests.test_llm import small_facts

bench = load_benchmark("llm_stages.py")


def test_calls_summarise_outcomes_latency_and_tokens_against_the_prompt_target() -> None:
    calls = bench.Calls()
    calls.add(True, None, 1.0, {"m": {"input_tokens": 120, "output_tokens": 10}})
    calls.add(False, "timeout after 3.0 s", 3.0, {"m": {"input_tokens": 310, "output_tokens": 0}})
    calls.add(False, "field colour: 'mauve' is not one of red", 2.0, {"m": {"input_tokens": 200, "output_tokens": 7}})
    s = calls.summary()
    assert s["n"] == 3 and s["score"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["fallback_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["fallback_reasons"] == {"timeout after 3.0 s": 1, "field colour:": 1}
    assert (s["latency_p50_s"], s["latency_p95_s"]) == (2.0, 3.0)
    assert (s["prompt_tokens_p50"], s["prompt_tokens_max"], s["prompt_over_target"]) == (200, 310, 0.3333)
    assert (s["completion_tokens_p50"], s["completion_tokens_max"]) == (7, 10)


def test_a_rule_reading_becomes_the_policy_candidates() -> None:
    facts = small_facts()
    red = bench.candidates_for(facts, {"colour": ["red"]})
    assert red.ids.tolist() == [1, 4] and np.allclose(red.posterior, 0.5)
    assert bench.candidates_for(facts, {"colour": ["mauve"]}).ids.tolist() == facts.ids.tolist()  # none: all


def test_call_outcomes_are_counted_per_stage() -> None:
    counter = bench.ValidityCount()
    log = logging.getLogger("test.calls")
    log.addHandler(counter)
    log.setLevel(logging.INFO)
    log.info("stage=%s outcome=valid seconds=%.2f", "CritiqueAnswer", 0.1)
    log.info("stage=%s outcome=failed seconds=%.2f reason=%s", "PolicyAnswer", 3.0, "timeout")
    assert counter.counts == {"CritiqueAnswer valid": 1, "PolicyAnswer failed": 1}


@pytest.mark.slow  # loads the text encoder for the offline parser
def test_the_benchmark_runs_end_to_end_over_a_scripted_model(tmp_path: Path, capsys) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"by_prompt": ['{"require": {}}', '{"action": "recommend"}', "nonsense"]}))
    assert bench.main(["--llm", f"fake:{script}", "--catalog", "films", "--limit", "3", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["rules"]["parser"]["n"] == 3 and figures[f"fake:{script}"]["parser"]["n"] == 3
    assert set(figures[f"fake:{script}"]) >= {"parser", "policy", "limits"}
    assert sum(figures["schema_valid_replies"].values()) >= 3
