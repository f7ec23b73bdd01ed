"""FAISS (flat, HNSW, IVF) against Milvus (FLAT, HNSW, IVF_FLAT) behind the same VectorIndex, in ONE run.

    python benchmarks/vector_engines.py [--demo auto|none|FOLDER] [--sizes 100000,1000000] [--dim 384]
        [--queries 200] [--milvus-queries 50] [--milvus-uri URI ...] [--server-pid PID]
        [--engines flat,hnsw,ivf,milvus-flat,milvus-hnsw,milvus-ivf] [--filter-sizes 100,1000,10000]
        [--json OUT]

Every engine is built through the project's classes (``FaissIndex.build``, ``MilvusIndex.build``)
and queried through ``VectorIndex.search``, one query per call as a live user sends them (k=10).
Per dataset and engine it prints: build time (for Milvus: insert, flush and the wait until every
row is indexed), memory (RSS growth of this process over the build, and per item; for a Milvus
*server* that is only the client, so ``--server-pid`` adds the server's RSS growth), stored bytes
(FAISS's serialized index; a milvus-lite folder's size on disk), single-query p50/p95, and
recall@10 against exact numpy search. Then filtered-search p50 for allowed sets of the
``--filter-sizes`` (Milvus: an ``id in [...]`` expression of that many ids), and ratios of each
Milvus engine to its FAISS counterpart, measured in the same run.

Datasets:

* ``demo``: the demo catalog's real vectors from the index cache (``$CRS_HOME/index/demo/*/``,
  built by ``crs index``): the text space as the index, and the joint *image* vectors of
  ``--queries`` random items as queries (a picture looking for items, the cross-modal query the
  app serves; they are not in the text index, so no query finds itself);
* ``synthetic-N``: N clustered vectors (benchmarks/index_scaling.py's Gaussian mixture: ~100
  items per topic, uneven topic sizes, queries are held-out perturbed draws), so recall is
  meaningful, unlike uniform noise where no neighbourhood structure exists.

Milvus: ``--milvus-uri`` (repeatable: each Milvus engine runs at each URI, labelled ``/lite`` or
``/server``) defaults to a fresh milvus-lite folder in a temporary directory. milvus-lite 3.x is
Python and runs inside this process (its memory is in the RSS figures); a server URI
(``http://host:19530``) measures a real Milvus. Milvus queries are capped at ``--milvus-queries``
per dataset when they are slow (milvus-lite does O(n) Python work per search: see the notes).
Targets (only for sizes >= 1M): a Milvus engine with recall@10 >= 0.95 at p50 <= 5 ms.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from index_scaling import MixtureSpec, mixture_data, numpy_topk, recall_at_k, threads  # noqa: E402

from retrieval.index_kinds import load_index  # noqa: E402
from retrieval.milvus_index import MilvusIndex, check_uri, connect  # noqa: E402
from retrieval.vector_index import FaissIndex, VectorIndex, as_matrix  # noqa: E402

K = 10
WARMUP = 3
FAISS_ENGINES = {"flat": "flat", "hnsw": "hnsw", "ivf": "ivf"}
MILVUS_ENGINES = {"milvus-flat": "FLAT", "milvus-hnsw": "HNSW", "milvus-ivf": "IVF_FLAT"}
COUNTERPART = {"milvus-flat": "flat", "milvus-hnsw": "hnsw", "milvus-ivf": "ivf"}
TARGET_SIZE, TARGET_RECALL, TARGET_P50_MS = 1_000_000, 0.95, 5.0
# A full gc before each RSS reading costs ~0.6 s in a process holding pymilvus; below this many
# items the figures are noise anyway, so small runs (the tests) skip it.
COLLECT_FROM = 10_000


@dataclass
class Row:
    data: str
    size: int
    engine: str  # flat, hnsw, ivf, or milvus-<type>/lite, milvus-<type>/server
    build_s: float
    rss_mb: float  # this process's RSS growth over the build (+ the server's with --server-pid)
    bytes_per_item: float  # rss growth / items
    stored_mb: float | None  # serialized FAISS index, or the milvus-lite folder on disk
    p50_ms: float
    p95_ms: float
    queries: int
    recall_at_10: float
    filtered_p50_ms: dict[str, float]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rss_bytes(pid: int | str = "self") -> int:
    """Resident memory from /proc (Linux), 0 where there is none."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


# -- datasets ------------------------------------------------------------------------------------


def demo_folder(choice: str) -> Path | None:
    if choice == "none":
        return None
    if choice != "auto":
        return Path(choice)
    home = Path(os.environ.get("CRS_HOME") or Path.home() / ".crs")
    found = sorted(p.parent for p in (home / "index" / "demo").glob("*/text.faiss"))
    return found[0] if found else None


def demo_data(folder: Path, n_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(text vectors of every item, image vectors of ``n_queries`` random items) from the cache."""
    text = load_index(folder / "text.faiss", {})
    items = text.vectors(text.ids)
    rng = np.random.default_rng(seed)
    if (folder / "image.faiss").exists():
        image = load_index(folder / "image.faiss", {})
        picked = rng.choice(image.ids, min(n_queries, image.size), replace=False)
        return items, image.vectors(picked)
    # A catalog without pictures: its own text vectors, perturbed, stand in for queries.
    queries = items[rng.choice(len(items), min(n_queries, len(items)), replace=False)]
    return items, as_matrix(queries + 0.05 * rng.standard_normal(queries.shape).astype(np.float32))


# -- engines -------------------------------------------------------------------------------------


def build(engine: str, items: np.ndarray, uri: str | None) -> VectorIndex:
    ids = np.arange(len(items), dtype=np.int64)
    if engine in FAISS_ENGINES:
        with threads(2):
            return FaissIndex.build(items, ids, kind=FAISS_ENGINES[engine])  # type: ignore[arg-type]
    assert uri is not None
    return MilvusIndex.build(items, ids, uri, index_type=MILVUS_ENGINES[engine])


def single_query_ms(index: VectorIndex, queries: np.ndarray, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-query milliseconds (one query per call, after a short warm-up) and the ids found."""
    for q in queries[:WARMUP]:
        index.search(q, K, allowed_ids=allowed)
    times = np.empty(len(queries))
    found = np.empty((len(queries), K), dtype=np.int64)
    for i, q in enumerate(queries):
        start = time.perf_counter()
        found[i] = index.search(q, K, allowed_ids=allowed).ids[0]
        times[i] = time.perf_counter() - start
    return times * 1000.0, found


def is_server(uri: str) -> bool:
    return uri.startswith(("http", "tcp", "grpc"))


def stored_mb(index: VectorIndex) -> float | None:
    if isinstance(index, FaissIndex):
        return faiss.serialize_index(index.index).size / 1e6
    assert isinstance(index, MilvusIndex)
    return None if is_server(index.uri) else folder_bytes(Path(index.uri)) / 1e6


def drop(index: VectorIndex) -> None:
    """Free the engine before the next one is measured (a Milvus collection is dropped)."""
    if isinstance(index, MilvusIndex):
        index.client.drop_collection(index.collection)


def bench_engine(data: str, engine: str, uri: str | None, items: np.ndarray, queries: np.ndarray, exact: np.ndarray,
                 args: argparse.Namespace) -> Row:
    server = args.server_pid if uri is not None and is_server(uri) else None
    collect = gc.collect if len(items) >= COLLECT_FROM else (lambda: 0)
    collect()
    before, server_before = rss_bytes(), rss_bytes(server) if server else 0
    start = time.perf_counter()
    index = build(engine, items, uri)
    build_s = time.perf_counter() - start
    collect()
    grown = rss_bytes() - before + ((rss_bytes(server) - server_before) if server else 0)
    n_queries = len(queries) if engine in FAISS_ENGINES else min(len(queries), args.milvus_queries)
    with threads(1):  # one query is one thread's work (index_scaling.py measured why)
        ms, found = single_query_ms(index, queries[:n_queries])
        filtered = {}
        rng = np.random.default_rng(len(items))
        for size in args.filter_sizes:
            if size < len(items):
                allowed = rng.choice(len(items), size, replace=False).astype(np.int64)
                filtered[str(size)] = float(np.percentile(single_query_ms(index, queries[:args.filter_queries], allowed)[0], 50))
    label = engine if uri is None else f"{engine}/{'server' if is_server(uri) else 'lite'}"
    row = Row(data, len(items), label, build_s, grown / 1e6, grown / len(items), stored_mb(index),
              float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), n_queries,
              recall_at_k(found, exact[:n_queries]), filtered)
    drop(index)
    del index
    log(f"{data} {label}: build {build_s:.1f}s p50 {row.p50_ms:.2f} ms recall {row.recall_at_10:.3f}")
    return row


def bench_dataset(data: str, items: np.ndarray, queries: np.ndarray, args: argparse.Namespace) -> list[Row]:
    items, queries = as_matrix(items), as_matrix(queries)
    with threads(2):
        exact = numpy_topk(items, queries, K)
    runs: list[tuple[str, str | None]] = []
    for engine in args.engines:
        runs += [(engine, None)] if engine in FAISS_ENGINES else [(engine, uri) for uri in args.milvus_uri]
    for uri in {uri for _, uri in runs if uri is not None}:
        # Open the connection (for milvus-lite: start its in-process server) before any build, so
        # the first Milvus engine's memory is its data's, not the server's code and threads.
        connect(uri)
    return [bench_engine(data, engine, uri, items, queries, exact, args) for engine, uri in runs]


# -- report --------------------------------------------------------------------------------------


def ratios(rows: list[Row]) -> list[dict[str, Any]]:
    """Each Milvus engine against its FAISS counterpart on the same data: >1 = Milvus slower/bigger."""
    by_key = {(r.data, r.engine): r for r in rows}
    out = []
    for row in rows:
        base = by_key.get((row.data, COUNTERPART.get(row.engine.partition("/")[0], "")))
        if base is None:
            continue
        out.append({"data": row.data, "engine": row.engine, "vs": base.engine,
                    "p50": row.p50_ms / base.p50_ms, "p95": row.p95_ms / base.p95_ms,
                    "build": row.build_s / base.build_s if base.build_s else None,
                    "rss": row.rss_mb / base.rss_mb if base.rss_mb > 0 else None,
                    "recall_diff": row.recall_at_10 - base.recall_at_10})
    return out


def targets(rows: list[Row]) -> dict[str, object]:
    big = [r for r in rows if r.size >= TARGET_SIZE and r.engine.partition("/")[0] in MILVUS_ENGINES]
    passing = [r.engine for r in big if r.recall_at_10 >= TARGET_RECALL and r.p50_ms <= TARGET_P50_MS]
    return {"evaluated": bool(big), "recall_at_10": TARGET_RECALL, "p50_ms": TARGET_P50_MS,
            "passing": passing, "verdict": ("PASS" if passing else "FAIL") if big else "not run (no size >= 1M)"}


def print_report(rows: list[Row], report: dict[str, Any]) -> None:
    sizes = sorted({s for r in rows for s in r.filtered_p50_ms}, key=int)
    header = (f"{'data':>17} {'engine':>18} {'build s':>8} {'RSS MB':>8} {'B/item':>7} {'stored MB':>9} "
              f"{'p50 ms':>8} {'p95 ms':>8} {'queries':>7} {'recall@10':>9}"
              + "".join(f" {'filt' + s:>10}" for s in sizes))
    print(header)
    print("-" * len(header))
    for r in rows:
        stored = "-" if r.stored_mb is None else f"{r.stored_mb:.1f}"
        print(f"{r.data:>17} {r.engine:>18} {r.build_s:8.2f} {r.rss_mb:8.1f} {r.bytes_per_item:7.0f} {stored:>9} "
              f"{r.p50_ms:8.3f} {r.p95_ms:8.3f} {r.queries:7d} {r.recall_at_10:9.3f}"
              + "".join(f" {r.filtered_p50_ms[s]:10.2f}" if s in r.filtered_p50_ms else f" {'-':>10}" for s in sizes))
    print("\nratios, Milvus / FAISS counterpart, same run (filt<N> = p50 ms of a search filtered to N ids):")
    for q in report["ratios"]:
        build = "-" if q["build"] is None else f"{q['build']:.1f}x"
        rss = "-" if q["rss"] is None else f"{q['rss']:.1f}x"
        print(f"  {q['data']:>17} {q['engine']:>18} vs {q['vs']:<5} p50 {q['p50']:.1f}x  p95 {q['p95']:.1f}x  "
              f"build {build}  rss {rss}  recall {q['recall_diff']:+.3f}")
    t = report["targets"]
    print(f"\ntarget (>= 1M items): recall@10 >= {t['recall_at_10']} at p50 <= {t['p50_ms']} ms: {t['verdict']}"
          + (f" ({', '.join(t['passing'])})" if t["passing"] else ""))
    print(f"versions: {report['versions']}")


def versions(uris: list[str]) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"faiss": faiss.__version__}
    for package in ("pymilvus", "milvus-lite"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    for uri in filter(is_server, uris):
        out[f"milvus server {uri}"] = str(connect(uri).get_server_version())
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ints = lambda text: [int(x) for x in text.split(",") if x.strip()]  # noqa: E731
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", default="auto", help="auto (the cached demo index), none, or an index folder")
    parser.add_argument("--sizes", type=ints, default=[100_000], help="synthetic sizes, e.g. 100000,1000000 ('' = none)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--milvus-queries", type=int, default=50, help="at most this many queries per Milvus engine")
    parser.add_argument("--filter-sizes", type=ints, default=[100, 1000, 10_000])
    parser.add_argument("--filter-queries", type=int, default=10)
    parser.add_argument("--engines", default=",".join([*FAISS_ENGINES, *MILVUS_ENGINES]))
    parser.add_argument("--milvus-uri", action="append", default=[],
                        help="a milvus-lite .db path or a server URL (repeatable); default: a new milvus-lite folder in a temp dir")
    parser.add_argument("--server-pid", type=int, default=None, help="a local Milvus server's pid, to add its RSS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    args.engines = [e for e in args.engines.split(",") if e]
    unknown = set(args.engines) - set(FAISS_ENGINES) - set(MILVUS_ENGINES)
    if unknown:
        parser.error(f"unknown engines {sorted(unknown)}; choose from {', '.join([*FAISS_ENGINES, *MILVUS_ENGINES])}")
    return args


def make_report(rows: list[Row], args: argparse.Namespace, started: float) -> dict[str, Any]:
    return {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "rows": [asdict(r) for r in rows], "ratios": ratios(rows), "targets": targets(rows),
            "versions": versions(args.milvus_uri), "wall_s": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    rows: list[Row] = []

    def measured(data: str, items: np.ndarray, queries: np.ndarray) -> None:
        rows.extend(bench_dataset(data, items, queries, args))
        if args.json is not None:  # after every dataset: a long run stopped later keeps what it measured
            args.json.write_text(json.dumps(make_report(rows, args, started), indent=2))

    with tempfile.TemporaryDirectory(prefix="crs-milvus-", ignore_cleanup_errors=True) as tmp:
        args.milvus_uri = [check_uri(uri) for uri in args.milvus_uri or [str(Path(tmp) / "bench.db")]]
        folder = demo_folder(args.demo)
        if folder is not None:
            log(f"demo vectors from {folder}")
            measured("demo", *demo_data(folder, args.queries, args.seed))
        for size in args.sizes:
            log(f"synthetic {size} x {args.dim}")
            items, queries = mixture_data(np.random.default_rng(args.seed), size, args.queries, args.dim, MixtureSpec())
            measured(f"synthetic-{size}", items, queries)
            del items
        report = make_report(rows, args, started)
    print_report(rows, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
