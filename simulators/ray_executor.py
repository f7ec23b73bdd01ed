"""Running an evaluation's conversations on a Ray cluster (``crs eval --executor ray``).

The same unit of work as the local workers (:mod:`simulators.sharding`): a task is
``(policy, conversation index)``, and conversation ``i`` depends only on the run's configuration
and ``i``, so Ray may run any task on any node in any order and the figures equal local workers'.
Each of ``--workers N`` Ray actors (:class:`ShardRunner`, one CPU each) opens the store, catalog,
searcher, simulation world and dialogue managers once, in its constructor, as a local worker process
does, and then runs the tasks the parent sends it; results stream back as each finishes
(``ray.wait``) and the parent alone writes the run's tables (:mod:`simulators.runner`). So a killed
run resumes exactly as with local workers, and an actor is owned by the parent's Ray job: when the
parent dies (kill -9 included) Ray stops its actors.

Why Ray: it is the maintained engine that runs Python objects with state on many machines (an
actor keeps its loaded models between tasks, which ``ray.remote(run_shard)`` per task would reload),
with ``ray.wait`` for streaming, and the same code for a local cluster and a remote one
(``--address``). Ray is an optional extra (``pip install -e .[ray]``), imported only here.

On a cluster of several machines, every node opens what a worker opens: the database (a server
such as PostgreSQL, or one SQLite file on a filesystem every node sees at the same path) and the
catalog's files and index cache (``CRS_HOME``). The actors get the parent's ``CRS_*`` settings
(credentials excepted: those stay with the nodes' own environment) and the thread settings of
local workers: torch, FAISS and BLAS on one thread per actor (see :mod:`simulators.sharding`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import traceback
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from crs.errors import UserError

from .results import ConversationResult
from .sharding import (IN_FLIGHT, START_TIMEOUT_S, TORCH_THREADS, RunConfig, ShardResult, ShardWorker, Task,
                       WorkerError, announce, limit_threads, ready_payload, worker_environment)

INSTALL_HINT = "install the ray extra: pip install -e .[ray]"
CONNECT_TIMEOUT_S = 5.0  # a TCP check before ray.init, which retries an unreachable address for minutes
# Environment names never sent to the actors: Ray keeps a job's runtime environment in the cluster's
# control store and shows it on the dashboard.
_SECRET_MARKS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def import_ray() -> ModuleType:
    """The ``ray`` module, or a UserError naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None, workers: int) -> Iterator[None]:
    """Ray connected for the block: to the cluster at ``address``, else a new local one with
    ``workers`` CPUs. A session already open (a caller running several runs, a test, a notebook) is
    used as it is and left open; one opened here is shut down at the end."""
    ray = import_ray()
    if ray.is_initialized():
        yield
        return
    if address:
        check_reachable(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves the machine
    quiet: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:  # "local": a new cluster even when RAY_ADDRESS is set (--address auto reads that)
            ray.init(address="local", num_cpus=workers, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f"the Ray cluster at {address!r}" if address else "a local Ray cluster"
        raise UserError(f"--executor ray: could not connect to {where}: {reason}") from None
    try:
        yield
    finally:
        ray.shutdown()


def check_reachable(address: str) -> None:
    """A clear error, in seconds, when nothing listens at ``address`` (HOST:PORT or ray://HOST:PORT);
    ``auto`` and ``local`` are Ray's own names and left to it."""
    if address in ("auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number
        host, port = None, None
    if not host or port is None:
        raise UserError(f"--address {address!r}: expected HOST:PORT of the cluster's head (e.g. 10.0.0.5:6379), "
                        "ray://HOST:PORT, or auto")
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise UserError(f"--address {address!r}: cannot reach a Ray cluster there "
                        f"({exc.strerror or type(exc).__name__}); is `ray start --head` running on {host}?") from None


def actor_options(torch_threads: int) -> dict[str, Any]:
    """A ShardRunner actor's Ray options: one CPU (as a local worker process is one core's), never
    restarted (a restarted actor would drop the tasks in hand; the run fails and resumes instead),
    and the environment of :func:`actor_environment`."""
    return {"num_cpus": 1, "max_restarts": 0, "runtime_env": {"env_vars": actor_environment(torch_threads)}}


def actor_environment(torch_threads: int) -> dict[str, str]:
    """The environment a Ray actor starts with: a local worker's thread settings and the parent's
    ``CRS_*`` settings (``CRS_HOME``: where the index cache is), credentials excepted."""
    settings = {name: value for name, value in os.environ.items()
                if name.startswith("CRS_") and not any(mark in name for mark in _SECRET_MARKS)}
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # no model hub at run time, as here
        if name in os.environ:
            settings[name] = os.environ[name]
    return {**settings, **worker_environment(torch_threads)}


class ShardRunner:
    """A Ray actor's state (wrapped by ``ray.remote`` in :func:`run_on_ray`, so importing this module
    needs no Ray): one :class:`~simulators.sharding.ShardWorker`, opened once, that runs every task
    sent to this actor. Problems come back as messages, as from a local worker process, so the
    parent reports a user's error as such and a bug with its traceback."""

    def __init__(self, config: RunConfig, torch_threads: int) -> None:
        self._worker: ShardWorker | None = None
        self._problem: tuple[str, str] | None = None
        try:
            self._worker = ShardWorker(config)
            limit_threads(torch_threads)  # here too: Ray may reuse a process whose pools were already loaded
        except UserError as exc:
            self._problem = ("user_error", str(exc))
        except Exception:  # noqa: BLE001 (a bug: its traceback goes to the parent)
            self._problem = ("error", traceback.format_exc())

    def ready(self) -> tuple[str, Any]:
        return self._problem or ("ready", ready_payload(self._worker))  # type: ignore[arg-type]

    def run(self, task: Task) -> tuple[str, Any]:
        if self._worker is None:
            return self.ready()
        try:
            done = self._worker.run(tuple(task))  # type: ignore[arg-type]
        except UserError as exc:
            return ("user_error", str(exc))
        except Exception:  # noqa: BLE001
            return ("error", traceback.format_exc())
        return ("result", (done.task, done.plan, done.result.to_json()))


def run_on_ray(config: RunConfig, tasks: Iterable[Task], workers: int, *, address: str | None = None,
               on_ready: Callable[[], None] = lambda: None, notice: Callable[[str], None] = lambda message: None,
               torch_threads: int = TORCH_THREADS) -> Iterator[ShardResult]:
    """Run ``tasks`` on ``workers`` Ray actors; yields results as they arrive (any order).

    As with local processes, the first actor opens alone, so that one builds the catalog's index if
    it must be built and the others load it; ``on_ready`` is called once all are open."""
    ray = import_ray()
    pending = list(tasks)
    count = max(1, min(workers, len(pending)))
    with ray_session(address, count):
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < count:
            notice(f"the Ray cluster has {cpus:g} CPUs and each of the {count} workers needs one: workers "
                   "beyond that wait for CPUs to free up (or for the cluster to grow)")
        runner = ray.remote(**actor_options(torch_threads))(ShardRunner)
        actors: list[Any] = []

        def start() -> Any:
            actor = runner.remote(config, torch_threads)
            actors.append(actor)
            return actor

        def await_ready(starting: list[Any], first: int) -> None:
            try:
                answers = ray.get([actor.ready.remote() for actor in starting], timeout=START_TIMEOUT_S)
            except ray.exceptions.GetTimeoutError:
                raise WorkerError(f"Ray workers did not open the catalog within {START_TIMEOUT_S:.0f} s") from None
            except ray.exceptions.RayActorError as exc:
                raise WorkerError(f"a Ray worker died while opening the catalog: {exc}") from None
            for number, answer in enumerate(answers, start=first):
                kind, payload = _unwrap(answer, number)
                if kind != "ready":
                    raise WorkerError(f"Ray worker {number} sent {kind!r} before it was ready: {payload!r}")
                if number == 0:  # the first actor speaks for all: they load the same models
                    announce(payload, notice)

        try:
            await_ready([start()], 0)
            if count > 1:
                await_ready([start() for _ in range(1, count)], 1)
            on_ready()
            queue = iter(pending)
            in_flight: dict[Any, int] = {}  # ObjectRef -> the actor's number
            load = [0] * count

            def feed(number: int) -> None:
                while load[number] < IN_FLIGHT:
                    task = next(queue, None)
                    if task is None:
                        return
                    in_flight[actors[number].run.remote(task)] = number
                    load[number] += 1

            for number in range(count):
                feed(number)
            while in_flight:
                done, _ = ray.wait(list(in_flight), num_returns=1)
                number = in_flight.pop(done[0])
                load[number] -= 1
                try:
                    answer = ray.get(done[0])
                except ray.exceptions.RayActorError as exc:
                    raise WorkerError(f"Ray worker {number} died: {exc}") from None
                kind, payload = _unwrap(answer, number)
                if kind != "result":
                    raise WorkerError(f"Ray worker {number} sent {kind!r}: {payload!r}")
                task, plan, result = payload
                yield ShardResult(tuple(task), plan, ConversationResult.from_json(result))  # type: ignore[arg-type]
                feed(number)
        finally:
            for actor in actors:  # ours, by handle; a conversation in hand is dropped, never stored
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)


def _unwrap(answer: tuple[str, Any], number: int) -> tuple[str, Any]:
    kind, payload = answer
    if kind == "user_error":
        raise UserError(payload)
    if kind == "error":
        raise WorkerError(f"Ray worker {number} failed:\n{payload}")
    return kind, payload
