"""The LLM critique parser on the paraphrase set: accuracy, fallback rate, latency, prompt size.

    python benchmarks/llm_parser.py --llm llamacpp:PATH.gguf [--catalog demo|films|all]
                                    [--limit N] [--timeout S] [--encoder] [--json] [--misses]

Every case of ``tests/fixtures/understanding/*.jsonl`` (the first ``--limit`` per catalog, taken
evenly across groups) is parsed by :class:`~crs.llm.parser.LLMCritiqueParser` over the model the
``--llm`` setting names, with the compact prompt and the JSON schema the backend can constrain
decoding to. A turn whose answer is unusable (an :class:`~crs.llm.structured.LLMError`: no JSON,
a value outside the schema, a timeout) is a fallback: the dialogue manager would read it with the
rules, and here it counts as a miss. Reported: exact-intent accuracy (the comparison of
``benchmarks/understanding.py``), fallback rate with the reasons, latency per message (p50/p95)
and prompt tokens (as the backend counted them; else characters / 4, marked ``~``).
``--encoder`` also finds relevant values with the default text encoder (MiniLM, offline).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from understanding import CATALOGS, Case, differences, load_cases, open_catalog, store_items  # noqa: E402


def spread(cases: list[Case], limit: int | None) -> list[Case]:
    """Up to ``limit`` cases per catalog, round-robin over the groups so every kind of phrase is in."""
    if limit is None:
        return cases
    out = []
    for catalog in CATALOGS:
        groups: dict[str, list[Case]] = {}
        for case in cases:
            if case.catalog == catalog:
                groups.setdefault(case.group, []).append(case)
        picked: list[Case] = []
        while len(picked) < limit and any(groups.values()):
            for rows in groups.values():
                if rows and len(picked) < limit:
                    picked.append(rows.pop(0))
        out += picked
    return out


def run_catalog(cases: list[Case], name: str, store: Any, llm: str, *, timeout_s: float,
                encoder: bool) -> list[dict[str, Any]]:
    from langchain_core.callbacks import get_usage_metadata_callback

    from crs.facts import CatalogFacts
    from crs.llm.parser import LLMCritiqueParser
    from crs.llm.structured import LLMError

    catalog = open_catalog(store, name)
    facts = CatalogFacts.load(store, catalog)
    items = store_items(store, catalog)
    encode = None
    if encoder:
        from retrieval.embedder import DEFAULT_EMBEDDER, load_embedder

        encode = load_embedder(DEFAULT_EMBEDDER).encode_texts
    parser = LLMCritiqueParser.from_spec(llm, timeout_s=timeout_s, encode=encode)
    rows = []
    for case in cases:
        context = case_context(case, facts, items)
        messages, _ = parser.request(case.text, context)
        chars = sum(len(str(m.content)) for m in messages)
        started = time.perf_counter()
        with get_usage_metadata_callback() as usage:
            try:
                critique = parser.parse(case.text, context)
                fallback, diffs = None, differences(case.expect, critique)
            except LLMError as exc:
                fallback, diffs = str(exc), ["fallback"]
        seconds = time.perf_counter() - started
        counted = sum(u.get("input_tokens", 0) for u in usage.usage_metadata.values())
        rows.append({"id": case.id, "group": case.group, "text": case.text, "ok": not diffs, "diffs": diffs,
                     "fallback": fallback, "seconds": round(seconds, 3),
                     "prompt_tokens": counted or None, "prompt_chars": chars})
    return rows


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [r["seconds"] for r in rows]
    counted = [r["prompt_tokens"] for r in rows if r["prompt_tokens"]]
    tokens = counted if len(counted) == len(rows) else [r["prompt_chars"] / 4 for r in rows]
    fallbacks = [r["fallback"] for r in rows if r["fallback"]]
    reasons = Counter(reason.split(":")[0] if not reason.startswith("field") else " ".join(reason.split()[:2])
                      for reason in fallbacks)
    return {"n": len(rows), "accuracy": round(sum(r["ok"] for r in rows) / len(rows), 4) if rows else None,
            "fallback_rate": round(len(fallbacks) / len(rows), 4) if rows else None,
            "fallback_reasons": dict(reasons.most_common()),
            "latency_p50_s": round(percentile(seconds, 0.5), 2), "latency_p95_s": round(percentile(seconds, 0.95), 2),
            "prompt_tokens_p50": round(percentile(tokens, 0.5)), "prompt_tokens_max": round(max(tokens, default=0)),
            "tokens_counted_by": "backend" if len(counted) == len(rows) else "~chars/4"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm", required=True, help="an --llm setting, e.g. llamacpp:/path/model.gguf")
    parser.add_argument("--catalog", default="all", choices=[*CATALOGS, "all"])
    parser.add_argument("--limit", type=int, default=None, help="at most N messages per catalog, across groups")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per message before it falls back")
    parser.add_argument("--encoder", action="store_true", help="also find relevant values with the text encoder")
    parser.add_argument("--misses", action="store_true", help="list the misses and fallbacks")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    cases = spread(load_cases(args.catalog), args.limit)
    from crs.store import open_store

    rows: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CATALOGS:
            mine = [c for c in cases if c.catalog == name]
            if mine:
                store = open_store(f"sqlite:///{Path(tmp) / f'{name}.db'}")
                rows[name] = run_catalog(mine, name, store, args.llm, timeout_s=args.timeout, encoder=args.encoder)
    every = [r for catalog_rows in rows.values() for r in catalog_rows]
    summary = {"llm": args.llm, "encoder": args.encoder, "overall": summarise(every),
               "catalogs": {name: summarise(r) for name, r in rows.items()}}
    if args.json:
        if args.misses:
            summary["misses"] = [r for r in every if not r["ok"]]
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return 0
    print(f"llm {args.llm}" + (" + encoder" if args.encoder else "") + f", {len(every)} messages")
    print(f"{'catalog':<9} {'n':>4} {'exact':>7} {'fallback':>9} {'p50 s':>7} {'p95 s':>7} {'prompt tok p50/max':>19}")
    for name, s in [*summary["catalogs"].items(), ("overall", summary["overall"])]:
        mark = "" if s["tokens_counted_by"] == "backend" else "~"
        print(f"{name:<9} {s['n']:>4} {s['accuracy']:>7.1%} {s['fallback_rate']:>9.1%} {s['latency_p50_s']:>7} "
              f"{s['latency_p95_s']:>7} {mark + str(s['prompt_tokens_p50']) + '/' + str(s['prompt_tokens_max']):>19}")
    if summary["overall"]["fallback_reasons"]:
        print("fallback reasons:", summary["overall"]["fallback_reasons"])
    if args.misses:
        for r in every:
            if not r["ok"]:
                print(f"{r['id']}: {r['text']!r}: {r['fallback'] or '; '.join(r['diffs'])}")
    return 0


def case_context(case: Case, facts: Any, items: dict[str, tuple[int, str]]) -> Any:
    """The parse context of a fixture case: the items it says were shown (numbered as the person saw
    them) and the pending question."""
    from crs.turn import Question
    from crs.understanding.parser import ParseContext, ShownItem

    page = [items[external] for external in case.shown]
    values = facts.values_of([item_id for item_id, _ in page])
    shown = [ShownItem(item_id, title, v) for (item_id, title), v in zip(page, values)]
    question = Question(case.question["attribute"], list(case.question["options"])) if case.question else None
    return ParseContext(facts=facts, shown=shown, question=question)


if __name__ == "__main__":
    raise SystemExit(main())
