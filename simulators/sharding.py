"""Running an evaluation's conversations: in this process, or sharded over worker processes.

The unit of work is a :data:`Task`, ``(policy, conversation index)``. Conversation ``i`` depends
only on the run's configuration and ``i`` (its plan is a function of ``(seed, i)``, the dialogue
manager and the simulators are deterministic), so any worker may run any task in any order and
the figures do not change. That makes the sharding a pure function, :func:`run_shard`
``(RunConfig, tasks) -> results``, which a cluster engine can call as it is (``ray.remote(run_shard)``)
or keep a :class:`ShardWorker` per node as an actor, as :mod:`simulators.ray_executor` does for
``crs eval --executor ray``. This module only knows how to *run* tasks; storing results and
resuming runs is :mod:`simulators.runner`'s.

On one machine, :func:`run_in_processes` starts W ``spawn`` processes (not ``fork``: the parent may
already hold torch and OpenMP thread pools, which do not survive a fork), each opening its store,
searcher, simulation world and dialogue managers once. Each worker talks to the parent over its
own pipe; a worker whose parent dies (kill -9) gets end-of-file on that pipe and exits, so no
orphan keeps running. Results go back to the parent, which alone writes the run's tables: SQLite
has one writer at a time, and one writing process with short transactions never waits on
another's retries. (The dialogue managers in the workers still store their chat sessions and
turns, as the web app does; WAL and the store's busy timeout keep those short writes apart.)

Threads: every worker, and this process with ``--workers 1``, runs torch, FAISS and BLAS on ONE
thread each, set both in the environment a worker starts with and at run time
(:func:`retrieval.threads.serve_single_queries`); more cores are used by more workers. A turn is
one small query (MiniLM on a sentence, EfficientNet-Lite0 on one picture), where intra-op threads
gain little and, on a shared machine, lose a lot waiting for each other: one in-process worker on
2 busy cores ran 10.6 and 10.7 conversations/s with 1 torch thread, 2.6 and 8.6 with 2 (turn p95
53-56 ms against 59-516 ms; demo catalog, 60 conversations, alternating runs, 2026-11-23).
"""
from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from crs.errors import UserError

from .conversation import SimulatorSpec
from .results import ConversationResult

if TYPE_CHECKING:
    from crs.dialogue import DialogueManager
    from crs.settings import Settings

    from .targets import ConversationPlan

Task = tuple[str, int]  # (policy name, conversation index)
IN_FLIGHT = 2  # tasks queued per worker: the next is ready while the parent stores the last result
START_TIMEOUT_S = 1800.0  # the first worker may build the catalog's index (minutes on the demo)
TORCH_THREADS = 1  # per worker: see the module docstring
Notice = Callable[[str], None]  # a line for the person running the evaluation


def _silent(message: str) -> None:
    pass


@dataclass(frozen=True)
class RunConfig:
    """Everything a worker needs to run any conversation of a run; picklable."""

    policies: tuple[str, ...]
    simulator: SimulatorSpec
    n: int
    max_turns: int
    k: int
    seed: int
    catalog: str
    embedder: str
    llm: str | None = None  # the system's LLM (policy, critique parser, image reader), as `crs chat --llm`
    catalog_hash: str = ""  # the catalog's content hash when the run started
    db: str = ""  # where workers open the store; not part of the identity (a copied database resumes)
    # The opening mix as (kind, weight) pairs (see simulators.targets); empty: DEFAULT_STARTS.
    starts: tuple[tuple[str, float], ...] = ()
    # Stages named other than by default, as (setting, spec) pairs: ("parser", "fake:s.json"), ...
    stages: tuple[tuple[str, str], ...] = ()

    def start_weights(self) -> dict[str, float]:
        from .targets import DEFAULT_STARTS, start_weights

        return start_weights(dict(self.starts) if self.starts else DEFAULT_STARTS)

    def identity(self) -> dict[str, Any]:
        """The settings a run's figures depend on, as stored with the run and compared on resume."""
        return {"policies": list(self.policies), "simulator": _spec_json(self.simulator), "n": self.n,
                "max_turns": self.max_turns, "k": self.k, "seed": self.seed, "catalog": self.catalog,
                "catalog_hash": self.catalog_hash, "embedder": self.embedder, "llm": self.llm,
                "starts": self.start_weights(),
                # Only when set, so runs stored before stages were selectable keep their identity.
                **({"stages": dict(self.stages)} if self.stages else {})}

    def settings(self) -> Settings:
        """The system's settings for this run (crs.settings), from which every worker assembles it."""
        from crs.settings import Settings

        return Settings(db_url=self.db or None, catalog=self.catalog, embedder=self.embedder, llm=self.llm, k=self.k,
                        **dict(self.stages))

    def tasks(self) -> list[Task]:
        """Every task of the run, policy by policy (so each policy's throughput is timed on its own)."""
        return [(policy, index) for policy in self.policies for index in range(self.n)]


def _spec_json(spec: SimulatorSpec) -> dict[str, Any]:
    data = dataclasses.asdict(spec) if dataclasses.is_dataclass(spec) else dict(vars(spec))
    return data


@dataclass(frozen=True)
class ShardResult:
    task: Task
    plan: dict[str, Any]  # the ConversationPlan, as JSON
    result: ConversationResult


class ShardWorker:
    """One process's (or one cluster actor's) open resources: store, catalog, searcher, world, plans,
    and a dialogue manager per policy, all built once and reused for every task."""

    def __init__(self, config: RunConfig) -> None:
        from crs import assemble

        from .world import SimulationWorld

        self.config = config
        self.settings = config.settings()
        self.store = assemble.open_settings_store(self.settings)
        self.catalog = assemble.open_settings_catalog(self.store, self.settings)
        if config.catalog_hash and self.catalog.content_hash != config.catalog_hash:
            raise UserError(f"catalog {config.catalog!r} changed while the run was being set up; start it again")
        self.searcher = assemble.open_searcher(self.store, self.catalog, self.settings)
        self._dms: dict[str, DialogueManager] = {}
        self.llm_stages: list[str] = []  # what the LLM start-up check said (crs.llm.startup), for the parent
        self.dialogue_manager(config.policies[0])  # opened before the first task, as every resource
        # The simulated users' own view of the catalog; their eye is the index's picture vectors.
        self.world = SimulationWorld(self.store, self.catalog, self.searcher.index)
        self._plans: dict[int, ConversationPlan] = {}
        # The world builds its tables (values, version groups, image vectors) on first use: here,
        # in setup time, by planning and building (not running) conversation 0's simulated user.
        plan = self.plan(0)
        config.simulator.build(self.world, plan)
        self.world.start_item(plan)

    def plan(self, index: int) -> ConversationPlan:
        """Conversation ``index``'s plan: a function of (seed, index) alone, the same in every worker."""
        from .targets import plan_conversation

        if not 0 <= index < self.config.n:
            raise ValueError(f"conversation index {index} outside the run's 0..{self.config.n - 1}")
        plan = self._plans.get(index)
        if plan is None:
            plan = self._plans[index] = plan_conversation(self.world, index, self.config.seed,
                                                              self.config.start_weights())
        return plan

    def dialogue_manager(self, policy_name: str) -> DialogueManager:
        """The policy's dialogue manager, assembled as every interface assembles it (crs.assemble);
        the catalog facts and the model-backed stages are shared between policies (loading them is
        the slow part)."""
        from crs import assemble

        dm: DialogueManager | None = self._dms.get(policy_name)
        if dm is not None:
            return dm
        # Seeded by the run's seed: random-ask replays the same choices in every worker and on resume.
        policy = assemble.build_policy(self.settings, policy_name, seed=self.config.seed)
        dm = assemble.build_dialogue_manager(self.store, self.searcher, self.settings, policy=policy,
                                             share_with=next(iter(self._dms.values()), None))
        if self.settings.llm:  # a text-only model: the image reader stays offline (no fallback per picture)
            from crs.llm.startup import check_llm_stages  # imports LangChain: only with an LLM

            lines = check_llm_stages(dm)  # every policy's manager: each has its own reader setting
            self.llm_stages = self.llm_stages or lines
        # Setup time, not the first conversation's (which would skew conversations per second).
        dm.warm_up()
        self._dms[policy_name] = dm
        return dm

    def run(self, task: Task) -> ShardResult:
        from .conversation import run_conversation

        policy, index = task
        plan = self.plan(index)
        simulator = self.config.simulator.build(self.world, plan)
        result = run_conversation(self.dialogue_manager(policy), simulator, plan, max_turns=self.config.max_turns)
        return ShardResult(task, dataclasses.asdict(plan), result)


def run_shard(config: RunConfig, tasks: Sequence[Task]) -> list[ShardResult]:
    """The pure sharding function: results of ``tasks`` under ``config``, in order.

    Opens everything itself, so it runs anywhere the store and the catalog's files are reachable
    (a cluster engine ships ``config`` and a slice of :meth:`RunConfig.tasks`)."""
    worker = ShardWorker(config)
    return [worker.run(task) for task in tasks]


def ready_payload(worker: ShardWorker) -> dict[str, Any]:
    """What a worker sends once it is open: its process, and what the LLM start-up check said."""
    return {"pid": os.getpid(), "llm_stages": list(worker.llm_stages)}


def announce(payload: dict[str, Any], notice: Notice) -> None:
    """The first worker's LLM start-up lines, said once per run (every worker loads the same models)."""
    for line in payload.get("llm_stages", []):
        notice(f"LLM {line}")


# -- threads ------------------------------------------------------------------------------------------


def limit_threads(torch_threads: int = TORCH_THREADS) -> None:
    """This process's pools for one conversation at a time: torch ``torch_threads``, FAISS and BLAS 1.

    Called once the worker is open, so that every BLAS the models brought is loaded (threadpoolctl
    limits loaded libraries only) and torch is left unimported when nothing needs it (the fake
    embedder): importing it only to set its threads costs a second per process."""
    from retrieval.threads import serve_single_queries

    serve_single_queries(torch_threads=torch_threads if "torch" in sys.modules else None)


def worker_environment(torch_threads: int = TORCH_THREADS) -> dict[str, str]:
    """The thread settings a worker starts with (a local process or a Ray actor): OpenMP and BLAS read
    them when they load, which in a new process happens before any of our code runs."""
    return {"OMP_NUM_THREADS": str(torch_threads), "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false"}


@contextlib.contextmanager
def _child_environment(torch_threads: int) -> Iterator[None]:
    """:func:`worker_environment` for processes started inside the block."""
    wanted = worker_environment(torch_threads)
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- in this process ------------------------------------------------------------------------------------


def run_in_process(config: RunConfig, tasks: Iterable[Task], *, on_ready: Callable[[], None] = lambda: None,
                   notice: Notice = _silent, torch_threads: int = TORCH_THREADS) -> Iterator[ShardResult]:
    """Run ``tasks`` here, one after another (``--workers 1``); ``on_ready`` once everything is open."""
    worker = ShardWorker(config)
    limit_threads(torch_threads)
    announce(ready_payload(worker), notice)
    on_ready()
    for task in tasks:
        yield worker.run(task)


# -- in worker processes ----------------------------------------------------------------------------------


def _serve(config: RunConfig, conn: Connection, torch_threads: int) -> None:
    """A worker process: open everything once, then run what the parent sends until it sends None
    or goes away. Problems go back as messages, so the parent can report them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it then closes the pipe
    try:
        worker = ShardWorker(config)
        limit_threads(torch_threads)
    except UserError as exc:
        _send(conn, ("user_error", str(exc)))
        return
    except BaseException:  # noqa: BLE001 (a bug: its traceback goes to the parent)
        _send(conn, ("error", traceback.format_exc()))
        return
    if not _send(conn, ("ready", ready_payload(worker))):
        return
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the parent is gone: stop
            return
        if task is None:
            return
        try:
            done = worker.run(tuple(task))  # type: ignore[arg-type]
        except UserError as exc:
            _send(conn, ("user_error", str(exc)))
            return
        except BaseException:  # noqa: BLE001
            _send(conn, ("error", traceback.format_exc()))
            return
        if not _send(conn, ("result", (done.task, done.plan, done.result.to_json()))):
            return


def _send(conn: Connection, message: Any) -> bool:
    try:
        conn.send(message)
        return True
    except (BrokenPipeError, EOFError, OSError):  # the parent is gone
        return False


@dataclass
class _Worker:
    number: int
    process: multiprocessing.process.BaseProcess
    conn: Connection
    in_flight: int = 0


class WorkerError(RuntimeError):
    """A worker process failed with a bug (its traceback is in the message) or died."""


def run_in_processes(config: RunConfig, tasks: Iterable[Task], workers: int, *,
                     on_ready: Callable[[], None] = lambda: None, notice: Notice = _silent,
                     torch_threads: int = TORCH_THREADS, context: str = "spawn") -> Iterator[ShardResult]:
    """Run ``tasks`` on ``workers`` processes; yields results as they arrive (any order).

    The first worker starts alone, so that if the catalog's index must be built, one process
    builds and caches it; the others then load it. ``on_ready`` is called once all are open."""
    pending = list(tasks)
    count = max(1, min(workers, len(pending)))
    ctx = multiprocessing.get_context(context)
    pool: list[_Worker] = []

    def start(number: int) -> _Worker:
        parent_end, child_end = ctx.Pipe(duplex=True)
        with _child_environment(torch_threads):
            process = ctx.Process(target=_serve, args=(config, child_end, torch_threads), daemon=True,
                                  name=f"crs-eval-worker-{number}")
            process.start()
        child_end.close()  # only the child holds it now: its end-of-file is the child's death
        return _Worker(number, process, parent_end)

    def await_ready(starting: list[_Worker]) -> None:
        waiting = {w.conn: w for w in starting}
        deadline = time.monotonic() + START_TIMEOUT_S
        while waiting:
            ready = wait(list(waiting), timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                raise WorkerError(f"workers did not open the catalog within {START_TIMEOUT_S:.0f} s")
            for conn in ready:
                kind, payload = _receive(waiting.pop(conn))  # type: ignore[arg-type]
                if kind != "ready":
                    raise WorkerError(f"worker sent {kind!r} before it was ready: {payload!r}")
                if starting[0].number == 0:  # the first worker speaks for all: they load the same models
                    announce(payload, notice)

    try:
        pool.append(start(0))
        await_ready(pool)
        rest = [start(number) for number in range(1, count)]
        pool += rest
        await_ready(rest)
        on_ready()
        queue = iter(pending)

        def feed(worker: _Worker) -> None:
            while worker.in_flight < IN_FLIGHT:
                task = next(queue, None)
                if task is None:
                    return
                worker.conn.send(task)
                worker.in_flight += 1

        for worker in pool:
            feed(worker)
        by_conn = {w.conn: w for w in pool}
        while any(w.in_flight for w in pool):
            for conn in wait([w.conn for w in pool if w.in_flight]):
                worker = by_conn[conn]  # type: ignore[index]
                kind, payload = _receive(worker)
                if kind != "result":
                    raise WorkerError(f"worker {worker.number} sent {kind!r}: {payload!r}")
                worker.in_flight -= 1
                task, plan, result = payload
                yield ShardResult(tuple(task), plan, ConversationResult.from_json(result))  # type: ignore[arg-type]
                feed(worker)
    finally:
        _stop(pool)


def _receive(worker: _Worker) -> tuple[str, Any]:
    try:
        kind, payload = worker.conn.recv()
    except (EOFError, OSError):
        worker.process.join(timeout=5)
        raise WorkerError(f"worker {worker.number} (pid {worker.process.pid}) died "
                          f"(exit code {worker.process.exitcode})") from None
    if kind == "user_error":
        raise UserError(payload)
    if kind == "error":
        raise WorkerError(f"worker {worker.number} failed:\n{payload}")
    return kind, payload


def _stop(pool: list[_Worker]) -> None:
    """Ask every worker to stop, then make sure it has: our own processes, by handle."""
    for worker in pool:
        with contextlib.suppress(OSError):
            worker.conn.send(None)
        worker.conn.close()
    deadline = time.monotonic() + 10
    for worker in pool:
        worker.process.join(timeout=max(0.1, deadline - time.monotonic()))
        if worker.process.is_alive():  # stuck in a conversation (an LLM call): it holds nothing we need
            worker.process.terminate()
            worker.process.join(timeout=5)
