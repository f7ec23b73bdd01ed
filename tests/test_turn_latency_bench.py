"""The turn latency benchmark runs end to end on the tiny shapes catalog and writes the figures it promises."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from tests.benchmark_support import load_benchmark

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "turn_latency.py"


def load_script() -> ModuleType:
    return load_benchmark(SCRIPT)


def check_figures(bench: ModuleType, report: dict, n: int, turns: int) -> None:
    assert {"catalog", "items", "store", "embedder", "index", "policy", "embedder_load_s", "index_open_s",
            "dialogue_manager_s", "cold_first_turn_ms", "threads", "config", "rows", "actions", "targets",
            "profiles", "turns", "load_avg", "cpus", "own_cpu_share", "wall_s"} <= set(report)
    assert report["items"] == 24 and report["index_open_s"] > 0 and report["dialogue_manager_s"] > 0
    assert set(report["cold_first_turn_ms"]) == {"text", "image"}
    assert all(v > 0 for v in report["cold_first_turn_ms"].values())
    assert [r["group"] for r in report["rows"]] == [key for key, _, _ in bench.GROUPS]
    rows = {r["group"]: r for r in report["rows"]}
    # n conversations per kind, up to `turns` turns each; every image conversation opens with its picture
    assert n <= rows["text"]["turns"] <= n * turns and rows["image"]["turns"] == n
    assert rows["all"]["turns"] == len(report["turns"]) == rows["text"]["turns"] + n + rows["image_followups"]["turns"]
    for key in ("text", "image", "all"):
        row = rows[key]
        assert {"turns", "p50_ms", "p95_ms", "mean_ms", "min_ms", "max_ms"} == set(row) - {"group"}
        assert 0 < row["min_ms"] <= row["p50_ms"] <= row["p95_ms"] <= row["max_ms"]
    assert set(report["actions"]) <= {"ask", "recommend", "answer"} and sum(report["actions"].values()) == len(
        report["turns"])
    assert {t["role"] for t in report["turns"]} <= {"first", "answer", "critique"}
    assert set(report["targets"]) == {"text", "image", "pass"}
    assert report["targets"]["text"]["p95_max_ms"] == 150.0
    assert report["targets"]["pass"] == (report["targets"]["text"]["pass"] and report["targets"]["image"]["pass"])


def test_run_benchmark_on_the_shapes_catalog(shapes_catalog) -> None:
    store, catalog = shapes_catalog
    bench = load_script()
    report = bench.run_benchmark(store, catalog, "fake", n=4, threads=1, turns=3, warmup=1, profile="always",
                                 progress=lambda _: None)
    check_figures(bench, report, 4, 3)
    assert report["threads"]["torch"] == 1 and report["threads"]["faiss"] == 1
    assert report["index"]["built"] is True  # a fresh CRS_HOME: the first open builds the index
    assert report["config"] == {"n": 4, "turns": 3, "k": 5, "warmup": 1, "seed": 0}
    # follow-ups: the first option after a question, else the critiques in turn
    for t in report["turns"]:
        if t["role"] == "critique":
            assert t["message"] in bench.CRITIQUES
    # "always": the slowest turn of each kind replayed under cProfile, respond() among the top functions
    assert set(report["profiles"]) == {"text", "image"}
    for prof in report["profiles"].values():
        assert prof["top"] and any("respond" in r["function"] for r in prof["top"])
    json.dumps(report)  # JSON-ready as it is
    table = bench.format_table(report)
    assert "(a) text-only turns" in table and "(b) turns with an image" in table
    assert "PASS" in table or "FAIL" in table
    assert "profile of the slowest text turn" in table


def test_scripts_are_varied_and_image_ones_carry_a_picture(shapes_catalog) -> None:
    store, catalog = shapes_catalog
    bench = load_script()
    scripts = bench.build_scripts(store, catalog, 12, seed=0)
    texts = [s.text for s in scripts["text"]]
    assert len(texts) == 12 and len(set(texts)) == 12 and all(t.strip() for t in texts)
    assert all(len(t.split()) <= bench.MAX_WORDS for t in texts)
    assert all(s.image and Path(s.image).is_file() for s in scripts["image"])
    assert any(s.text for s in scripts["image"]) and any(not s.text for s in scripts["image"])


def test_main_writes_json(shapes_catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store, _ = shapes_catalog
    bench = load_script()
    out = tmp_path / "turns.json"
    assert bench.main(["--catalog", "shapes", "--db", str(store.url), "--embedder", "fake", "--n", "3",
                       "--turns", "2", "--threads", "1", "--warmup", "0", "--profile", "never",
                       "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    check_figures(bench, report, 3, 2)
    assert report["profiles"] == {} and report["store_setup"]["kind"] == "given"
    printed = capsys.readouterr().out
    assert "excluded: embedder load" in printed and "threads: torch 1" in printed and "p95 < 150" in printed
