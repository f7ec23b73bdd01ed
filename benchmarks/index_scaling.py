"""Scaling of nearest-neighbour search: numpy matmul vs FAISS Flat vs FAISS HNSW, in ONE run.

    python benchmarks/index_scaling.py [--sizes 10000,100000,1000000] [--dim 384] [--queries 200]
        [--threads 2] [--single-threads 1] [--ef-search N] [--ef-sweep 16,32,...]
        [--points-per-cluster 100] [--seed 0] [--json OUT]

For every size and backend it prints build time, index memory, single-query latency p50/p95
(k=10, one query per call, as a live user sends them), batch throughput (one call with all the
queries) and recall@10 against the exact results of Flat. Backends:

* numpy: ``queries @ matrix.T`` then ``argpartition`` for the top 10 (no index, no build);
* flat: ``FaissIndex.build(kind="flat")`` (exact inner product);
* hnsw: ``FaissIndex.build(kind="hnsw")`` with the module's M / efConstruction / efSearch, unless
  ``--ef-search`` is given. At the largest size an efSearch sweep reuses the built graph, so one
  run also says which efSearch would meet the targets.

Threads: builds and batch calls use ``--threads`` (default 2, the machine's cores). Single-query
latency uses ``--single-threads`` (default 1): one query is one thread's work in FAISS (and a
gemv in numpy), and a second OpenMP/BLAS thread only adds hand-offs, which on a busy 2-core box
cost a scheduler slice (measured: HNSW single query ~0.3 ms on 1 thread, ~8-12 ms on 2 while
another job ran). HNSW rows also show their single-query p50 at ``--threads`` to make that cost
visible. A serving process should therefore lower the FAISS threads itself.

Times go through ``FaissIndex.search`` as the app calls it, so they include its per-call input
copy + L2 normalisation; the numpy baseline gets already-normalised queries and pays neither.
The README figures (2026-11-23) were taken when the module set ``distance_compute_blas_threshold
= 16`` for every call; in faiss 1.15.1 that sends even a single 384-d query down the BLAS path,
so Flat rows also show their single-query p50 at faiss's default (128000). Since then
``FaissIndex.search`` picks the threshold per call (default for fewer than 16 queries), so the
main Flat column now measures what the extra column did and the extra column is redundant (to
be removed at the next full run).

Synthetic data (why not uniform noise): uniformly random unit vectors have no neighbourhood
structure (every point is about equally far from every other), which is the worst case for
graph indexes and unlike real embeddings, whose items form topical clusters. So items are a
Gaussian mixture: ``n / points_per_cluster`` centres, random unit vectors (nearly orthogonal in
384-d); cluster sizes are uneven (log-normal weights, like catalog categories); a point is
``normalise(centre + noise * g / sqrt(dim))`` with ``g ~ N(0, I)``, so with ``noise = 1`` its
cosine to its centre is ~0.71 and to a same-cluster item ~0.5 (a chosen level of topical
similarity, not one fitted to real embeddings; the run prints the query-to-neighbour cosines).
The within-cluster noise is isotropic and full-dimensional, while real embeddings have a lower
intrinsic dimension, which likely makes this harder for HNSW than real data. Clusters average
100 items at every n, so growing n adds topics rather than crowding them; recall depends on this
choice (larger clusters are closer to the uniform case): try ``--points-per-cluster``.
Queries are fresh held-out draws of the same mixture (never indexed) moved by a further
``query_noise`` perturbation, like a user's paraphrase of an item. For honesty the run also
reports HNSW recall on uniformly random unit vectors at the smallest size, labelled worst case.

Data are generated in float32 chunks, so 1M x 384 costs 1.5 GB and never a float64 copy.
Targets (PASS/FAIL, only when 1M is among the sizes): HNSW p50 < 2 ms and recall@10 >= 0.95.

Long on purpose: one script is the whole benchmark (data, every engine, recall and timing, report), so it runs and reads on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval import vector_index  # noqa: E402
from retrieval.vector_index import FaissIndex  # noqa: E402

K = 10
CHUNK_ROWS = 65_536  # rows generated per step: bounds the float32 temporaries to ~100 MB at 384-d
SCORE_CELLS = 1 << 26  # numpy batch: at most this many scores at once (256 MB float32)
WARMUP = 3  # untimed first calls: page faults and lazy init would otherwise land in p95
TARGET_SIZE = 1_000_000
# faiss 1.15.1's own default; vector_index.py lowers it to 16 for batches (see blas_threshold).
FAISS_DEFAULT_BLAS_THRESHOLD = 128_000
TARGET_P50_MS = 2.0
TARGET_RECALL = 0.95

Matrix = NDArray[np.float32]
Ids = NDArray[np.int64]
SearchFn = Callable[[Matrix], Ids]


@dataclass(frozen=True)
class MixtureSpec:
    points_per_cluster: int = 100
    noise: float = 1.0  # norm of a point's offset from its unit centre
    query_noise: float = 0.5  # extra offset of a query from its held-out point
    weight_sigma: float = 1.0  # log-normal spread of cluster sizes


@dataclass
class Row:
    size: int
    backend: str
    data: str  # "mixture" or "uniform"
    build_s: float | None
    memory_bytes: int
    memory_method: str
    p50_ms: float
    p95_ms: float
    batch_qps: float
    recall_at_10: float | None  # against Flat's exact top-10; None for Flat itself
    ef_search: int | None = None
    p50_ms_batch_threads: float | None = None  # hnsw only: single-query p50 at the batch thread count
    p50_ms_default_blas: float | None = None  # flat only: single-query p50 at faiss's default BLAS threshold


def log(message: str) -> None:
    """Progress on stderr, so a 10-minute run shows where it is without mixing into the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def normalise_rows(matrix: Matrix) -> None:
    """In place, float32 throughout (numpy 2 would promote to float64 on a float64 scalar)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.maximum(norms, np.float32(1e-12), out=norms)
    matrix /= norms


def unit_gaussian(rng: np.random.Generator, n: int, dim: int) -> Matrix:
    """Uniformly random unit vectors (normalised isotropic Gaussians), in chunks."""
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, CHUNK_ROWS):
        block = out[start : start + CHUNK_ROWS]
        block[:] = rng.standard_normal(block.shape, dtype=np.float32)
        normalise_rows(block)
    return out


def sample_mixture(
    rng: np.random.Generator, centres: Matrix, weights: NDArray[np.float64], n: int, noise: float
) -> Matrix:
    """n unit points, each near a centre drawn by `weights`; chunked so memory stays ~1x the output."""
    dim = centres.shape[1]
    scale = np.float32(noise / np.sqrt(dim))  # so the offset's norm is ~noise whatever the dim
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, CHUNK_ROWS):
        block = out[start : start + CHUNK_ROWS]
        labels = rng.choice(len(centres), size=len(block), p=weights)
        block[:] = rng.standard_normal(block.shape, dtype=np.float32)
        block *= scale
        block += centres[labels]
        normalise_rows(block)
    return out


def mixture_data(rng: np.random.Generator, n: int, n_queries: int, dim: int, spec: MixtureSpec) -> tuple[Matrix, Matrix]:
    """(items, queries); queries are held-out draws of the same mixture, perturbed once more."""
    n_clusters = max(1, n // spec.points_per_cluster)
    centres = unit_gaussian(rng, n_clusters, dim)
    weights = rng.lognormal(0.0, spec.weight_sigma, n_clusters)
    weights /= weights.sum()
    items = sample_mixture(rng, centres, weights, n, spec.noise)
    held_out = sample_mixture(rng, centres, weights, n_queries, spec.noise)
    held_out += rng.standard_normal(held_out.shape, dtype=np.float32) * np.float32(spec.query_noise / np.sqrt(dim))
    normalise_rows(held_out)
    return items, held_out


def numpy_topk(matrix: Matrix, queries: Matrix, k: int = K) -> Ids:
    """Exact top-k by brute force; query blocks bound the score matrix (a 200 x 1M one is 800 MB)."""
    step = max(1, SCORE_CELLS // len(matrix))
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), step):
        scores = queries[start : start + step] @ matrix.T
        top = np.argpartition(scores, -k, axis=1)[:, -k:]  # unordered top k, O(n) not O(n log n)
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        out[start : start + step] = np.take_along_axis(top, order, axis=1)
    return out  # positions; the benchmark's ids are positions


def faiss_search(index: FaissIndex) -> SearchFn:
    return lambda queries: index.search(queries, K).ids


def single_query_ms(search: SearchFn, queries: Matrix) -> NDArray[np.float64]:
    """Latency of one query per call, as a live user sends them."""
    for i in range(min(WARMUP, len(queries))):
        search(queries[i : i + 1])
    times = np.empty(len(queries))
    for i in range(len(queries)):
        start = time.perf_counter()
        search(queries[i : i + 1])
        times[i] = time.perf_counter() - start
    return times * 1000.0


def batch_run(search: SearchFn, queries: Matrix) -> tuple[float, Ids]:
    """Queries/s of one call with all queries (best of 2: the first may pay lazy init), and its ids."""
    best = np.inf
    ids = np.empty((0, K), dtype=np.int64)
    for _ in range(2):
        start = time.perf_counter()
        ids = search(queries)
        best = min(best, time.perf_counter() - start)
    return len(queries) / best, ids


def recall_at_k(found: Ids, exact: Ids) -> float:
    hits = sum(len(np.intersect1d(f[f >= 0], e)) for f, e in zip(found, exact))
    return hits / exact.size


def faiss_bytes(index: FaissIndex) -> int:
    """Serialized size: vectors + graph + id map, what the process holds (within a few %)."""
    return int(faiss.serialize_index(index.index).size)


@contextlib.contextmanager
def ef_search(value: int) -> Iterator[None]:
    """FaissIndex reads the module constant at each search; patch it here rather than change the
    module, and restore it, so the reported defaults stay the module's own."""
    saved = vector_index.HNSW_EF_SEARCH
    vector_index.HNSW_EF_SEARCH = value
    try:
        yield
    finally:
        vector_index.HNSW_EF_SEARCH = saved


@dataclass(frozen=True)
class Setup:
    ef_search: int  # for the reported HNSW rows
    single_threads: int  # OpenMP/BLAS threads while timing one query per call
    batch_threads: int  # ... while building and timing the batch call


def measure(size: int, backend: str, data: str, search: SearchFn, queries: Matrix, setup: Setup) -> tuple[Row, Ids]:
    """Latency and throughput; build/memory/recall are filled in by the caller."""
    with threads(setup.single_threads):
        ms = single_query_ms(search, queries)
    with threads(setup.batch_threads):
        qps, ids = batch_run(search, queries)
    row = Row(size, backend, data, None, 0, "", float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), qps, None)
    return row, ids


def build(vectors: Matrix, kind: str, setup: Setup) -> tuple[FaissIndex, float]:
    with threads(setup.batch_threads):
        start = time.perf_counter()
        index = FaissIndex.build(vectors, np.arange(len(vectors), dtype=np.int64), kind=kind)  # type: ignore[arg-type]
        return index, time.perf_counter() - start


def bench_size(
    size: int, items: Matrix, queries: Matrix, setup: Setup, sweep: list[int]
) -> tuple[list[Row], list[dict[str, float]], dict[str, float]]:
    """All three backends on one data set; Flat is freed before HNSW is built to cap peak memory."""
    log(f"{size:,}: numpy")
    numpy_row, numpy_ids = measure(size, "numpy", "mixture", lambda q: numpy_topk(items, q), queries, setup)
    numpy_row.build_s, numpy_row.memory_bytes, numpy_row.memory_method = None, int(items.nbytes), "matrix nbytes"

    log(f"{size:,}: flat build")
    flat, flat_build_s = build(items, "flat", setup)
    log(f"{size:,}: flat search")
    flat_row, exact = measure(size, "flat", "mixture", faiss_search(flat), queries, setup)
    flat_row.build_s, flat_row.memory_bytes, flat_row.memory_method = flat_build_s, faiss_bytes(flat), "serialize_index"
    with blas_threshold(FAISS_DEFAULT_BLAS_THRESHOLD), threads(setup.single_threads):
        flat_row.p50_ms_default_blas = float(np.percentile(single_query_ms(faiss_search(flat), queries), 50))
    numpy_row.recall_at_10 = recall_at_k(numpy_ids, exact)  # sanity: ~1.0 (ties may differ)
    cosines = neighbour_cosines(items, queries, exact)
    del flat

    log(f"{size:,}: hnsw build")
    hnsw, hnsw_build_s = build(items, "hnsw", setup)
    log(f"{size:,}: hnsw search (efSearch {setup.ef_search})")
    with ef_search(setup.ef_search):
        hnsw_row, found = measure(size, "hnsw", "mixture", faiss_search(hnsw), queries, setup)
        hnsw_row.p50_ms_batch_threads = p50_with(setup.batch_threads, faiss_search(hnsw), queries)
    hnsw_row.build_s, hnsw_row.memory_bytes, hnsw_row.memory_method = hnsw_build_s, faiss_bytes(hnsw), "serialize_index"
    hnsw_row.recall_at_10, hnsw_row.ef_search = recall_at_k(found, exact), setup.ef_search
    swept = [sweep_point(hnsw, queries, exact, value, setup) for value in sweep]
    return [numpy_row, flat_row, hnsw_row], swept, cosines


def neighbour_cosines(items: Matrix, queries: Matrix, exact: Ids) -> dict[str, float]:
    """How close the true neighbours are: shows what the synthetic data look like to a reader."""
    cos = np.einsum("qkd,qd->qk", items[exact], queries)
    return {"top1_mean": float(cos[:, 0].mean()), "top10_mean": float(cos[:, -1].mean())}


def p50_with(n_threads: int, search: SearchFn, queries: Matrix) -> float:
    """Single-query p50 with the batch thread count: shows what an app that never lowers the
    OpenMP threads pays (a second thread has no work for one query, but its hand-offs cost)."""
    with threads(n_threads):
        return float(np.percentile(single_query_ms(search, queries), 50))


def sweep_point(hnsw: FaissIndex, queries: Matrix, exact: Ids, value: int, setup: Setup) -> dict[str, float]:
    log(f"efSearch sweep: {value}")
    with ef_search(value):
        with threads(setup.single_threads):
            ms = single_query_ms(faiss_search(hnsw), queries)
        with threads(setup.batch_threads):
            found = hnsw.search(queries, K).ids
    return {"ef_search": value, "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "recall_at_10": recall_at_k(found, exact)}


def uniform_worst_case(rng: np.random.Generator, size: int, n_queries: int, dim: int, setup: Setup) -> Row:
    """HNSW on structureless unit vectors: a floor for recall, not a realistic figure."""
    log(f"{size:,}: uniform worst case")
    items, queries = unit_gaussian(rng, size, dim), unit_gaussian(rng, n_queries, dim)
    flat, _ = build(items, "flat", setup)
    with threads(setup.batch_threads):
        exact = flat.search(queries, K).ids
    hnsw, build_s = build(items, "hnsw", setup)
    with ef_search(setup.ef_search):
        row, found = measure(size, "hnsw", "uniform", faiss_search(hnsw), queries, setup)
    row.build_s, row.memory_bytes, row.memory_method = build_s, faiss_bytes(hnsw), "serialize_index"
    row.recall_at_10, row.ef_search = recall_at_k(found, exact), setup.ef_search
    return row


@contextlib.contextmanager
def blas_threshold(value: int) -> Iterator[None]:
    """Temporarily set faiss's BLAS switch. In faiss 1.15.1 it is no longer a query count: with the
    module's 16 even ONE 384-d query takes the BLAS path (measured: off below ~100, on above
    ~1000), which is slower for a single query than the SIMD scan the 128000 default picks."""
    saved = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = value
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = saved


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """FAISS via OpenMP, and numpy's own OpenBLAS too when threadpoolctl is there, so the numpy
    baseline never gets more (or fewer) cores than FAISS."""
    saved = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=n, user_api="blas")
    try:
        with limits:
            yield
    finally:
        faiss.omp_set_num_threads(saved)


def threads_note(single: int, batch: int) -> str:
    try:
        import threadpoolctl  # noqa: F401
        numpy_note = "numpy BLAS limited alike (threadpoolctl)"
    except ImportError:
        numpy_note = "numpy BLAS threads left at its default (no threadpoolctl)"
    return f"faiss OpenMP threads: single queries {single}, batch and build {batch}; {numpy_note}"


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[Row], batch_threads: int) -> None:
    alt_threads, alt_blas = f"p50@{batch_threads}thr", "p50@blas128k"
    header = (f"{'size':>9} {'data':>7} {'backend':>7} {'build s':>8} {'memory MB':>10} {'p50 ms':>8} {'p95 ms':>8} "
              f"{alt_threads:>9} {alt_blas:>12} {'batch q/s':>10} {'recall@10':>9}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r.size:>9,} {r.data:>7} {r.backend:>7} {fmt(r.build_s, '8.2f')} {r.memory_bytes / 1e6:>10.1f} "
              f"{r.p50_ms:>8.3f} {r.p95_ms:>8.3f} {fmt(r.p50_ms_batch_threads, '9.3f')} {fmt(r.p50_ms_default_blas, '12.3f')} "
              f"{r.batch_qps:>10.0f} {fmt(r.recall_at_10, '9.4f')}")
    print("memory: numpy = matrix nbytes; flat/hnsw = faiss.serialize_index size (vectors + graph + id map)")
    print(f"p50/p95: one query per call, --single-threads threads, module settings. Extra columns: {alt_threads} = hnsw")
    print(f"  single-query p50 at --threads; {alt_blas} = flat single-query p50 with faiss's default")
    print(f"  distance_compute_blas_threshold ({FAISS_DEFAULT_BLAS_THRESHOLD}) instead of the module's "
          f"{faiss.cvar.distance_compute_blas_threshold}")
    print("recall@10 is against Flat's exact top-10 (numpy's is a sanity check; flat is the reference)")


def ratios(rows: list[Row]) -> list[dict[str, float]]:
    """p50 speedups per size: >1 means the second-named backend is faster than the first."""
    out = []
    for size in sorted({r.size for r in rows if r.data == "mixture"}):
        p50 = {r.backend: r.p50_ms for r in rows if r.size == size and r.data == "mixture"}
        flat_default = next(r.p50_ms_default_blas for r in rows if r.size == size and r.data == "mixture" and r.backend == "flat")
        assert flat_default is not None
        out.append({"size": size, "flat_vs_numpy_p50": p50["numpy"] / p50["flat"], "hnsw_vs_flat_p50": p50["flat"] / p50["hnsw"],
                    "flat_default_blas_vs_numpy_p50": p50["numpy"] / flat_default})
    return out


def targets(rows: list[Row]) -> dict[str, object]:
    row = next((r for r in rows if r.size == TARGET_SIZE and r.backend == "hnsw" and r.data == "mixture"), None)
    if row is None:
        return {"evaluated": False, "size": TARGET_SIZE}
    assert row.recall_at_10 is not None
    p50_ok, recall_ok = row.p50_ms < TARGET_P50_MS, row.recall_at_10 >= TARGET_RECALL
    return {"evaluated": True, "size": TARGET_SIZE, "ef_search": row.ef_search, "p50_ms": row.p50_ms, "p50_max_ms": TARGET_P50_MS,
            "p50_pass": p50_ok, "recall_at_10": row.recall_at_10, "recall_min": TARGET_RECALL, "recall_pass": recall_ok,
            "pass": p50_ok and recall_ok}


def print_summary(rows: list[Row], sweep: list[dict[str, float]], sweep_size: int, verdict: dict[str, object]) -> None:
    for r in ratios(rows):
        print(f"{r['size']:>9,}: flat vs numpy p50 speedup {r['flat_vs_numpy_p50']:6.2f}x"
              f"   hnsw vs flat p50 speedup {r['hnsw_vs_flat_p50']:8.1f}x"
              f"   (flat@blas128k vs numpy {r['flat_default_blas_vs_numpy_p50']:5.2f}x)")
    if sweep:
        print(f"\nefSearch sweep at {sweep_size:,} (same HNSW graph, mixture data, single queries):")
        for point in sweep:
            print(f"  efSearch {int(point['ef_search']):>4}: p50 {point['p50_ms']:7.3f} ms  p95 {point['p95_ms']:7.3f} ms"
                  f"  recall@10 {point['recall_at_10']:.4f}")
        meets = [p for p in sweep if p["p50_ms"] < TARGET_P50_MS and p["recall_at_10"] >= TARGET_RECALL]
        print(f"  smallest efSearch meeting p50 < {TARGET_P50_MS} ms and recall >= {TARGET_RECALL}: "
              f"{int(meets[0]['ef_search']) if meets else 'none in the sweep'}")
    if not verdict["evaluated"]:
        print(f"\ntargets at {TARGET_SIZE:,}: not evaluated ({TARGET_SIZE:,} not in --sizes)")
        return
    print(f"\ntargets at {TARGET_SIZE:,}, HNSW efSearch {verdict['ef_search']}:")
    print(f"  p50 {verdict['p50_ms']:.3f} ms < {TARGET_P50_MS} ms: {'PASS' if verdict['p50_pass'] else 'FAIL'}")
    print(f"  recall@10 {verdict['recall_at_10']:.4f} >= {TARGET_RECALL}: {'PASS' if verdict['recall_pass'] else 'FAIL'}")


def parse_ints(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_ints, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=384, help="joint space size")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2, help="OpenMP/BLAS threads for builds and batch calls")
    parser.add_argument("--single-threads", type=int, default=1, help="threads while timing single queries (see docstring)")
    parser.add_argument("--ef-search", type=int, default=None,
                        help=f"HNSW efSearch for the reported rows (default: module's {vector_index.HNSW_EF_SEARCH})")
    parser.add_argument("--ef-sweep", type=parse_ints, default=[16, 32, 64, 96, 128, 192, 256],
                        help="efSearch values tried at the largest size ('' = none)")
    parser.add_argument("--points-per-cluster", type=int, default=MixtureSpec.points_per_cluster,
                        help="mixture: items per centre on average")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write all figures to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    started = time.perf_counter()
    ef = args.ef_search if args.ef_search is not None else vector_index.HNSW_EF_SEARCH
    setup = Setup(ef, args.single_threads, args.threads)
    note = threads_note(args.single_threads, args.threads)
    spec = MixtureSpec(points_per_cluster=args.points_per_cluster)
    sizes = sorted(args.sizes)
    print(f"index scaling: dim {args.dim}, {args.queries} queries, k={K}, seed {args.seed}")
    print(f"threads: {note}; {os.cpu_count()} cores visible; load average at start {os.getloadavg()[0]:.2f}")
    print(f"hnsw: M={vector_index.HNSW_M} efConstruction={vector_index.HNSW_EF_CONSTRUCTION} efSearch={ef}"
          f" ({'--ef-search' if args.ef_search is not None else 'module default'}); "
          f"faiss {faiss.__version__}, distance_compute_blas_threshold={faiss.cvar.distance_compute_blas_threshold}")
    print(f"data: Gaussian mixture {asdict(spec)} (see module docstring)\n")

    rows: list[Row] = []
    sweep: list[dict[str, float]] = []
    cosines: dict[int, dict[str, float]] = {}
    for size in sizes:
        log(f"{size:,}: generating data")
        items, queries = mixture_data(np.random.default_rng([args.seed, size]), size, args.queries, args.dim, spec)
        size_rows, swept, cosines[size] = bench_size(size, items, queries, setup, args.ef_sweep if size == sizes[-1] else [])
        rows += size_rows
        sweep = swept or sweep
        del items
    rows.append(uniform_worst_case(np.random.default_rng([args.seed, sizes[0], 1]), sizes[0], args.queries, args.dim, setup))

    print_table(rows, args.threads)
    for size, cos in cosines.items():
        print(f"data check {size:,}: mean cosine query -> exact 1st neighbour {cos['top1_mean']:.3f},"
              f" -> 10th {cos['top10_mean']:.3f}")
    print("(the 'uniform' row is uniformly random unit vectors: a worst case for HNSW, not a realistic figure)\n")
    verdict = targets(rows)
    print_summary(rows, sweep, sizes[-1], verdict)
    wall_s = time.perf_counter() - started
    print(f"\nwall time {wall_s:.1f} s; load average at end {os.getloadavg()[0]:.2f} (other jobs share these cores)")
    if args.json:
        config = {"sizes": sizes, "dim": args.dim, "queries": args.queries, "k": K, "seed": args.seed,
                  "threads": args.threads, "single_threads": args.single_threads, "threads_note": note,
                  "hnsw_m": vector_index.HNSW_M, "hnsw_ef_construction": vector_index.HNSW_EF_CONSTRUCTION,
                  "ef_search": ef, "blas_threshold": faiss.cvar.distance_compute_blas_threshold,
                  "faiss_version": faiss.__version__, "mixture": asdict(spec)}
        report = {"config": config, "rows": [asdict(r) for r in rows], "ratios": ratios(rows),
                  "neighbour_cosines": {str(k): v for k, v in cosines.items()},
                  "ef_sweep": {"size": sizes[-1], "points": sweep}, "targets": verdict, "wall_s": wall_s}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
