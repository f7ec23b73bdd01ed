"""The search latency benchmark runs end to end on the tiny shapes catalog and writes the figures it promises."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from tests.benchmark_support import load_benchmark

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "search_latency.py"


def load_script() -> ModuleType:
    return load_benchmark(SCRIPT)


def check_figures(bench: ModuleType, report: dict, n: int) -> None:
    assert {"catalog", "items", "embedder", "index", "index_open_s", "embedder_load_s", "cold_first_query_ms",
            "threads", "config", "rows", "stages", "checks", "targets", "load_avg", "wall_s"} <= set(report)
    assert report["items"] == 24 and report["index_open_s"] > 0 and report["embedder_load_s"] >= 0
    assert all(v > 0 for v in report["cold_first_query_ms"].values())
    assert {(r["kind"], r["mode"]) for r in report["rows"]} == {(k, m) for k in bench.KINDS for m in bench.MODES}
    for row in report["rows"]:
        assert row["queries"] == n
        assert 0 < row["min_ms"] <= row["p50_ms"] <= row["p95_ms"] <= row["max_ms"]
    assert {(s["kind"], s["stage"]) for s in report["stages"]} == {(k, s) for k in bench.KINDS for s in bench.STAGES}
    assert all(0 < s["p50_ms"] <= s["p95_ms"] for s in report["stages"])
    assert report["checks"]["filtered"]["filter_respected"] is True
    assert report["config"]["filter_attribute"] == "style"
    assert set(report["targets"]) == {"text", "image", "pass"}


def test_run_benchmark_on_the_shapes_catalog(shapes_catalog) -> None:
    store, catalog = shapes_catalog
    bench = load_script()
    report = bench.run_benchmark(store, catalog, "fake", n=8, threads=1, k=5, warmup=2, progress=lambda _: None)
    check_figures(bench, report, 8)
    assert report["threads"]["requested"] == 1 and report["threads"]["faiss"] == 1
    assert report["index"]["built"] is True  # a fresh CRS_HOME: the first open builds the index
    # every query text is short and non-blank; composed queries carry an image and a modifier
    texts = [c.text for c in bench.build_cases(
        bench.sample_catalog(store, catalog, 8, bench.random.Random(0), "style"), 8, 0)["text"]]
    assert all(t.strip() and len(t.split()) <= bench.MAX_WORDS for t in texts)
    json.dumps(report)  # JSON-ready as it is
    assert "PASS" in bench.format_table(report) or "FAIL" in bench.format_table(report)


def test_main_writes_json(shapes_catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store, _ = shapes_catalog
    bench = load_script()
    out = tmp_path / "latency.json"
    assert bench.main(["--catalog", "shapes", "--db", str(store.url), "--embedder", "fake", "--n", "6",
                       "--threads", "1", "--warmup", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    check_figures(bench, report, 6)
    printed = capsys.readouterr().out
    assert "index build/load" in printed and "threads: torch" in printed and "incl. encoding" in printed
