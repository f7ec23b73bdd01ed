"""One server process at a time prepares a catalog on this machine: loads the demo into the
store, builds or opens its index. With several workers (``python app.py --workers N``,
``uvicorn app:app --workers N``, gunicorn) every worker warms up at once; without this lock each
would ingest the demo and encode the catalog itself, N times the work, and write the same cache
files at the same time. The first worker builds; the others wait, then open what it built.

The lock is a file under ``$CRS_HOME/locks`` (the index cache is per machine, under the same
folder), taken with ``filelock`` (the maintained cross-platform file lock that torch and
huggingface_hub already install), released by the OS if its process dies.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from crs.config import crs_home
from retrieval.progress import BuildProgress

WAITING = "waiting for another server process that prepares the catalog"


@contextmanager
def preparing(catalog: str, report: Callable[[BuildProgress], None] | None = None) -> Iterator[None]:
    """Hold the machine-wide lock for preparing ``catalog``; says so to ``report`` if it waits."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", catalog)[:60]
    folder = crs_home() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / f"prepare-{slug}-{hashlib.sha1(catalog.encode()).hexdigest()[:8]}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if report is not None:
            report(BuildProgress(WAITING, 0, 1, unit="step"))
        lock.acquire()  # a first build of a large catalog takes minutes: wait for it, however long
    try:
        yield
    finally:
        lock.release()
