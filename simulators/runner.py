"""Evaluation runs in the store: start or resume a run, store each conversation as it finishes, summarise.

A run is a row of ``eval_runs`` (its id, its configuration, running or finished); each finished
conversation is a row of ``eval_conversations`` written in one transaction with its turns
(``eval_turns``), by this process only (workers send results back: see
:mod:`simulators.sharding`). So a run killed at any moment, even with kill -9, holds whole
conversations only; started again with the same id, it runs exactly the ones not stored yet.
Since conversation ``i`` depends only on ``(configuration, i)``, the figures of a resumed run equal
those of an uninterrupted one, timing aside. A finished run started again is read back, not run.

Where conversations run (``executor``): ``local``, in this process (one worker) or in worker
processes (:mod:`simulators.sharding`), or ``ray``, in Ray actors on a local or remote cluster
(:mod:`simulators.ray_executor`). Either way results come back here and are stored here, so resume
and the figures do not depend on the executor.

Timing: each stored conversation records the wall time since the previous one was stored (or
since the workers were ready), so a policy's running time (and conversations per second) sums
over every session of a resumed run, with model loading and the lost tail of a killed session
left out.
"""
from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from crs.errors import UserError
from crs.store import Store
from crs.store.models import Catalog, EvalConversation, EvalRun, EvalTurn

from .results import ConversationResult
from .sharding import RunConfig, ShardResult, Task, run_in_process, run_in_processes

log = logging.getLogger(__name__)

# Figures that measure the machine, not the policy: they differ between two runs of one configuration.
TIMING_FIELDS = ("conversations_per_second", "turn_latency_ms")
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")

Progress = Callable[[int, int], None]  # (conversations stored, conversations in the run)
EXECUTORS = ("local", "ray")  # where conversations run: this machine's processes, or a Ray cluster


@dataclass
class RunOutcome:
    run_id: str
    config: RunConfig
    results: dict[str, list[ConversationResult]]  # per policy, in index order
    elapsed_s: dict[str, float]  # per policy: the running time its conversations took
    stored_before: int  # conversations already stored when this call started
    computed: int  # conversations this call ran

    def figures(self) -> list[dict[str, Any]]:
        """One object per policy, in the run's policy order: DESIGN's `crs eval --json` fields,
        SR@5/10/15, and k, seed, run_id."""
        from .metrics import summarize

        out = []
        for policy in self.config.policies:
            summary = summarize(self.results[policy], max_turns=self.config.max_turns, k=self.config.k,
                                elapsed_s=self.elapsed_s[policy] or None)
            out.append({"policy": policy, "simulator": self.config.simulator.kind,
                        "profile": getattr(self.config.simulator, "profile", "critiquing"), **summary,
                        "k": self.config.k, "seed": self.config.seed, "run_id": self.run_id})
        return out


def new_run_id() -> str:
    return f"run-{datetime.utcnow():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def evaluate(store: Store, config: RunConfig, *, run_id: str | None = None, workers: int = 1,
             executor: str = "local", address: str | None = None, progress: Progress | None = None,
             notice: Callable[[str], None] = lambda message: None) -> RunOutcome:
    """Run (or resume, or read back) the evaluation ``run_id`` of ``config`` in ``store``, on
    ``workers`` local processes or, with ``executor="ray"``, Ray actors (on the cluster at
    ``address``, else a local one)."""
    from crs.catalog.demo import open_catalog

    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if executor not in EXECUTORS:
        raise UserError(f"--executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if address and executor != "ray":
        raise UserError("--address names a Ray cluster: give it with --executor ray")
    run_id = run_id or new_run_id()
    if not _RUN_ID.fullmatch(run_id):
        raise UserError(f"--run-id {run_id!r}: use up to 100 letters, digits and . _ : - (starting with a letter "
                        "or digit)")
    url = make_url(store.url)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        if executor == "ray":
            raise UserError("--executor ray needs a database file or server: an in-memory SQLite database is "
                            "private to one process")
        if workers > 1:
            raise UserError("--workers above 1 needs a database file or server: an in-memory SQLite database is "
                            "private to one process")
    catalog = open_catalog(store, config.catalog)  # loads the demo once here, not in every worker
    config = replace(fit_openings(store, catalog, config, notice), catalog_hash=catalog.content_hash, db=store.url)
    begin_run(store, run_id, config, catalog)
    done = stored_tasks(store, run_id)
    todo = [task for task in config.tasks() if task not in done]
    total = len(config.tasks())
    if todo:
        used = min(workers, len(todo))
        where = " on Ray" if executor == "ray" else ""
        notice(f"run {run_id}: " + (f"{len(done)} of {total} conversations already stored, " if done else "")
               + f"running {len(todo)} with {used} worker{'s' if used > 1 else ''}{where} "
               f"(resume with --run-id {run_id})")
        source = _shards(config, todo, workers, executor, address, notice)
        _run(store, run_id, source, len(done), total, progress)
    elif not done:
        raise UserError("nothing to run: n must be at least 1")
    finish_run(store, run_id)
    results, elapsed = load_results(store, run_id, config)
    return RunOutcome(run_id, config, results, elapsed, stored_before=len(done), computed=len(todo))


def fit_openings(store: Store, catalog: Catalog, config: RunConfig, notice: Callable[[str], None]) -> RunConfig:
    """The run's opening mix for what the catalog has. Without pictures, the default mix becomes
    text only, with a notice, so that the run's identity and report name only the openings it
    can have; picture openings asked for with --starts are an error."""
    from crs.catalog_index import has_pictures

    from .targets import text_only_starts

    if has_pictures(store, catalog):
        return config
    try:
        text_only = text_only_starts(dict(config.starts) or None, catalog.name, asked=bool(config.starts))
    except ValueError as exc:
        raise UserError(f"--starts: {exc}") from None
    if text_only is None:
        return config
    notice(f"catalog {catalog.name!r} has no pictures: every conversation opens with text "
           "(the default mix's picture openings need item pictures)")
    return replace(config, starts=tuple(text_only.items()))


Shards = Callable[[Callable[[], None]], Iterator[ShardResult]]  # on_ready -> results as they finish


def _shards(config: RunConfig, todo: list[Task], workers: int, executor: str, address: str | None,
            notice: Callable[[str], None]) -> Shards:
    """Where ``todo`` runs: this process (one local worker), local worker processes, or Ray actors."""
    if executor == "ray":
        from .ray_executor import run_on_ray

        return lambda ready: run_on_ray(config, todo, workers, address=address, on_ready=ready, notice=notice)
    if workers == 1:
        return lambda ready: run_in_process(config, todo, on_ready=ready, notice=notice)
    return lambda ready: run_in_processes(config, todo, workers, on_ready=ready, notice=notice)


def _run(store: Store, run_id: str, shards: Shards, stored: int, total: int, progress: Progress | None) -> None:
    clock = {"last": time.perf_counter()}

    def ready() -> None:  # the running time starts once every worker has its models loaded
        clock["last"] = time.perf_counter()

    source = shards(ready)
    if progress:
        progress(stored, total)
    for shard_result in source:
        now = time.perf_counter()
        wall_s, clock["last"] = now - clock["last"], now
        if store_conversation(store, run_id, shard_result, wall_s):
            stored += 1
        if progress:
            progress(stored, total)


# -- the tables ------------------------------------------------------------------------------------------


def begin_run(store: Store, run_id: str, config: RunConfig, catalog: Catalog) -> None:
    """Create the run, or check that the stored one has the same configuration."""
    wanted = config.identity()
    with store.transaction() as db:
        run = db.get(EvalRun, run_id)
        if run is None:
            db.add(EvalRun(id=run_id, catalog_id=catalog.id, config=wanted, status="running"))
            return
        differences = config_differences(run.config, wanted)
        if differences:
            raise UserError(f"run {run_id!r} exists with other settings ({'; '.join(differences)}): give the same "
                            "settings to resume it, or another --run-id")


def config_differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """'name: stored X, now Y' for each setting that differs (nested simulator settings by dotted name)."""
    out = []
    for name in sorted(set(stored) | set(wanted)):
        old, new = stored.get(name), wanted.get(name)
        if isinstance(old, dict) and isinstance(new, dict):
            out += [f"{name}.{d}" for d in config_differences(old, new)]
        elif old != new:
            what = "the catalog's content changed since" if name == "catalog_hash" else f"stored {old!r}, now {new!r}"
            out.append(f"{name}: {what}")
    return out


def stored_tasks(store: Store, run_id: str) -> set[Task]:
    with store.session() as db:
        rows = db.execute(select(EvalConversation.policy, EvalConversation.conversation_index)
                          .where(EvalConversation.run_id == run_id))
        return {(policy, index) for policy, index in rows}


def store_conversation(store: Store, run_id: str, shard_result: ShardResult, wall_s: float) -> bool:
    """Store one conversation and its turns atomically; False if it was stored already (by a
    second process running the same run id), in which case the stored one is kept."""
    policy, index = shard_result.task
    result = shard_result.result
    data = result.to_json()
    turns = data.pop("turns")
    try:
        with store.transaction() as db:
            row = EvalConversation(
                run_id=run_id, policy=policy, conversation_index=index, plan=shard_result.plan, result=data,
                target_id=result.target_id, start=result.start, success=result.success,
                success_turn=result.success_turn, turn_count=len(result.turns), questions=result.questions,
                wall_s=wall_s)
            db.add(row)
            db.flush()  # the row's id, for its turns
            db.add_all([EvalTurn(conversation_id=row.id, number=t["number"], action=t["action"],
                                 leaked=bool(t["leaked"]), latency_ms=float(t["latency_ms"]), data=t) for t in turns])
            run = db.get(EvalRun, run_id)
            if run is not None:
                run.updated_at = datetime.utcnow()
    except IntegrityError:
        log.warning("run %s: conversation %s/%d was already stored; keeping the stored one", run_id, policy, index)
        return False
    return True


def finish_run(store: Store, run_id: str) -> None:
    with store.transaction() as db:
        run = db.get(EvalRun, run_id)
        if run is not None and run.status != "finished":
            run.status, run.updated_at = "finished", datetime.utcnow()


def load_results(store: Store, run_id: str, config: RunConfig
                 ) -> tuple[dict[str, list[ConversationResult]], dict[str, float]]:
    """Every stored conversation of the run, per policy in index order, and each policy's running time."""
    results: dict[str, list[ConversationResult]] = {policy: [] for policy in config.policies}
    elapsed = {policy: 0.0 for policy in config.policies}
    with store.session() as db:
        rows = db.scalars(select(EvalConversation).where(EvalConversation.run_id == run_id)
                          .order_by(EvalConversation.policy, EvalConversation.conversation_index)).all()
        turns: dict[int, list[dict[str, Any]]] = {}
        for conversation_id, data in db.execute(
                select(EvalTurn.conversation_id, EvalTurn.data)
                .join(EvalConversation, EvalConversation.id == EvalTurn.conversation_id)
                .where(EvalConversation.run_id == run_id).order_by(EvalTurn.conversation_id, EvalTurn.number)):
            turns.setdefault(conversation_id, []).append(data)
    for row in rows:
        if row.policy not in results:  # cannot happen while begin_run checks the policies; never silently mix
            raise RuntimeError(f"run {run_id}: stored conversation of policy {row.policy!r} not in its configuration")
        results[row.policy].append(ConversationResult.from_json({**row.result, "turns": turns.get(row.id, [])}))
        elapsed[row.policy] += row.wall_s
    for policy, stored in results.items():
        if [r.index for r in stored] != list(range(config.n)):
            raise RuntimeError(f"run {run_id}: policy {policy} has {len(stored)} of {config.n} conversations stored")
    return results, elapsed
