"""A real `crs eval --run-id X` process killed with SIGKILL mid-run, then started again: it finishes
the run without recomputing or duplicating a conversation, and its figures equal an uninterrupted run's."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from crs.store.models import EvalConversation, EvalRun
from tests.test_eval_runner import comparable

# On SQLite and on PostgreSQL: the shapes catalog's `store` follows store_url.
pytestmark = pytest.mark.usefixtures("store_url")

N = 40  # enough that the run cannot finish between two polls of the database


def eval_argv(store, run_id: str, *extra: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [sys.executable, "-m", "crs.cli", "eval", "--catalog", "shapes", "--db", store.url, "--embedder", "fake",
            "--n", str(N), "--max-turns", "5", "--seed", "7", "--run-id", run_id, "--json", *extra]


Rows = set[tuple[int, int, object]]  # (conversation index, row id, created at) of stored conversations


def killed_run(store, run_id: str) -> tuple[int, Rows]:  # type: ignore[no-untyped-def]
    """A run killed part-way: how many conversations it stored (some, not all) and which rows."""
    at_kill = stored(store, run_id)
    assert 3 <= at_kill < N
    with store.session() as db:
        assert db.get(EvalRun, run_id).status == "running"
        return at_kill, {(r.conversation_index, r.id, r.created_at)
                         for r in db.scalars(select(EvalConversation).where(EvalConversation.run_id == run_id))}


def check_resumed(store, run_id: str, before: Rows) -> None:  # type: ignore[no-untyped-def]
    """The resumed run stored every conversation once and kept (never recomputed) those stored before."""
    with store.session() as db:
        rows = db.scalars(select(EvalConversation).where(EvalConversation.run_id == run_id)).all()
        assert sorted(r.conversation_index for r in rows) == list(range(N))  # each once
        assert before <= {(r.conversation_index, r.id, r.created_at) for r in rows}  # never recomputed
        assert db.get(EvalRun, run_id).status == "finished"


def stored(store, run_id: str) -> int:  # type: ignore[no-untyped-def]
    with store.session() as db:
        return int(db.scalar(select(func.count()).select_from(EvalConversation)
                             .where(EvalConversation.run_id == run_id)))


# With two workers it also checks that orphaned workers stop; it spawns processes twice (~8 s): slow.
@pytest.mark.parametrize("workers", ["1", pytest.param("2", marks=pytest.mark.slow)])
def test_a_killed_run_resumes_to_the_same_figures(shapes_catalog, workers: str) -> None:
    store, _ = shapes_catalog
    # The index is built once here, so the killed process spends its time running conversations.
    straight = subprocess.run(eval_argv(store, "straight"), capture_output=True, text=True, timeout=240)
    assert straight.returncode == 0, straight.stderr
    expected = json.loads(straight.stdout)

    process = subprocess.Popen(eval_argv(store, "killed", "--workers", workers), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    try:
        while stored(store, "killed") < 3:
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "no conversation stored in time"
            time.sleep(0.02)
        workers_of_killed = children(process.pid)
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    # Two workers (and multiprocessing's resource tracker) with --workers 2, none in process with 1.
    assert len(workers_of_killed) >= 2 if workers == "2" else not workers_of_killed
    # Orphaned workers see their pipe to the parent close and exit (after the conversation in hand).
    while any(running(pid) for pid in workers_of_killed):
        assert time.monotonic() < deadline, f"workers {workers_of_killed} outlived their killed parent"
        time.sleep(0.05)
    at_kill, before = killed_run(store, "killed")

    resumed = subprocess.run(eval_argv(store, "killed", "--workers", workers), capture_output=True, text=True,
                             timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{at_kill} of {N} conversations already stored" in resumed.stderr
    figures = json.loads(resumed.stdout)
    assert comparable(figures) == comparable(expected)
    check_resumed(store, "killed", before)


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _stat(int(entry))[1] == pid:
            found.append(int(entry))
    return found


def _stat(pid: int) -> tuple[str, int]:
    """(state, parent pid) of a process; ("", -1) when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, ValueError, IndexError):
        return "", -1


def running(pid: int) -> bool:
    return _stat(pid)[0] not in ("", "Z", "X")  # a zombie has exited
