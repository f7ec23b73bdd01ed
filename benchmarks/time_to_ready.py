"""Time from `python app.py` to `"ready": true`, on a fresh CRS_HOME and again with a warm cache, in ONE run.

    python benchmarks/time_to_ready.py [--runs cold,warm] [--no-seed] [--json OUT] [-- APP ARGS...]

What a person sees on a fresh clone: the server is started as a subprocess (``app.py --port N``)
with ``CRS_HOME`` pointing at a new, empty temporary folder, and ``/api/v1/health`` is polled
until it answers ``"ready": true`` (the models and the index are loaded: a chat turn will not
wait). Then the server is stopped and started again on the SAME folder: the warm start. Both
times are printed, with their ratio, and a breakdown by phase: when the process started, when
the server first answered, and when each build stage named in the health answer's ``progress``
(or in the server's log lines "index: <stage>: ...") was first seen.

The cold start uses the vectors shipped in ``assets/demo/vectors``; ``--no-seed`` starts
without them (``CRS_SEED_VECTORS=none``): every item is encoded, about 15 minutes on 2 cores,
so it is not run by default. The folder is deleted at the end unless ``--keep``.

Run it on a quiet machine (``nice`` or not, other processes on the same cores stretch every
figure): each phase is CPU-bound.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
HEALTH = "/api/v1/health"
POLL_S = 0.25
# The server's log line for a build report: "... crs.web.services: index: encoding texts: 10/20 items".
_LOG_STAGE = re.compile(r"index: ([^:]+): \d+/\d+")


@dataclass
class StartTiming:
    """One start of the server: seconds from launching the process."""

    label: str
    answered_s: float | None = None  # the first HTTP answer of /health (any status)
    ready_s: float | None = None  # the first "ready": true
    # CPU seconds the server had used when ready (Linux): on a busy machine the wall times
    # stretch with the other processes' load, this does not, so it says what a quiet one would see.
    cpu_s: float | None = None
    stages: dict[str, float] = field(default_factory=dict)  # build stage -> first seen
    exit_code: int | None = None  # set when the server died before it was ready
    log_tail: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"label": self.label, "answered_s": _round(self.answered_s), "ready_s": _round(self.ready_s),
                "cpu_s": _round(self.cpu_s),
                "stages": {k: _round(v) for k, v in self.stages.items()}, "exit_code": self.exit_code}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_start(label: str, home: Path, app_args: list[str], *, env: dict[str, str] | None = None,
               timeout_s: float = 900.0) -> StartTiming:
    """Start ``app.py`` on ``home`` and time it until ready (or until it dies or times out)."""
    port = free_port()
    environment = {**os.environ, "CRS_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                   **(env or {})}
    timing = StartTiming(label)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), *app_args], cwd=ROOT,
                               env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    reader = threading.Thread(target=_read_log, args=(process, timing, started), daemon=True)
    reader.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2.0) as client:
            while time.perf_counter() - started < timeout_s:
                if process.poll() is not None:
                    timing.exit_code = process.returncode
                    break
                body = _health(client)
                now = time.perf_counter() - started
                if body is not None:
                    timing.answered_s = timing.answered_s or now
                    stage = (body.get("progress") or {}).get("stage") if isinstance(body.get("progress"), dict) else None
                    if stage:
                        timing.stages.setdefault(stage, now)
                    if body.get("ready") is True:
                        timing.ready_s = now
                        timing.cpu_s = cpu_seconds(process.pid)
                        break
                time.sleep(POLL_S)
    finally:
        _stop(process)
        reader.join(timeout=5)
    return timing


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` and its threads so far (None off Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _health(client: httpx.Client) -> dict | None:  # type: ignore[type-arg]
    """The health answer, or None while the server does not answer (not listening yet, or busy)."""
    try:
        response = client.get(HEALTH)
    except httpx.HTTPError:
        return None
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _read_log(process: subprocess.Popen, timing: StartTiming, started: float) -> None:  # type: ignore[type-arg]
    assert process.stdout is not None
    for line in process.stdout:
        timing.log_tail = (timing.log_tail + [line.rstrip()])[-20:]
        match = _LOG_STAGE.search(line)
        if match:
            timing.stages.setdefault(match.group(1), time.perf_counter() - started)


def _stop(process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)  # its own session: uvicorn and its threads stop together
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def format_table(timings: list[StartTiming]) -> str:
    lines = [f"{'start':<22} {'first answer':>13} {'ready':>9} {'CPU to ready':>13}", "-" * 60]
    for t in timings:
        answered = f"{t.answered_s:.1f} s" if t.answered_s is not None else "-"
        ready = f"{t.ready_s:.1f} s" if t.ready_s is not None else ("died" if t.exit_code is not None else "timeout")
        cpu = f"{t.cpu_s:.1f} s" if t.cpu_s is not None else "-"
        lines.append(f"{t.label:<22} {answered:>13} {ready:>9} {cpu:>13}")
    done = [t for t in timings if t.ready_s]
    if len(done) == 2:
        lines.append(f"cold / warm: {done[0].ready_s / done[1].ready_s:.1f}x")  # type: ignore[operator]
    for t in timings:
        if t.stages:
            seen = ", ".join(f"{stage} at {s:.1f} s" for stage, s in sorted(t.stages.items(), key=lambda kv: kv[1]))
            lines.append(f"{t.label}: {seen}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-seed", action="store_true",
                        help="cold start without the shipped vectors (encodes every item: ~15 minutes)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for each start (default 900)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary CRS_HOME (its path is printed)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("app_args", nargs="*", help="after --: arguments for app.py (e.g. --catalog NAME)")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="crs-ready-"))
    env = {"CRS_SEED_VECTORS": "none"} if args.no_seed else {}
    timings: list[StartTiming] = []
    try:
        cold = "fresh (no seed)" if args.no_seed else "fresh CRS_HOME"
        for label in (cold, "warm cache"):
            print(f"starting app.py ({label}) on CRS_HOME={home} ...", file=sys.stderr, flush=True)
            timing = time_start(label, home, args.app_args, env=env, timeout_s=args.timeout)
            timings.append(timing)
            if timing.ready_s is None:
                print("\n".join(timing.log_tail), file=sys.stderr)
                break
    finally:
        if args.keep:
            print(f"kept {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
    print(format_table(timings))
    if args.json:
        result = {"benchmark": "time_to_ready", "seed": not args.no_seed, "app_args": args.app_args,
                  "cpus": os.cpu_count(), "runs": [t.to_json() for t in timings]}
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if len(timings) == 2 and all(t.ready_s is not None for t in timings) else 1


if __name__ == "__main__":
    sys.exit(main())
