"""The index scaling benchmark runs end to end at a tiny size and writes the figures it promises."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from tests.benchmark_support import load_benchmark

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "index_scaling.py"


def load_script() -> ModuleType:
    return load_benchmark(SCRIPT)


def test_tiny_run_writes_all_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_script()
    out = tmp_path / "scaling.json"
    assert bench.main(["--sizes", "2000", "--queries", "20", "--ef-sweep", "16,96", "--json", str(out)]) == 0

    report = json.loads(out.read_text())
    assert {"config", "rows", "ratios", "neighbour_cosines", "ef_sweep", "targets", "wall_s"} <= set(report)
    rows = report["rows"]
    expected = {("numpy", "mixture"), ("flat", "mixture"), ("hnsw", "mixture"), ("hnsw", "uniform")}
    assert {(r["backend"], r["data"]) for r in rows} == expected
    for row in rows:
        assert {"build_s", "memory_bytes", "memory_method", "p50_ms", "p95_ms", "batch_qps", "recall_at_10"} <= set(row)
        assert row["memory_bytes"] > 0 and 0 < row["p50_ms"] <= row["p95_ms"] and row["batch_qps"] > 0
        if row["backend"] != "flat":
            assert 0.0 <= row["recall_at_10"] <= 1.0
    # numpy and Flat are both exact, so they must agree (ties aside)
    assert next(r for r in rows if r["backend"] == "numpy")["recall_at_10"] >= 0.99
    assert {"flat_vs_numpy_p50", "hnsw_vs_flat_p50"} <= set(report["ratios"][0])
    assert [p["ef_search"] for p in report["ef_sweep"]["points"]] == [16, 96]
    assert all(0.0 <= p["recall_at_10"] <= 1.0 for p in report["ef_sweep"]["points"])
    assert report["targets"]["evaluated"] is False  # 1M not run
    assert "recall@10" in capsys.readouterr().out
