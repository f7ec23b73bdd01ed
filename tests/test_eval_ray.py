"""`crs eval --executor ray`: the same figures as local workers, resume of a killed run, the
cluster's address checked, and the missing extra named.

The tests that need Ray share one local Ray (``ray.init(num_cpus=2)``) per module: starting one
takes ~10 s here, so they are slow (CI installs the ray extra for its slow tests). The checks of
the options and of the missing extra need no Ray and stay in the default run."""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from crs.cli import build_parser, main
from crs.errors import UserError
from crs.store.models import EvalRun
from simulators.ray_executor import INSTALL_HINT, ShardRunner, actor_environment, actor_options, check_reachable
from tests.test_eval_resume import N, check_resumed, killed_run, stored
from tests.test_eval_runner import comparable, load_bench, run_config, without_latency



def crs_eval(capsys: pytest.CaptureFixture[str], store: Any, *argv: str) -> tuple[int, str, str]:
    code = main(["eval", "--catalog", "shapes", "--db", store.url, "--embedder", "fake", "--max-turns", "5",
                 "--seed", "7", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def closed_port() -> int:
    """A local port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- no Ray needed ---------------------------------------------------------------------------------------


def test_the_executor_is_local_by_default_and_names_the_runners_choices() -> None:
    from crs.cli.eval import EXECUTORS
    from simulators.runner import EXECUTORS as RUNNER_EXECUTORS

    args = build_parser().parse_args(["eval"])
    assert (args.executor, args.address) == ("local", None)
    assert EXECUTORS == RUNNER_EXECUTORS == ("local", "ray")


def test_without_ray_the_error_names_the_extra_before_anything_runs(store, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as when not installed
    code, out, err = crs_eval(capsys, store, "--n", "2", "--executor", "ray", "--run-id", "r")
    assert code == 1 and out == ""
    assert INSTALL_HINT in err and "install the ray extra: pip install -e .[ray]" in err
    assert "Traceback" not in err
    with store.session() as db:
        assert db.get(EvalRun, "r") is None  # failed before the run was created


def test_address_is_for_the_ray_executor(store, capsys) -> None:
    code, _, err = crs_eval(capsys, store, "--n", "2", "--address", "10.0.0.5:6379")
    assert code == 1 and "--address names a Ray cluster: give it with --executor ray" in err


def test_an_unreachable_or_malformed_address_is_a_clear_error_in_seconds() -> None:
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(UserError, match=rf"--address '127.0.0.1:{port}': cannot reach a Ray cluster there"):
        check_reachable(f"127.0.0.1:{port}")
    with pytest.raises(UserError, match="cannot reach a Ray cluster there"):
        check_reachable(f"ray://127.0.0.1:{port}")
    assert time.monotonic() - started < 10  # ray.init itself retries such an address for minutes
    for bad in ("head-node", "head-node:port", ":6379"):
        with pytest.raises(UserError, match="expected HOST:PORT"):
            check_reachable(bad)
    check_reachable("auto")  # Ray's own name: left to ray.init


def test_actors_get_the_thread_settings_and_crs_settings_but_no_credentials(monkeypatch) -> None:
    monkeypatch.setenv("CRS_HOME", "/data/crs")
    monkeypatch.setenv("CRS_LLM_API_KEY", "sk-secret")
    env = actor_environment(torch_threads=1)
    assert env["CRS_HOME"] == "/data/crs" and "CRS_LLM_API_KEY" not in env
    assert (env["OMP_NUM_THREADS"], env["MKL_NUM_THREADS"], env["OPENBLAS_NUM_THREADS"]) == ("1", "1", "1")


# -- a local Ray ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[ModuleType]:
    """One local Ray with 2 CPUs for the module's tests; `crs eval --executor ray` uses it as it is."""
    if os.environ.get("CI"):
        import ray  # CI installs the ray extra for the slow tests: a missing Ray fails there
    else:
        ray = pytest.importorskip("ray", reason=INSTALL_HINT)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_ray_gives_the_figures_of_local_workers(ray_cluster, shapes_catalog, capsys) -> None:
    from simulators.runner import load_results

    store, _ = shapes_catalog
    code, local_out, err = crs_eval(capsys, store, "--n", "8", "--workers", "2", "--run-id", "local", "--json")
    assert code == 0, err
    code, ray_out, err = crs_eval(capsys, store, "--n", "8", "--workers", "2", "--executor", "ray",
                                  "--run-id", "ray", "--json")
    assert code == 0, err
    assert "running 8 with 2 workers on Ray" in err and "Traceback" not in err
    assert comparable(json.loads(ray_out)) == comparable(json.loads(local_out))
    # Conversation by conversation, every turn (its latency aside) is the same: each is seeded by its index.
    config = run_config(n=8)  # load_results reads its policies and n
    local, _ = load_results(store, "local", config)
    on_ray, _ = load_results(store, "ray", config)
    assert [without_latency(r) for r in on_ray["eig"]] == [without_latency(r) for r in local["eig"]]


@pytest.mark.slow
def test_a_ray_worker_opens_once_and_serves_on_one_thread_per_pool(ray_cluster, shapes_catalog) -> None:
    store, _ = shapes_catalog
    config = run_config(n=4, db=store.url)

    class Probe(ShardRunner):  # defined here, so Ray ships it by value; the real actor's behaviour underneath
        def threads(self) -> dict[str, Any]:
            import faiss
            from threadpoolctl import threadpool_info

            return {"omp_env": os.environ.get("OMP_NUM_THREADS"), "faiss": faiss.omp_get_max_threads(),
                    "blas": sorted({pool["num_threads"] for pool in threadpool_info()
                                    if pool["user_api"] == "blas"}),
                    "worker": id(self._worker), "crs_home": os.environ.get("CRS_HOME")}

    actor = ray_cluster.remote(**actor_options(torch_threads=1))(Probe).remote(config, 1)
    try:
        kind, pid = ray_cluster.get(actor.ready.remote(), timeout=120)
        assert kind == "ready" and pid != os.getpid()
        before = ray_cluster.get(actor.threads.remote())
        kinds = [ray_cluster.get(actor.run.remote(("eig", index)))[0] for index in range(3)]
        after = ray_cluster.get(actor.threads.remote())
    finally:
        ray_cluster.kill(actor)
    assert kinds == ["result"] * 3
    assert before["worker"] == after["worker"]  # one ShardWorker for every task: opened once
    assert (before["omp_env"], before["faiss"], before["blas"]) == ("1", 1, [1])
    assert before["crs_home"] == os.environ["CRS_HOME"]  # this test's, not the one Ray started under


def ray_actor_processes() -> list[int]:
    """This machine's processes running a ShardRunner actor (Ray titles them ``ray::ShardRunner...``)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if command.startswith(b"ray::ShardRunner"):
            found.append(int(entry))
    return found


@pytest.mark.slow
def test_a_killed_ray_run_resumes_to_the_same_figures(ray_cluster, shapes_catalog, capsys) -> None:
    store, _ = shapes_catalog
    argv = ["--n", str(N), "--json"]
    code, straight, err = crs_eval(capsys, store, *argv, "--run-id", "straight")  # also builds the index
    assert code == 0, err
    address = ray_cluster.get_runtime_context().gcs_address
    # A second driver on the module's cluster, as `crs eval --address` on a real cluster, killed mid-run.
    process = subprocess.Popen(
        [sys.executable, "-m", "crs.cli", "eval", "--catalog", "shapes", "--db", store.url, "--embedder", "fake",
         "--max-turns", "5", "--seed", "7", *argv, "--run-id", "killed", "--executor", "ray", "--workers", "2",
         "--address", address], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    try:
        while stored(store, "killed") < 3:
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "no conversation stored in time"
            time.sleep(0.02)
        assert ray_actor_processes(), "the run's Ray actors are not running"
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    # Ray stops the actors of a driver that died: none keeps running conversations.
    while ray_actor_processes():
        assert time.monotonic() < deadline, f"Ray actors {ray_actor_processes()} outlived their killed driver"
        time.sleep(0.1)
    at_kill, before = killed_run(store, "killed")

    code, resumed, err = crs_eval(capsys, store, *argv, "--run-id", "killed", "--executor", "ray", "--workers", "2")
    assert code == 0, err
    assert f"{at_kill} of {N} conversations already stored" in err
    assert comparable(json.loads(resumed)) == comparable(json.loads(straight))
    check_resumed(store, "killed", before)
    # The finished run let its actors go: Ray stops a killed actor's process asynchronously (seen
    # still alive for a moment right after the run returned), so allow it a few seconds.
    deadline = time.monotonic() + 20
    while ray_actor_processes():
        assert time.monotonic() < deadline, f"Ray actors {ray_actor_processes()} outlived the finished run"
        time.sleep(0.2)


@pytest.mark.slow
def test_an_unreachable_cluster_fails_with_a_message_not_a_traceback(shapes_catalog) -> None:
    store, _ = shapes_catalog
    port = closed_port()
    done = subprocess.run([sys.executable, "-m", "crs.cli", "eval", "--catalog", "shapes", "--db", store.url,
                           "--embedder", "fake", "--n", "2", "--executor", "ray", "--address", f"127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert f"error: --address '127.0.0.1:{port}': cannot reach a Ray cluster there" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_the_throughput_benchmark_compares_ray_with_local_workers(ray_cluster, shapes_catalog) -> None:
    store, _ = shapes_catalog
    bench = load_bench()
    result = bench.run_benchmark(store, catalog="shapes", embedder="fake", n=4, max_turns=4, workers=(2,),
                                 executors=("local", "ray"))
    assert [(row["executor"], row["workers"]) for row in result["rows"]] == [("local", 2), ("ray", 2)]
    for row in result["rows"]:
        assert row["conversations_per_second"] > 0 and row["same_figures_as_first"] and "figures" not in row
    table = bench.format_table(result)
    assert "executor" in table and " ray " in table and "NO" not in table
    assert result["ray_start_s"] is None  # the module's Ray was already running: nothing was started
    assert bench.executor_list("local,ray") == ("local", "ray")
    with pytest.raises(argparse.ArgumentTypeError, match="expected distinct names"):
        bench.executor_list("local,spark")
