"""Thread pools for serving single queries on a small machine, set by entry points only.

Three pools compete for the cores: torch's, FAISS's OpenMP (with its BLAS) and numpy's BLAS.
On 2 cores, idle spinning threads of one pool slow the others: benchmarks/search_latency.py
measured a composed query at 117-134 ms p50 with 2/2/2 threads and 47-56 ms with torch 2,
FAISS 1, numpy 1. The library never changes these process-wide settings by itself: the CLI,
the web app and the benchmarks call :func:`serve_single_queries`.
"""
from __future__ import annotations


def serve_single_queries(torch_threads: int | None = None, faiss_threads: int = 1, blas_threads: int = 1) -> None:
    """Threads for one-query-at-a-time serving: torch gets the cores (or ``torch_threads``),
    FAISS and numpy's BLAS one thread each (a single query gains nothing from more)."""
    import faiss

    faiss.omp_set_num_threads(faiss_threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=blas_threads, user_api="blas")
    except ImportError:  # threadpoolctl comes with scikit-learn; without it BLAS keeps its default
        pass
    if torch_threads is not None:  # else torch's default (all cores) is right for encoding
        import torch

        torch.set_num_threads(torch_threads)
