"""The evaluation runner on the shapes catalog: stored runs, reproducibility, workers, resume in
process, config mismatch, --compare on identical plans, and the throughput benchmark's smoke run.

Helpers here (``run_config``, ``comparable``) are shared by test_eval_cli and test_eval_resume.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import func, select

from crs.errors import UserError
from crs.policy import BASELINES
from crs.store import open_store
from crs.store.models import ChatSession, EvalConversation, EvalRun, EvalTurn
from simulators.results import ConversationResult
from simulators.runner import TIMING_FIELDS, evaluate
from simulators.sharding import RunConfig, run_shard
from tests.benchmark_support import load_benchmark

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_throughput.py"


def run_config(**overrides: Any) -> RunConfig:
    from simulators.conversation import SimulatorSpec

    settings: dict[str, Any] = {"policies": ("eig",), "simulator": SimulatorSpec(kind="agenda"), "n": 6,
                                "max_turns": 5, "k": 3, "seed": 1, "catalog": "shapes", "embedder": "fake"}
    settings.update(overrides)
    return RunConfig(**settings)


def comparable(figures: dict[str, Any]) -> dict[str, Any]:
    """A policy's figures without what measures the machine (and without the run's name)."""
    return {k: v for k, v in figures.items() if k not in (*TIMING_FIELDS, "run_id")}


def without_latency(result: ConversationResult) -> dict[str, Any]:
    data = result.to_json()
    for turn in data["turns"]:
        turn.pop("latency_ms")
    return data


def count(store, model, *where) -> int:  # type: ignore[no-untyped-def]
    with store.session() as db:
        return int(db.scalar(select(func.count()).select_from(model).where(*where)))


def test_a_run_is_stored_reproducible_and_read_back_when_finished(shapes_catalog) -> None:
    store, _ = shapes_catalog
    config = run_config()
    first = evaluate(store, config, run_id="a")
    assert (first.stored_before, first.computed) == (0, config.n)
    figures = first.figures()
    assert len(figures) == 1 and figures[0]["policy"] == "eig" and figures[0]["n"] == config.n
    assert figures[0]["run_id"] == "a" and figures[0]["seed"] == 1 and figures[0]["k"] == 3
    # Stored: the run (finished, with its settings), n conversations with every turn, and the
    # dialogue manager's own sessions (the web app's code path).
    with store.session() as db:
        run = db.get(EvalRun, "a")
        assert run is not None and run.status == "finished" and run.config == first.config.identity()
    assert count(store, EvalConversation, EvalConversation.run_id == "a") == config.n
    turns = sum(len(r.turns) for r in first.results["eig"])
    assert turns >= config.n and count(store, EvalTurn) == turns
    assert count(store, ChatSession) == config.n

    again = evaluate(store, config, run_id="b")  # same seed, another run: the same figures
    assert comparable(again.figures()[0]) == comparable(figures[0])
    assert [without_latency(r) for r in again.results["eig"]] == [without_latency(r) for r in first.results["eig"]]

    reread = evaluate(store, config, run_id="a")  # finished: read back, nothing run
    assert (reread.stored_before, reread.computed) == (config.n, 0)
    assert reread.figures() == figures  # timing included: it is the stored run's
    assert count(store, ChatSession) == 2 * config.n

    other_seed = evaluate(store, run_config(seed=2), run_id="c")
    assert [r.target_id for r in other_seed.results["eig"]] != [r.target_id for r in first.results["eig"]]


def test_a_run_with_other_settings_under_the_same_id_is_refused(shapes_catalog) -> None:
    store, _ = shapes_catalog
    evaluate(store, run_config(n=3), run_id="x")
    with pytest.raises(UserError, match=r"run 'x' exists with other settings \(n: stored 3, now 4\)"):
        evaluate(store, run_config(n=4), run_id="x")
    with pytest.raises(UserError, match=r"max_turns: stored 5, now 6.*seed: stored 1, now 9"):
        evaluate(store, run_config(n=3, max_turns=6, seed=9), run_id="x")
    from simulators.conversation import SimulatorSpec

    noisy = dataclasses.replace(SimulatorSpec(kind="agenda"), wrong_rate=0.5)
    with pytest.raises(UserError, match=r"simulator\.wrong_rate"):
        evaluate(store, run_config(n=3, simulator=noisy), run_id="x")
    assert count(store, EvalConversation) == 3  # nothing was run for the refused ones
    with pytest.raises(UserError, match="--run-id"):
        evaluate(store, run_config(n=3), run_id="no spaces please")
    with pytest.raises(UserError, match="in-memory SQLite database is private"):
        evaluate(open_store("sqlite://"), run_config(n=3), workers=2)


def test_an_interrupted_run_resumes_without_recomputing_or_duplicating(shapes_catalog) -> None:
    store, _ = shapes_catalog
    config = run_config(n=8)

    class Stop(Exception):
        pass

    def stop_after_three(stored: int, total: int) -> None:
        if stored >= 3:
            raise Stop

    with pytest.raises(Stop):
        evaluate(store, config, run_id="r", progress=stop_after_three)
    with store.session() as db:
        assert db.get(EvalRun, "r").status == "running"
        before = {row.conversation_index: (row.id, row.created_at, row.result)
                  for row in db.scalars(select(EvalConversation).where(EvalConversation.run_id == "r"))}
    assert len(before) == 3
    resumed = evaluate(store, config, run_id="r")
    assert (resumed.stored_before, resumed.computed) == (3, 5)
    with store.session() as db:
        rows = db.scalars(select(EvalConversation).where(EvalConversation.run_id == "r")).all()
        assert sorted(r.conversation_index for r in rows) == list(range(8))
        assert {r.conversation_index: (r.id, r.created_at, r.result) for r in rows
                if r.conversation_index in before} == before  # the stored three were not touched
        assert db.get(EvalRun, "r").status == "finished"
    straight = evaluate(store, config, run_id="straight")
    assert comparable(resumed.figures()[0]) == comparable(straight.figures()[0])


def test_two_workers_give_the_same_conversations_as_one(shapes_catalog) -> None:
    store, _ = shapes_catalog
    config = run_config(n=6, policies=("eig", "random-ask"))
    one = evaluate(store, config, run_id="w1", workers=1)
    two = evaluate(store, config, run_id="w2", workers=2)
    assert two.computed == 12
    for policy in config.policies:
        assert [without_latency(r) for r in two.results[policy]] == [without_latency(r) for r in one.results[policy]]
    assert [comparable(f) for f in two.figures()] == [comparable(f) for f in one.figures()]
    assert all(f["conversations_per_second"] > 0 for f in two.figures())
    # The pure sharding function (what a cluster engine would call) agrees, in any order of tasks.
    shard = run_shard(one.config, [("random-ask", 4), ("eig", 0)])
    assert [s.task for s in shard] == [("random-ask", 4), ("eig", 0)]
    assert [without_latency(s.result) for s in shard] == [without_latency(one.results["random-ask"][4]),
                                                          without_latency(one.results["eig"][0])]


def test_compare_runs_every_baseline_on_the_same_plans(shapes_catalog) -> None:
    store, _ = shapes_catalog
    policies = ("eig", *BASELINES)
    outcome = evaluate(store, run_config(n=5, policies=policies), run_id="cmp")
    assert [f["policy"] for f in outcome.figures()] == list(policies)
    targets = {p: [(r.index, r.target_id, r.start) for r in outcome.results[p]] for p in policies}
    assert all(targets[p] == targets["eig"] for p in policies)
    with store.session() as db:
        plans = {}
        for row in db.scalars(select(EvalConversation).where(EvalConversation.run_id == "cmp")):
            plans.setdefault(row.conversation_index, set()).add(repr(sorted(row.plan.items())))
    assert len(plans) == 5 and all(len(p) == 1 for p in plans.values())  # one plan per index for all policies
    # The policies do behave differently: always-recommend never asks, ask-3 asks.
    questions = {f["policy"]: f["questions_per_conversation"] for f in outcome.figures()}
    assert questions["always-recommend"] == 0 and questions["ask-3"] > 0


def load_bench() -> ModuleType:
    return load_benchmark(BENCH)


def test_the_throughput_benchmark_runs_on_the_shapes_catalog(shapes_catalog) -> None:
    store, _ = shapes_catalog
    bench = load_bench()
    result = bench.run_benchmark(store, catalog="shapes", embedder="fake", n=4, max_turns=4, workers=(1, 2))
    assert [row["workers"] for row in result["rows"]] == [1, 2]
    for row in result["rows"]:
        assert row["conversations_per_second"] > 0 and row["same_figures_as_first"]
        assert 0 < row["turn_latency_ms"]["p50"] <= row["turn_latency_ms"]["p95"]
        assert row["setup_s"] > 0 and row["running_s"] > 0
    writes = result["rows"][0]["store_writes"]
    assert writes["turns"] == result["rows"][0]["turns"] and 0 < writes["share_of_turn_time"] < 1
    table = bench.format_table(result)
    assert "conv/s" in table and "store writes" in table and "target >= 10" in table
