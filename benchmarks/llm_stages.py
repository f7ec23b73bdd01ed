"""The LLM stages against the rules, per backend and model, in one run: fallback rate, accuracy,
latency and tokens per stage.

    python benchmarks/llm_stages.py --llm llamacpp:PATH.gguf [--llm SPEC ...] [--catalog demo|films|all]
                                    [--limit N] [--timeout S] [--json]

For every case of ``tests/fixtures/understanding/*.jsonl`` (the first ``--limit`` per catalog,
spread over the groups as ``benchmarks/llm_parser.py`` does):

- **parser**: the offline parser (the rules, the product's default) and, per ``--llm``, the LLM
  critique parser read the message; exact-intent accuracy as in ``benchmarks/understanding.py``.
  A fallback (an LLMError: a timeout, an unusable reply) counts as a miss.
- **policy**: the case's rule reading becomes a belief (the items that have every required value
  are the candidates, the named attributes settled); the LLM policy decides ask-or-recommend and
  is compared with the EIG policy (the default) on the same context: "agrees" is the same action
  and, for an ask, the same attribute. There is no ground truth for a policy: agreement says how
  often the LLM would change what the product does, not who is right.
- **reader**: run only where the backend takes images (the start-up check,
  :func:`crs.llm.startup.takes_images`); a text-only model's reader stays offline. Its prompt's
  text is counted in the model's tokens either way, for the longest prompt a picture can get.

Each stage runs with the time limit it gets in the product (from the speed the backend measured
when the model loaded) unless ``--timeout`` sets one. Tokens are the backend's counts (prompt and
reply, per call). Every LLM call is also logged as schema-valid or not (``crs.llm.calls``).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from llm_parser import case_context, percentile, spread  # noqa: E402
from understanding import (CATALOGS, Case, _LazySearcher, differences, load_cases, open_catalog,  # noqa: E402
                           store_items)

PROMPT_TARGET = 300  # tokens per stage prompt (issue 18)
MAX_CANDIDATES = 200


@dataclass
class Calls:
    """One stage's calls: outcome, seconds and token counts per call."""

    ok: list[bool] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    completion_tokens: list[int] = field(default_factory=list)

    def add(self, ok: bool, fallback: str | None, seconds: float, usage: dict[str, Any] | None = None) -> None:
        self.ok.append(ok)
        if fallback:
            self.fallbacks.append(fallback)
        self.seconds.append(seconds)
        if usage is not None:
            self.prompt_tokens.append(sum(u.get("input_tokens", 0) for u in usage.values()))
            self.completion_tokens.append(sum(u.get("output_tokens", 0) for u in usage.values()))

    def summary(self) -> dict[str, Any]:
        n = len(self.ok)
        reasons = Counter(r.split(":")[0] if not r.startswith("field") else " ".join(r.split()[:2])
                          for r in self.fallbacks)
        out: dict[str, Any] = {
            "n": n, "score": round(sum(self.ok) / n, 4) if n else None,
            "fallback_rate": round(len(self.fallbacks) / n, 4) if n else None,
            "fallback_reasons": dict(reasons.most_common()),
            "latency_p50_s": round(percentile(self.seconds, 0.5), 3),
            "latency_p95_s": round(percentile(self.seconds, 0.95), 3)}
        if self.prompt_tokens:
            out |= {"prompt_tokens_p50": round(percentile(self.prompt_tokens, 0.5)),
                    "prompt_tokens_max": max(self.prompt_tokens),
                    "prompt_over_target": round(sum(t >= PROMPT_TARGET for t in self.prompt_tokens)
                                                / len(self.prompt_tokens), 4),
                    "completion_tokens_p50": round(percentile(self.completion_tokens, 0.5)),
                    "completion_tokens_max": max(self.completion_tokens)}
        return out


def candidates_for(facts: Any, require: dict[str, list[str]]) -> Any:
    """The belief a rule reading implies: the items with every required value (all items when
    none has them), uniform, at most MAX_CANDIDATES."""
    from crs.policy import Candidates

    mask = np.ones(len(facts.ids), dtype=bool)
    for name, values in require.items():
        info = facts.attributes.get(name)
        if info is None or info.kind == "numeric":
            continue
        mask &= facts.has_value(name, values, facts.ids)
    ids = facts.ids[mask] if mask.any() else facts.ids
    ids = ids[:MAX_CANDIDATES]
    return Candidates(ids, np.zeros(len(ids)), np.full(len(ids), 1.0 / len(ids)))


def same_decision(a: Any, b: Any) -> bool:
    return type(a) is type(b) and getattr(a, "attribute", None) == getattr(b, "attribute", None)


def run_catalog(cases: list[Case], name: str, store: Any, llms: list[str], timeout_s: float | None,
                report: dict[str, Any]) -> None:
    from langchain_core.callbacks import get_usage_metadata_callback

    from crs.facts import CatalogFacts
    from crs.llm.parser import LLMCritiqueParser
    from crs.llm.policy import LLMPolicy
    from crs.llm.reader import LLMImageReader
    from crs.llm.startup import takes_images
    from crs.llm.structured import LLMError
    from crs.policy import PolicyContext, load_policy
    from crs.understanding import PARSERS
    from crs.understanding.parser import ParseContext

    catalog = open_catalog(store, name)
    facts = CatalogFacts.load(store, catalog)
    items = store_items(store, catalog)
    rules = PARSERS.create("offline", facts=facts, searcher=_LazySearcher(store, catalog), llm=None)
    eig = load_policy("eig")
    contexts = []
    if cases:  # the first call loads the text encoder: not a parse's latency
        rules.parse(cases[0].text, ParseContext(facts=facts))
    rule_calls = report.setdefault("rules", {}).setdefault("parser", Calls())
    for case in cases:
        context = case_context(case, facts, items)
        started = time.perf_counter()
        critique = rules.parse(case.text, context)
        rule_calls.add(not differences(case.expect, critique), None, time.perf_counter() - started)
        settled = frozenset(critique.require) | frozenset(critique.dont_care)
        policy_context = PolicyContext(facts, candidates_for(facts, critique.require),
                                       settled=settled, turn=2, summary=_summary(critique))
        contexts.append((case, context, policy_context, eig.decide(policy_context)))
    for llm in llms:
        stages = report.setdefault(llm, {})
        parser = LLMCritiqueParser.from_spec(llm, timeout_s=timeout_s)
        policy = LLMPolicy.from_spec(llm, timeout_s=timeout_s)
        stages.setdefault("limits", {"parser": parser.timeout_s, "policy": policy.timeout_s})
        reader = LLMImageReader.from_spec(llm, timeout_s=timeout_s)
        stages.setdefault("reader_prompt_tokens", {})[name] = reader_prompt_tokens(reader, facts)
        if not takes_images(reader.model):
            stages["reader"] = "stays offline: the backend takes text only"
        parsed, decided = stages.setdefault("parser", Calls()), stages.setdefault("policy", Calls())
        for case, context, policy_context, default in contexts:
            started = time.perf_counter()
            with get_usage_metadata_callback() as usage:
                try:
                    critique = parser.parse(case.text, context)
                    fallback, ok = None, not differences(case.expect, critique)
                except LLMError as exc:
                    fallback, ok = str(exc), False
            parsed.add(ok, fallback, time.perf_counter() - started, dict(usage.usage_metadata))
            if not policy.questions(policy_context) or len(policy_context.candidates) == 0:
                continue  # the model is not consulted: nothing to decide
            started = time.perf_counter()
            with get_usage_metadata_callback() as usage:
                try:
                    fallback, ok = None, same_decision(policy.decide(policy_context), default)
                except LLMError as exc:
                    fallback, ok = str(exc), False
            decided.add(ok, fallback, time.perf_counter() - started, dict(usage.usage_metadata))


def reader_prompt_tokens(reader: Any, facts: Any) -> int | None:
    """The image reader's prompt text in the model's tokens (the picture's own tokens aside: they
    depend on the vision encoder), for the longest prompt a picture can get: each large vocabulary
    offering its longest values. None where the backend does not report token counts."""
    from langchain_core.callbacks import get_usage_metadata_callback

    from crs.llm.reader import fitted_prompt
    from crs.understanding.reader import LIKELY_VALUES, ReadContext

    longest = {info.name: sorted(info.values, key=len, reverse=True)[:LIKELY_VALUES] for info in facts.askable()}
    values, _ = fitted_prompt(reader.prompt, ReadContext(facts, longest))
    model = reader.model.model_copy(update={"max_tokens": 1}) if hasattr(reader.model, "model_copy") else reader.model
    with get_usage_metadata_callback() as usage:
        model.invoke(reader.prompt.messages(**values))
    counts = [u.get("input_tokens", 0) for u in usage.usage_metadata.values()]
    return sum(counts) or None


def _summary(critique: Any) -> str:
    parts = [f"{name}: {', '.join(values)}" for name, values in critique.require.items()]
    parts += [f"not {name}: {', '.join(values)}" for name, values in critique.exclude.items()]
    return "; ".join(parts) or "nothing yet"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm", action="append", required=True, help="an --llm setting (repeat to compare)")
    parser.add_argument("--catalog", default="all", choices=[*CATALOGS, "all"])
    parser.add_argument("--limit", type=int, default=None, help="at most N messages per catalog, across groups")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per call (default: each stage's limit from the measured speed)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    validity = ValidityCount()
    logging.getLogger("crs.llm.calls").addHandler(validity)
    logging.getLogger("crs.llm.calls").setLevel(logging.INFO)
    logging.getLogger("crs.llm.calls").propagate = False  # counted, not printed
    cases = spread(load_cases(args.catalog), args.limit)
    from crs.store import open_store

    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CATALOGS:
            mine = [c for c in cases if c.catalog == name]
            if mine:
                store = open_store(f"sqlite:///{Path(tmp) / f'{name}.db'}")
                run_catalog(mine, name, store, args.llm, args.timeout, report)
    summary = {source: {stage: calls.summary() if isinstance(calls, Calls) else calls
                        for stage, calls in stages.items()} for source, stages in report.items()}
    summary["schema_valid_replies"] = validity.counts
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return 0
    print(f"{len(cases)} messages ({', '.join(f'{c}: {sum(x.catalog == c for x in cases)}' for c in CATALOGS)})")
    print(f"{'source':<44} {'stage':<7} {'n':>4} {'score':>7} {'fallback':>9} {'p50 s':>7} {'p95 s':>7} "
          f"{'prompt tok p50/max':>18} {'reply tok p50/max':>17}")
    for source, stages in summary.items():
        if source == "schema_valid_replies":
            continue
        for stage, s in stages.items():
            if stage in ("limits", "reader_prompt_tokens"):
                continue
            label = source if len(source) <= 44 else "..." + source[-41:]
            if isinstance(s, str):
                print(f"{label:<44} {stage:<7} {s}")
                continue
            tokens = (f"{s['prompt_tokens_p50']}/{s['prompt_tokens_max']}", f"{s['completion_tokens_p50']}/"
                      f"{s['completion_tokens_max']}") if s.get("prompt_tokens_max") else ("-", "-")
            print(f"{label:<44} {stage:<7} {s['n']:>4} {s['score']:>7.1%} {s['fallback_rate']:>9.1%} "
                  f"{s['latency_p50_s']:>7} {s['latency_p95_s']:>7} {tokens[0]:>18} {tokens[1]:>17}")
            if s["fallback_reasons"]:
                print(f"{'':<44} {'':<7} fallbacks: {s['fallback_reasons']}")
            if s.get("prompt_over_target"):
                print(f"{'':<44} {'':<7} prompts of {PROMPT_TARGET}+ tokens: {s['prompt_over_target']:.0%}")
        if "limits" in stages:
            print(f"{'':<44} limits: {stages['limits']}")
        if stages.get("reader_prompt_tokens"):
            print(f"{'':<44} image reader prompt tokens, longest (text only), per catalog: "
                  f"{stages['reader_prompt_tokens']}")
    print("score: exact intent (parser), agreement with EIG (policy); replies by outcome:", validity.counts)
    return 0


class ValidityCount(logging.Handler):
    """Counts the ``crs.llm.calls`` lines by outcome (valid / invalid / failed)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        stage = message.split()[0].removeprefix("stage=")
        outcome = message.split()[1].removeprefix("outcome=")
        self.counts[f"{stage} {outcome}"] += 1


if __name__ == "__main__":
    raise SystemExit(main())
