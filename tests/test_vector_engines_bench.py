"""The vector engines benchmark runs end to end at a tiny size (FAISS and milvus-lite) and writes
the figures it promises, demo dataset included (a tiny cached index made here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from tests.benchmark_support import load_benchmark

from retrieval.vector_index import FaissIndex


def _milvus_or_skip() -> None:
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):  # CI installs .[dev], which has them
            raise
        pytest.skip("pymilvus and milvus-lite are not installed (pip install '.[milvus]')")


def test_tiny_run_compares_every_engine_and_writes_all_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _milvus_or_skip()
    bench = load_benchmark("vector_engines.py")
    demo = tmp_path / "demo-index"
    rng = np.random.default_rng(0)
    for space in ("text", "image"):  # what `crs index` caches: one FAISS file per space
        FaissIndex.build(rng.standard_normal((300, 16)).astype(np.float32), np.arange(300) * 3 + 1, kind="flat").save(
            demo / f"{space}.faiss", {"catalog": "demo", "space": space})
    out = tmp_path / "engines.json"
    # Two engine pairs keep it fast (each Milvus engine is a collection); IVF runs the same code path.
    assert bench.main(["--demo", str(demo), "--sizes", "1000", "--dim", "16", "--queries", "12", "--milvus-queries", "6",
                       "--engines", "flat,hnsw,milvus-flat,milvus-hnsw", "--filter-sizes", "5,200", "--filter-queries", "2",
                       "--milvus-uri", str(tmp_path / "m.db"), "--json", str(out)]) == 0

    report = json.loads(out.read_text())
    assert {"config", "rows", "ratios", "targets", "versions", "wall_s"} <= set(report)
    engines = ["flat", "hnsw", "milvus-flat/lite", "milvus-hnsw/lite"]
    assert [(r["data"], r["engine"]) for r in report["rows"]] == [(d, e) for d in ("demo", "synthetic-1000") for e in engines]
    for row in report["rows"]:
        assert row["size"] == (300 if row["data"] == "demo" else 1000)
        assert 0 < row["p50_ms"] <= row["p95_ms"] and row["build_s"] > 0
        assert row["queries"] == (12 if row["engine"] in ("flat", "hnsw") else 6)
        assert set(row["filtered_p50_ms"]) == {"5", "200"} and all(v > 0 for v in row["filtered_p50_ms"].values())
        # Both exact engines find the exact answer; at this size the approximate ones do too.
        assert row["recall_at_10"] >= (0.999 if row["engine"].endswith("flat") else 0.8)
    assert [(q["data"], q["engine"], q["vs"]) for q in report["ratios"]] == [
        (d, e, e.partition("-")[2].partition("/")[0]) for d in ("demo", "synthetic-1000") for e in engines[2:]]
    assert all(q["p50"] > 0 for q in report["ratios"])
    assert report["targets"]["evaluated"] is False  # 1M not run
    printed = capsys.readouterr().out
    assert "recall@10" in printed and "milvus-hnsw/lite vs hnsw" in printed


def test_unknown_engines_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_benchmark("vector_engines.py")
    with pytest.raises(SystemExit):
        bench.main(["--engines", "flat,annoy"])
    assert "unknown engines ['annoy']" in capsys.readouterr().err
