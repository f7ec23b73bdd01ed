"""Memory under a burst of tiny uploads that decode huge: the server's RSS before, at its peak
and after, with today's limits and with the limits of before, in one run.

    python benchmarks/upload_burst.py [--catalog shapes|demo] [--embedder aligned] [--concurrency 8]
        [--rounds 2] [--settle 5] [--json OUT]

Each message carries 4 one-colour PNGs (a few KB each on the wire) that are as large as the
server's limits allow. Two servers (``python app.py`` in its own process on a loopback port,
each started fresh, rate limits off) take the same burst: ``--concurrency`` messages at once,
``--rounds`` times.

* ``before``: the limits as they were before hardening: 4470 x 4470 pictures (20 MP each, the
  per-image limit, as in the attacker's probe), no per-message pixel budget, every upload
  decoded at full size and at once (``CRS_MAX_MESSAGE_PIXELS``, ``CRS_DECODE_SIDE`` and
  ``CRS_MAX_CONCURRENT_DECODES`` set out of the way);
* ``now``: the defaults: 4 pictures of the largest size the per-message budget lets through
  (40 MP / 4 = 3162 x 3162), decoded two at a time and kept at 1024 px; then the same burst with
  4470 x 4470 pictures, which the budget refuses (413) before decoding.

RSS is sampled every 20 ms from ``/proc/PID/status`` (Linux). Reported per server: RSS before the
burst (after three warm-up messages of 4 small pictures each, so that every part of an image
turn is loaded), the peak, RSS ``--settle`` seconds after the burst and its ratio
to before, the statuses and the message latency. Targets (issue "Security and reliability"):
peak under 1.5 GB with today's limits, and back within 20% of the pre-burst RSS.

``--catalog shapes`` (default) builds the 24-item test catalog in a temporary store (its index
builds in seconds); ``--catalog demo`` uses the demo catalog and ``$CRS_HOME``'s index cache.
The models are the real offline ones (``--embedder aligned``) either way: the images go through
the same reader and encoders as in production.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.api_load import API, Server, say, start_server  # noqa: E402

MB = 1024 * 1024
BEFORE = {"CRS_MAX_MESSAGE_PIXELS": str(10**12), "CRS_DECODE_SIDE": str(10**6),
          "CRS_MAX_CONCURRENT_DECODES": "1000"}


def one_colour_png(side: int, colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(out, "PNG", optimize=True)
    return out.getvalue()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Sampler:
    """The server's RSS every 20 ms, in a thread, while a block runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def burst(server: Server, side: int, concurrency: int, rounds: int) -> dict[str, Any]:
    """``rounds`` times: ``concurrency`` messages at once, each with 4 ``side``-px PNGs."""
    pictures = [one_colour_png(side, colour) for colour in ("red", "green", "blue", "yellow")]

    def message(_: int) -> tuple[int, float]:
        with httpx.Client(base_url=server.url, timeout=600) as client:
            session = client.post(f"{API}/sessions").json()["session_id"]
            started = time.perf_counter()
            response = client.post(f"{API}/sessions/{session}/messages", data={"text": "like these"},
                                   files=[("images", (f"{n}.png", data, "image/png")) for n, data in enumerate(pictures)])
            return response.status_code, time.perf_counter() - started

    results: list[tuple[int, float]] = []
    with ThreadPoolExecutor(concurrency) as pool:
        for _ in range(rounds):
            results += list(pool.map(message, range(concurrency)))
    seconds = sorted(s for _, s in results)
    return {"side": side, "megapixels_per_message": round(4 * side * side / 1e6, 1),
            "bytes_per_message": sum(len(p) for p in pictures),
            "statuses": {str(code): sum(1 for c, _ in results if c == code) for code in sorted({c for c, _ in results})},
            "latency_s": {"p50": round(statistics.median(seconds), 2), "max": round(seconds[-1], 2)}}


def run_server(name: str, args: argparse.Namespace, db_url: str, env: dict[str, str], sides: list[int],
               log_dir: Path) -> dict[str, Any]:
    say(f"[{name}] starting the server ...")
    server = start_server(args.catalog, db_url, args.embedder, 900, log_dir / f"{name}.log", env=env)
    try:
        # Warm-up: ordinary messages of the same shape (4 small pictures), so that "before" is the
        # server's steady state with every code path of an image turn loaded, not its cold start.
        with httpx.Client(base_url=server.url, timeout=120) as client:
            for _ in range(3):
                session = client.post(f"{API}/sessions").json()["session_id"]
                client.post(f"{API}/sessions/{session}/messages", data={"text": "like these"},
                            files=[("images", (f"w{n}.png", one_colour_png(512, c), "image/png"))
                                   for n, c in enumerate(("red", "green", "blue", "yellow"))])
        time.sleep(1)
        before = rss_bytes(server.process.pid)
        out: dict[str, Any] = {"rss_before_mb": round(before / MB), "bursts": []}
        with Sampler(server.process.pid) as sampler:
            for side in sides:
                say(f"[{name}] {args.concurrency} x {args.rounds} messages of 4 x {side}x{side} PNGs ...")
                out["bursts"].append(burst(server, side, args.concurrency, args.rounds))
            time.sleep(args.settle)
        after = rss_bytes(server.process.pid)
        out.update(rss_peak_mb=round(sampler.peak / MB), rss_after_mb=round(after / MB),
                   after_over_before=round(after / before, 3))
        return out
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", default="shapes", choices=["shapes", "demo"])
    parser.add_argument("--embedder", default="aligned")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the burst before RSS is read")
    parser.add_argument("--json", metavar="OUT", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    from crs.uploads import UploadLimits

    limits = UploadLimits()
    now_side = math.isqrt(limits.max_message_pixels // limits.max_images)
    before_side = math.isqrt(limits.max_pixels)  # 4472: the per-image limit, as the probe's 4470
    with tempfile.TemporaryDirectory(prefix="crs-upload-burst-") as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'burst.db'}"
        if args.catalog == "shapes":
            from crs.catalog.ingest import IngestOptions, ingest
            from crs.store import open_store
            from tests.shapes import write_shapes_catalog

            ingest(open_store(db_url), write_shapes_catalog(Path(tmp) / "shapes"), IngestOptions(format="jsonl",
                                                                                                   catalog="shapes"))
        report = {"catalog": args.catalog, "embedder": args.embedder, "concurrency": args.concurrency,
                  "rounds": args.rounds,
                  "before": run_server("before", args, db_url, BEFORE, [before_side], Path(tmp)),
                  "now": run_server("now", args, db_url, {}, [now_side, before_side], Path(tmp))}
    for name in ("before", "now"):
        r = report[name]
        print(f"{name:>6}: RSS before {r['rss_before_mb']} MB, peak {r['rss_peak_mb']} MB, after {r['rss_after_mb']} MB "
              f"(x{r['after_over_before']})")
        for b in r["bursts"]:
            print(f"        4 x {b['side']}px ({b['megapixels_per_message']} MP, {b['bytes_per_message']:,} bytes) "
                  f"per message: statuses {b['statuses']}, latency p50 {b['latency_s']['p50']} s, "
                  f"max {b['latency_s']['max']} s")
    now = report["now"]
    print(f"targets: peak < 1536 MB: {'met' if now['rss_peak_mb'] < 1536 else 'MISSED'}; "
          f"after within 20% of before: {'met' if now['after_over_before'] <= 1.2 else 'MISSED'}; "
          f"peak vs before-hardening: {now['rss_peak_mb'] / max(1, report['before']['rss_peak_mb']):.2f}x")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
