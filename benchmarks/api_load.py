"""Load on the JSON API: many simulated people chatting at once, over real HTTP, against ``python app.py``.

    python benchmarks/api_load.py [--catalog demo] [--db URL[,URL...]] [--embedder aligned] [--sessions 20]
        [--duration 60] [--turns 4] [--image-share 0.3] [--seed 0] [--workers 1,2] [--startup-timeout 900]
        [--json OUT]

It starts the app (``app.py`` in a subprocess: its own process, as in production, on a free
loopback port), waits until it reports ready (models loaded, index open; the startup time and
whether the index came from the cache are reported), then runs ``--sessions`` simulated
sessions at once for ``--duration`` seconds. Each simulated person, in a loop until time is up:

* creates a session (``POST /api/v1/sessions``, on a new connection: a new visitor) and opens
  with a text: a catalog item's title;
* answers each question with its first option; after a recommendation, rates an item
  (``POST .../feedback``: likes the first, or dislikes the last) and then, with probability
  ``--image-share``, uploads the picture of a random catalog item (fetched first through
  ``GET /api/v1/items/{id}/image``, as a page would show it), else sends a critique;
* after ``--turns`` messages, reads the session back (``GET /api/v1/sessions/{id}``) and checks
  it holds exactly what this person sent: the same texts in order, the same pictures (sha1 of
  the decoded pixels, computed here the way the server computes it), the same disliked items
  and the liked ones (less those a new topic dropped: the dialogue does that). Anything else,
  in particular anything another session sent, is a leak; a lost turn is a mismatch too.
  A session cut short by the end of the run is checked the same way.

Reported: requests per second and p50 / p95 latency per endpoint and overall (the latency a
client sees, on the same machine: the clients' own CPU use is part of it), the errors (status
and detail of the first few), the leak check, the CPU the server used and the memory (RSS) of
each server process. ``--workers 1,2`` runs the whole load once per worker count (``app.py
--workers N``: N processes over the one store), each on a fresh server with the same simulated
people, and reports the turns (answered messages) per second of each and their ratio to the
first; the load average is printed beside them, since on a shared machine it moves the ratio as
much as the code does. The store is by
default a new SQLite file in a temporary folder into which the app loads the demo catalog, so
the benchmark's sessions never land in your own store; the index cache is ``$CRS_HOME``'s,
shared with the app and ``crs search``. ``--db`` uses that store instead (any catalog in it).
Several comma-separated URLs (``--db sqlite:///x.db,postgresql+psycopg://...``) run the whole
load on each store in turn, e.g. SQLite against PostgreSQL in one run; each row of the scaling
table then names its store's backend and its turns/s as a ratio to the first store's at the same
worker count. (A URL with a comma of its own must percent-encode it as %2C.)

Long on purpose: one script is the whole benchmark (server, simulated people, leak check, report), so it runs and reads on its own.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

API = "/api/v1"
CRITIQUES = ("in 3d", "not black", "something simpler", "more colourful", "flat style")
ENDPOINTS = ("POST /sessions", "POST /messages (text)", "POST /messages (image)", "POST /feedback",
             "GET /items/{id}/image", "GET /sessions/{id}")
MAX_ERROR_EXAMPLES = 8
MAX_WORKERS = 32  # app.py's own bound
# One line per server process once it has loaded its models and index (crs.web.services).
READY_LINE = re.compile(r"ready: catalog .* open, models and index loaded \(process (\d+)\)")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the server -----------------------------------------------------------------------------------

@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    startup_s: float
    health: dict[str, Any]
    workers: int = 1
    worker_pids: list[int] = field(default_factory=list)  # the processes that answer (the server itself for 1)

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server's processes so far (Linux /proc), None elsewhere."""
        total = 0.0
        for pid in {self.process.pid, *self.worker_pids}:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return None
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def memory(self) -> dict[str, Any]:
        """RSS now and at its peak (VmHWM) of each worker, and of the supervisor when there is one, in MB."""
        def rss(pid: int) -> dict[str, float] | None:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                return None
            values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
            return {"rss_mb": round(int(values.get("VmRSS", 0)) / 1024, 1),
                    "peak_mb": round(int(values.get("VmHWM", 0)) / 1024, 1)}

        workers = [m for m in (rss(pid) for pid in self.worker_pids) if m is not None]
        supervisor = rss(self.process.pid) if self.workers > 1 else None
        return {"workers": workers, "supervisor": supervisor,
                "rss_mb_per_worker": round(sum(w["rss_mb"] for w in workers) / len(workers), 1) if workers else None}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_server(catalog: str, db_url: str, embedder: str, timeout_s: float, log: Path,
                 env: dict[str, str] | None = None, workers: int = 1) -> Server:
    """``python app.py --workers N`` on a free loopback port, waited for until every worker is
    ready (each logs one line when its models and index are loaded; /health alone answers from
    whichever worker takes the connection). Rate limits are off unless ``env`` says otherwise:
    every simulated person comes from 127.0.0.1, and this measures the server's capacity, not
    its limiter (with several workers each would also count apart)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--catalog", catalog,
                                    "--db", db_url, "--embedder", embedder, "--workers", str(workers)], cwd=ROOT,
                                   stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "CRS_RATE_LIMITS": "off", **(env or {})})
    server = Server(process, url, log, 0.0, {}, workers)
    deadline = time.monotonic() + timeout_s
    announced = False
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with status {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            health = httpx.get(f"{url}{API}/health", timeout=5).json()
            ready = sorted({int(pid) for pid in READY_LINE.findall(log.read_text(errors="replace"))})
            if health.get("ready") and len(ready) >= workers:
                server.health, server.startup_s, server.worker_pids = health, time.perf_counter() - started, ready
                return server
            if not announced:
                say(f"server answering at {url}; waiting for the models and the index (a first run builds it) ...")
                announced = True
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"app.py was not ready within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.25)


# -- the simulated people -------------------------------------------------------------------------

@dataclass
class Sent:
    """What one session sent, to compare with what the server says it holds."""

    session_id: str
    texts: list[str] = field(default_factory=list)
    images: list[list[str]] = field(default_factory=list)  # per turn: sha1 of each picture's pixels
    liked: list[str] = field(default_factory=list)
    disliked: list[str] = field(default_factory=list)

    def rate(self, item_id: str, liked: bool) -> None:
        # The dialogue manager's rule: a rating moves an item from one list to the other.
        keep, drop = (self.liked, self.disliked) if liked else (self.disliked, self.liked)
        if item_id in drop:
            drop.remove(item_id)
        if item_id not in keep:
            keep.append(item_id)


@dataclass
class Record:
    endpoint: str
    seconds: float
    status: int  # 0: no HTTP answer (connection error, timeout)
    detail: str = ""


class Stop(Exception):
    """The run's time is up: the person stops before the next request."""


def pixel_sha1(data: bytes) -> str:
    from retrieval.images import load_image

    return hashlib.sha1(load_image(data).tobytes()).hexdigest()


class Person:
    def __init__(self, url: str, items: list[tuple[str, str]], deadline: float, turns: int, image_share: float,
                 seed: int) -> None:
        self.url = url
        self.client = httpx.Client(base_url=url, timeout=120)
        self.items = items
        self.deadline = deadline
        self.turns = turns
        self.image_share = image_share
        self.random = random.Random(seed)
        self.records: list[Record] = []
        self.checked: list[dict[str, Any]] = []

    def call(self, endpoint: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        if time.monotonic() >= self.deadline:
            raise Stop
        start = time.perf_counter()
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.records.append(Record(endpoint, time.perf_counter() - start, 0, f"{type(exc).__name__}: {exc}"))
            return None
        seconds = time.perf_counter() - start
        detail = ""
        if not response.is_success:
            try:
                detail = str(response.json().get("detail", ""))[:300]
            except ValueError:
                detail = response.text[:300]
        self.records.append(Record(endpoint, seconds, response.status_code, detail))
        return response if response.is_success else None

    def run(self) -> None:
        try:
            while True:
                self.session()
        except Stop:
            pass
        finally:
            self.client.close()

    def session(self) -> None:
        # Each session is a new visitor with a connection of its own: with several workers the
        # kernel hands each new connection to one of them, as it would real visitors' ones.
        self.client.close()
        self.client = httpx.Client(base_url=self.url, timeout=120)
        created = self.call("POST /sessions", "POST", f"{API}/sessions")
        if created is None:
            return
        sent = Sent(created.json()["session_id"])
        try:
            reply = self.message(sent, self.random.choice(self.items)[1])
            while reply is not None and len(sent.texts) < self.turns:
                if reply["action"] == "ask" and reply["question"]:
                    reply = self.message(sent, reply["question"]["options"][0])
                    continue
                if reply["items"]:
                    first = self.random.random() < 0.5
                    item = reply["items"][0 if first else -1]["id"]
                    if self.call("POST /feedback", "POST", f"{API}/sessions/{sent.session_id}/feedback",
                                 json={"item_id": item, "liked": first}) is not None:
                        sent.rate(item, first)
                if self.random.random() < self.image_share:
                    reply = self.picture(sent)
                else:
                    reply = self.message(sent, self.random.choice(CRITIQUES))
        finally:
            self.check(sent)

    def message(self, sent: Sent, text: str, picture: tuple[str, bytes] | None = None) -> dict[str, Any] | None:
        files = [("images", (picture[0], picture[1], "application/octet-stream"))] if picture else None
        response = self.call("POST /messages (image)" if picture else "POST /messages (text)", "POST",
                             f"{API}/sessions/{sent.session_id}/messages", data={"text": text} if text else None,
                             files=files)
        if response is None:
            return None
        sent.texts.append(text)
        sent.images.append([pixel_sha1(picture[1])] if picture else [])
        return response.json()

    def picture(self, sent: Sent) -> dict[str, Any] | None:
        item_id, _ = self.random.choice(self.items)
        image = self.call("GET /items/{id}/image", "GET",
                          f"{API}/items/{urllib.parse.quote(item_id, safe='')}/image")
        if image is None:
            return None
        return self.message(sent, self.random.choice(("", "but in 3d", "like this")), (f"{item_id}.img", image.content))

    def check(self, sent: Sent) -> None:
        # The check runs even after the deadline: a session cut short must be consistent too.
        start = time.perf_counter()
        try:
            response = self.client.get(f"{API}/sessions/{sent.session_id}")
        except httpx.HTTPError as exc:
            self.records.append(Record("GET /sessions/{id}", time.perf_counter() - start, 0, str(exc)))
            return
        self.records.append(Record("GET /sessions/{id}", time.perf_counter() - start, response.status_code))
        if not response.is_success:
            return
        held = response.json()
        got = {"texts": [t["text"] for t in held["turns"]],
               "images": [[i["sha1"] for i in t["images"]] for t in held["turns"]],
               "liked": held["liked"], "disliked": held["disliked"]}
        want = {"texts": sent.texts, "images": sent.images, "liked": sent.liked, "disliked": sent.disliked}
        # A message that starts a new topic drops the likes that pulled towards the old one
        # (crs.belief.BeliefState.drop_topic), so the server may hold fewer likes than were
        # sent: in the order sent, never one this session did not send. Everything else exactly.
        kept = [item for item in want["liked"] if item in got["liked"]]
        problems = [name for name in want if (got[name] != kept if name == "liked" else got[name] != want[name])]
        if held["session_id"] != sent.session_id:
            problems.append("session_id")
        self.checked.append({"session_id": sent.session_id, "turns": len(sent.texts), "problems": problems,
                             "likes_dropped": len(want["liked"]) - len(kept),
                             **({"sent": want, "held": got} if problems else {})})


# -- the run ----------------------------------------------------------------------------------------

def catalog_items(db_url: str, catalog: str) -> list[tuple[str, str]]:
    """(id, title) of every item with a title: openings and pictures are drawn from these."""
    from sqlalchemy import select

    from crs.store import open_store
    from crs.store.models import Catalog, Item

    store = open_store(db_url)
    with store.session() as db:
        catalog_id = db.scalar(select(Catalog.id).where(Catalog.name == catalog))
        rows = db.execute(select(Item.external_id, Item.title).where(Item.catalog_id == catalog_id,
                                                                     Item.image_file.is_not(None))).all()
    store.engine.dispose()
    return [(r[0], r[1]) for r in rows if r[1]]


def latency(records: list[Record], wall_s: float) -> dict[str, Any]:
    ms = np.array([r.seconds * 1000 for r in records], dtype=np.float64)
    if not len(ms):
        return {"requests": 0, "errors": 0, "rps": 0.0}
    return {"requests": len(ms), "errors": sum(1 for r in records if not 200 <= r.status < 300),
            "rps": round(len(ms) / wall_s, 2), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "mean_ms": round(float(ms.mean()), 1),
            "max_ms": round(float(ms.max()), 1)}


def turns_per_s(report: dict[str, Any]) -> float:
    """Messages answered (HTTP 2xx) per second of the run: text and picture turns together."""
    answered = sum(report["endpoints"].get(name, {}).get("requests", 0) - report["endpoints"].get(name, {}).get("errors", 0)
                   for name in ("POST /messages (text)", "POST /messages (image)"))
    return round(answered / report["wall_s"], 2) if report["wall_s"] else 0.0


def run_scaling(catalog: str, db_url: str, embedder: str, workers: list[int], **options: Any) -> dict[str, Any]:
    """The same load once per worker count, each on a fresh server; turns/s and their ratio to the first."""
    runs = []
    for count in workers:
        say(f"-- {count} worker{'s' if count > 1 else ''} --")
        runs.append(run_benchmark(catalog, db_url, embedder, workers=count, **options))
    base = runs[0]["turns_per_s"]
    scaling = [{"workers": r["workers"], "turns_per_s": r["turns_per_s"],
                "ratio": round(r["turns_per_s"] / base, 2) if base else None,
                "errors": r["errors"]["count"], "leaks": r["leak_check"]["mismatches"],
                "rss_mb_per_worker": r["memory"]["rss_mb_per_worker"],
                "load_avg": r["load_avg"]} for r in runs]
    return {"runs": runs, "scaling": scaling}


def run_benchmark(catalog: str, db_url: str, embedder: str, *, sessions: int = 20, duration: float = 60.0,
                  turns: int = 4, image_share: float = 0.3, seed: int = 0, startup_timeout: float = 900.0,
                  store_kind: str = "given", log_dir: Path | None = None, workers: int = 1) -> dict[str, Any]:
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="api-load-"))
    server = start_server(catalog, db_url, embedder, startup_timeout, log_dir / "server.log", workers=workers)
    try:
        items = catalog_items(db_url, catalog)
        if not items:
            raise RuntimeError(f"catalog {catalog!r} has no items with a title and an image to talk about")
        say(f"ready after {server.startup_s:.1f} s; {sessions} sessions for {duration:g} s ...")
        cpu_before, load_before = server.cpu_seconds(), os.getloadavg()
        client_cpu_before = time.process_time()
        started = time.perf_counter()
        deadline = time.monotonic() + duration
        people = [Person(server.url, items, deadline, turns, image_share, seed * 1000 + n) for n in range(sessions)]
        threads = [threading.Thread(target=p.run, name=f"person-{n}") for n, p in enumerate(people)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        cpu_after, load_after = server.cpu_seconds(), os.getloadavg()
        client_cpu = time.process_time() - client_cpu_before
        memory = server.memory()  # before the stop: the workers' RSS under load
    finally:
        server.stop()

    records = [r for p in people for r in p.records]
    checked = [c for p in people for c in p.checked]
    by_endpoint = defaultdict(list)
    for r in records:
        by_endpoint[r.endpoint].append(r)
    errors = [r for r in records if not 200 <= r.status < 300]
    cpus = os.cpu_count() or 1
    leaks = [c for c in checked if c["problems"]]
    report = {
        "catalog": catalog, "embedder": embedder, "store": store_kind, "workers": workers,
        "config": {"sessions": sessions, "duration_s": duration, "turns": turns, "image_share": image_share,
                   "seed": seed},
        "memory": memory,
        "server": {"startup_s": round(server.startup_s, 2), "health": server.health,
                   "cpu_share": None if cpu_before is None or cpu_after is None
                   else round((cpu_after - cpu_before) / (wall * cpus), 3)},
        "client_cpu_share": round(client_cpu / (wall * cpus), 3),
        "wall_s": round(wall, 2), "cpus": cpus,
        "load_avg": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after]},
        "overall": latency(records, wall),
        "endpoints": {name: latency(by_endpoint[name], wall) for name in ENDPOINTS if by_endpoint[name]},
        "errors": {"count": len(errors), "by_status": dict(Counter(r.status for r in errors)),
                   "examples": [{"endpoint": r.endpoint, "status": r.status, "detail": r.detail}
                                for r in errors[:MAX_ERROR_EXAMPLES]]},
        "sessions": sum(1 for r in records if r.endpoint == "POST /sessions" and 200 <= r.status < 300),
        "leak_check": {"sessions_checked": len(checked), "turns_checked": sum(c["turns"] for c in checked),
                       "mismatches": len(leaks), "examples": leaks[:3], "pass": bool(checked) and not leaks,
                       "likes_dropped_by_a_new_topic": sum(c.get("likes_dropped", 0) for c in checked)},
        "server_log": str(log_dir / "server.log"),
    }
    report["turns_per_s"] = turns_per_s(report)
    return report


def run_stores(catalog: str, db_urls: list[str], embedder: str, workers: list[int], **options: Any) -> dict[str, Any]:
    """``run_scaling`` on each store in turn; every run and scaling row names its store (password
    hidden), and each row's ``store_ratio`` is its turns/s over the first store's at that worker count."""
    from sqlalchemy.engine import make_url

    from crs.store import redact_url

    runs: list[dict[str, Any]] = []
    scaling: list[dict[str, Any]] = []
    for url in db_urls:
        backend = make_url(url).get_backend_name()
        if len(db_urls) > 1:
            say(f"== store: {backend} ({redact_url(url)}) ==")
        result = run_scaling(catalog, url, embedder, workers, **options)
        for run in result["runs"]:
            run["db"] = {"backend": backend, "url": redact_url(url)}
        runs += result["runs"]
        scaling += [{"db": backend, **row} for row in result["scaling"]]
    first = {row["workers"]: row["turns_per_s"] for row in scaling[:len(workers)]}
    for row in scaling:
        base = first.get(row["workers"])
        row["store_ratio"] = round(row["turns_per_s"] / base, 2) if base else None
    return {"runs": runs, "scaling": scaling}


def format_scaling(result: dict[str, Any]) -> str:
    """Every run's table, then the turns/s per store and worker count with the ratios, errors, leaks and memory."""
    lines = [format_table(run) + "\n" for run in result["runs"]]
    lines += ["scaling (same load, a fresh server each; ratio: to the store's first worker count, "
              "store ratio: to the first store's at the same worker count):",
              f"{'store':<12}{'workers':>8}{'turns/s':>9}{'ratio':>7}{'store ratio':>12}{'errors':>8}{'leaks':>7}"
              f"{'RSS/worker MB':>15}   load average"]
    for row in result["scaling"]:
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
        store_ratio = "" if row.get("store_ratio") is None else f"{row['store_ratio']:.2f}"
        rss = "" if row["rss_mb_per_worker"] is None else f"{row['rss_mb_per_worker']:,.0f}"
        load = row["load_avg"]
        lines.append(f"{row.get('db', ''):<12}{row['workers']:>8}{row['turns_per_s']:>9.2f}{ratio:>7}{store_ratio:>12}"
                     f"{row['errors']:>8}{row['leaks']:>7}{rss:>15}"
                     f"   {' '.join(map(str, load['before']))} -> {' '.join(map(str, load['after']))}")
    return "\n".join(lines)


def format_table(report: dict[str, Any]) -> str:
    health = report["server"]["health"]
    index = health.get("index") or {}
    memory = report["memory"]
    workers = " ".join(f"{w['rss_mb']:,.0f}" for w in memory["workers"]) or "?"
    supervisor = f"; supervisor {memory['supervisor']['rss_mb']:,.0f} MB" if memory["supervisor"] else ""
    lines = [
        f"API load: catalog {report['catalog']!r} ({index.get('items', '?')} items), embedder {report['embedder']!r}, "
        f"{report['workers']} server worker{'s' if report['workers'] > 1 else ''}, "
        f"{report['config']['sessions']} concurrent sessions for {report['wall_s']:.1f} s, up to "
        f"{report['config']['turns']} messages per session, image share {report['config']['image_share']:g}",
        f"server ready after {report['server']['startup_s']:.1f} s; index "
        f"{'built: ' + index.get('reason', '') if index.get('built') else 'loaded from cache'}",
        "",
        f"{'endpoint':<26}{'requests':>9}{'errors':>8}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}",
    ]
    rows = [*report["endpoints"].items(), ("overall", report["overall"])]
    for name, row in rows:
        lines.append(f"{name:<26}{row['requests']:>9}{row['errors']:>8}{row['rps']:>8.1f}{row.get('p50_ms', 0):>9.1f}"
                     f"{row.get('p95_ms', 0):>9.1f}{row.get('max_ms', 0):>9.1f}")
    leak = report["leak_check"]
    lines += [
        "",
        f"errors: {report['errors']['count']} {report['errors']['by_status'] or ''}".rstrip(),
        *(f"  {e['endpoint']}: HTTP {e['status']} {e['detail']}" for e in report["errors"]["examples"]),
        f"leak check: {leak['sessions_checked']} sessions, {leak['turns_checked']} turns read back; "
        f"{leak['mismatches']} mismatches: {'PASS' if leak['pass'] else 'FAIL'} "
        f"({leak['likes_dropped_by_a_new_topic']} likes dropped by a new topic, as the dialogue does)",
        f"turns answered: {report['turns_per_s']:.2f}/s; RSS per worker (MB, under load): {workers}{supervisor}",
        f"CPU ({report['cpus']} cores): server {report['server']['cpu_share']:.0%}, benchmark clients "
        f"{report['client_cpu_share']:.0%}; load average before {' '.join(map(str, report['load_avg']['before']))}, "
        f"after {' '.join(map(str, report['load_avg']['after']))}"
        if report["server"]["cpu_share"] is not None else f"benchmark clients CPU {report['client_cpu_share']:.0%}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", default="demo")
    parser.add_argument("--db", default=None, help="store URL, or several separated by commas to run the load on "
                                                   "each (e.g. SQLite and PostgreSQL); default: a new temporary "
                                                   "SQLite file; the demo catalog is loaded into each")
    parser.add_argument("--embedder", default="aligned")
    parser.add_argument("--sessions", type=int, default=20, help="concurrent simulated sessions (default 20)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--turns", type=int, default=4, help="messages per session before it starts over (default 4)")
    parser.add_argument("--image-share", type=float, default=0.3,
                        help="chance that a message after a recommendation is a picture upload (default 0.3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", default="1",
                        help="server worker counts to measure, comma-separated, e.g. 1,2 (each a fresh `app.py "
                             "--workers N` under the same load; the ratio is to the first); default 1")
    parser.add_argument("--startup-timeout", type=float, default=900.0,
                        help="seconds to wait for the app to be ready (a first run builds the index)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.duration <= 0 or args.turns < 1 or not 0 <= args.image_share <= 1:
        parser.error("--sessions and --turns must be at least 1, --duration positive, --image-share in [0, 1]")
    try:
        workers = [int(part) for part in args.workers.split(",")]
    except ValueError:
        parser.error(f"--workers: give whole numbers separated by commas, e.g. 1,2; got {args.workers!r}")
    if not workers or not all(1 <= w <= MAX_WORKERS for w in workers):
        parser.error(f"--workers: each count must be between 1 and {MAX_WORKERS}, got {args.workers!r}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.db is None and args.catalog != "demo":
        parser.error("a catalog other than the demo needs --db (the store that holds it)")
    db_urls = [part.strip() for part in args.db.split(",")] if args.db is not None else []
    if args.db is not None and not all(db_urls):
        parser.error("--db: give one store URL or several separated by commas, with none empty")
    for number, url in enumerate(db_urls, 1):
        try:
            make_url(url)
        except (ArgumentError, ValueError):  # the URL itself is not echoed: it may hold a password
            parser.error(f"--db: store URL number {number} is not a SQLAlchemy database URL")
    with tempfile.TemporaryDirectory(prefix="api-load-store-") as scratch:
        db_urls = db_urls or [f"sqlite:///{Path(scratch) / 'store.db'}"]
        result = run_stores(args.catalog, db_urls, args.embedder, workers, sessions=args.sessions,
                            duration=args.duration, turns=args.turns, image_share=args.image_share, seed=args.seed,
                            startup_timeout=args.startup_timeout, store_kind="given" if args.db else "temporary")
    print(format_scaling(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0 if all(r["errors"]["count"] == 0 and r["leak_check"]["pass"] for r in result["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
