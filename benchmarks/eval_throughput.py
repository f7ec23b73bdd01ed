"""Evaluation throughput: conversations per second and turn latency of `crs eval`, workers 1 and 2 in ONE run.

    python benchmarks/eval_throughput.py [--catalog demo] [--db URL] [--embedder aligned] [--policy eig]
        [--simulator agenda] [--n 100] [--max-turns 10] [--seed 0] [--workers 1 2] [--executors local,ray]
        [--json OUT]

For each executor (``local``: this machine's processes, the default; ``ray``: Ray actors on a local
Ray started once for the benchmark, its start-up reported apart) and each worker count, one fresh
evaluation run of ``--n`` agenda-simulator conversations of at
most ``--max-turns`` turns, through :func:`simulators.runner.evaluate`, the code path of
``crs eval`` (results stored per conversation, the dialogue manager storing its sessions and
turns as in the web app). Reported per worker count: conversations per second (conversations /
running time, model loading excluded and reported apart as setup), turn latency p50 / p95 (one
``DialogueManager.respond``), success rate as a sanity check, and whether every figure except
the timing ones equals the first worker count's (they must: conversation i depends only on the
seed and i), whatever the executor. Target: >= 10 conversations per second on 2 cores.

With one worker (in this process) the dialogue manager's store writes (``DialogueManager._save``:
the session's belief and the turn) are timed too, as a share of the turn time: the cost of keeping
evaluation on the web app's code path.

The store: by default a new SQLite file in a temporary folder into which the catalog is loaded
(the demo: a few seconds), deleted afterwards, so benchmark runs never pile up in your store.
The index cache is ``$CRS_HOME``'s (keyed by the catalog's rows, which a fresh load reproduces).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TARGET_CONVERSATIONS_PER_S = 10.0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def timed_saves() -> Iterator[list[float]]:
    """Time every DialogueManager._save in this process (the store writes of a turn)."""
    from crs.dialogue import DialogueManager

    original = DialogueManager._save
    seconds: list[float] = []

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    DialogueManager._save = save  # type: ignore[method-assign]
    try:
        yield seconds
    finally:
        DialogueManager._save = original  # type: ignore[method-assign]


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def executor_session(executor: str, workers: tuple[int, ...], started: dict[str, float]) -> Iterator[None]:
    """For ``ray``, one local Ray for all of the executor's rows, its start-up time in ``started``
    (not in any row's setup: a cluster that is already running costs nothing per run)."""
    if executor != "ray":
        yield
        return
    from simulators.ray_executor import import_ray, ray_session

    already = import_ray().is_initialized()  # a caller's session (a test's) is used as it is
    begin = time.perf_counter()
    with ray_session(None, max(workers)):
        if not already:
            started["ray"] = time.perf_counter() - begin
        yield


def measure(store: Any, config: Any, executor: str, count: int, reference: dict[str, Any] | None) -> dict[str, Any]:
    """One fresh run of ``config`` on ``count`` workers of ``executor``: its row, and under "figures"
    its figures but the timing ones (the first row's are the reference the others must equal)."""
    from simulators.runner import TIMING_FIELDS, evaluate

    policy = config.policies[0]
    say(f"{executor} workers {count}: {config.n} conversations of at most {config.max_turns} turns")
    run_id = f"bench-{executor}-{count}w-{int(time.time())}"
    in_process = executor == "local" and count == 1
    with timed_saves() if in_process else contextlib.nullcontext([]) as saves:
        started = time.perf_counter()
        outcome = evaluate(store, config, run_id=run_id, workers=count, executor=executor, notice=say)
        wall = time.perf_counter() - started
    figures = outcome.figures()[0]
    running = outcome.elapsed_s[policy]
    comparable = {k: v for k, v in figures.items() if k not in (*TIMING_FIELDS, "run_id")}
    turns = sum(len(r.turns) for r in outcome.results[policy])
    turn_ms = sum(t.latency_ms for r in outcome.results[policy] for t in r.turns)
    row = {"executor": executor, "workers": count, "conversations_per_second": figures["conversations_per_second"],
           "turn_latency_ms": figures["turn_latency_ms"], "success_rate": figures["success_rate"],
           "avg_turns": figures["avg_turns"], "turns": turns, "running_s": running, "setup_s": wall - running,
           "same_figures_as_first": comparable == (reference or comparable), "figures": comparable}
    if saves:
        row["store_writes"] = {"turns": len(saves), "mean_ms": 1e3 * sum(saves) / len(saves),
                               "share_of_turn_time": 1e3 * sum(saves) / max(turn_ms, 1e-9)}
    say(f"  {row['conversations_per_second']:.2f} conversations/s")
    return row


def run_benchmark(store: Any, *, catalog: str = "demo", embedder: str = "aligned", policy: str = "eig",
                  simulator: str = "agenda", n: int = 100, max_turns: int = 10, seed: int = 0,
                  workers: tuple[int, ...] = (1, 2), executors: tuple[str, ...] = ("local",)) -> dict[str, Any]:
    from simulators.conversation import SimulatorSpec
    from simulators.sharding import RunConfig

    config = RunConfig(policies=(policy,), simulator=SimulatorSpec(kind=simulator), n=n, max_turns=max_turns, k=5,
                       seed=seed, catalog=catalog, embedder=embedder)
    rows: list[dict[str, Any]] = []
    reference: dict[str, Any] | None = None
    load_before = os.getloadavg()
    start_up: dict[str, float] = {}
    for executor in executors:
        with executor_session(executor, workers, start_up):
            for count in workers:
                row = measure(store, config, executor, count, reference)
                reference = reference or row.pop("figures")
                row.pop("figures", None)
                rows.append(row)
    return {"catalog": catalog, "embedder": embedder, "policy": policy, "simulator": simulator, "n": n,
            "max_turns": max_turns, "seed": seed, "cores": available_cores(), "rows": rows,
            "ray_start_s": start_up.get("ray"),
            "target_conversations_per_s": TARGET_CONVERSATIONS_PER_S,
            "load_avg": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]}}


def format_table(result: dict[str, Any]) -> str:
    lines = [f"eval throughput on {result['catalog']!r} ({result['embedder']}), policy {result['policy']}, "
             f"{result['simulator']} simulator, n={result['n']}, T={result['max_turns']}, seed {result['seed']}; "
             f"{result['cores']} cores; load average before {result['load_avg']['before']}, "
             f"after {result['load_avg']['after']}",
             "",
             f"{'executor':>8} {'workers':>7} {'conv/s':>8} {'turn p50':>9} {'turn p95':>9} {'turns':>6} {'SR':>6} {'avg turns':>9} "
             f"{'setup s':>8} {'run s':>7}  same figures"]
    for row in result["rows"]:
        latency = row["turn_latency_ms"]
        lines.append(f"{row.get('executor', 'local'):>8} {row['workers']:>7} {row['conversations_per_second']:>8.2f} {latency['p50']:>9.1f} "
                     f"{latency['p95']:>9.1f} {row['turns']:>6} {row['success_rate']:>6.3f} {row['avg_turns']:>9.2f} "
                     f"{row['setup_s']:>8.1f} {row['running_s']:>7.1f}  {'yes' if row['same_figures_as_first'] else 'NO'}")
    for row in result["rows"]:
        if "store_writes" in row:
            writes = row["store_writes"]
            lines.append(f"dialogue manager store writes (workers {row['workers']}, in process): {writes['mean_ms']:.1f} ms per turn, "
                         f"{writes['share_of_turn_time']:.0%} of the turn time")
    if result.get("ray_start_s") is not None:
        lines.append(f"local Ray start-up (once, in no row): {result['ray_start_s']:.1f} s")
    best = max(row["conversations_per_second"] for row in result["rows"])
    lines.append(f"target >= {result['target_conversations_per_s']:g} conversations/s: "
                 f"{'met' if best >= result['target_conversations_per_s'] else 'missed'} (best {best:.2f})")
    return "\n".join(lines)


def executor_list(text: str) -> tuple[str, ...]:
    """``--executors local,ray`` (an argparse ``type=``)."""
    from simulators.runner import EXECUTORS

    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in EXECUTORS]
    if not names or unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected distinct names among {', '.join(EXECUTORS)}, got {text!r}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", default="demo")
    parser.add_argument("--db", help="SQLAlchemy URL of the store (default: a new temporary SQLite file)")
    parser.add_argument("--embedder", default="aligned", help="embedder spec (default: aligned; 'fake' for tests)")
    parser.add_argument("--policy", default="eig")
    parser.add_argument("--simulator", default="agenda", choices=("agenda", "llm"))
    parser.add_argument("--n", type=int, default=100, help="conversations per worker count (default 100)")
    parser.add_argument("--max-turns", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default: 1 2)")
    parser.add_argument("--executors", type=executor_list, default=("local",),
                        help="comma-separated: local (default), ray (needs the ray extra), or local,ray")
    parser.add_argument("--json", help="write every figure to this JSON file")
    args = parser.parse_args(argv)

    from crs.catalog.demo import open_catalog
    from crs.store import open_store

    with contextlib.ExitStack() as stack:
        if args.db:
            url = args.db
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="crs-eval-throughput-"))
            url = f"sqlite:///{Path(folder) / 'bench.db'}"
        store = open_store(url)
        started = time.perf_counter()
        open_catalog(store, args.catalog)
        say(f"store {url}: catalog {args.catalog!r} ready in {time.perf_counter() - started:.1f} s")
        result = run_benchmark(store, catalog=args.catalog, embedder=args.embedder, policy=args.policy,
                               simulator=args.simulator, n=args.n, max_turns=args.max_turns, seed=args.seed,
                               workers=tuple(args.workers), executors=args.executors)
        store.engine.dispose()  # before the temporary folder goes
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
