"""benchmarks/time_to_ready.py end to end on the shapes catalog: a real app.py started twice on one
fresh CRS_HOME (cold, then warm), polled over HTTP until ready."""
from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from tests.benchmark_support import load_benchmark

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "time_to_ready.py"


def load_script() -> ModuleType:
    return load_benchmark(SCRIPT)


@pytest.mark.network
def test_cold_then_warm_start_of_the_app(shapes_catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store, _ = shapes_catalog
    bench = load_script()
    out = tmp_path / "ready.json"
    status = bench.main(["--json", str(out), "--timeout", "240", "--",
                         "--catalog", "shapes", "--db", store.url, "--embedder", "fake"])
    report = json.loads(out.read_text())
    assert status == 0, report
    cold, warm = report["runs"]
    assert [cold["label"], warm["label"]] == ["fresh CRS_HOME", "warm cache"]
    for run in (cold, warm):
        assert run["exit_code"] is None and 0 < run["answered_s"] <= run["ready_s"]
    # Only the cold start builds the index; its stages come from the server's own reports.
    assert {"reading the catalog", "encoding texts", "writing the index"} <= set(cold["stages"])
    assert "writing the index" not in warm["stages"]
    printed = capsys.readouterr().out
    assert "fresh CRS_HOME" in printed and "warm cache" in printed and "cold / warm:" in printed


def test_a_server_that_dies_is_reported_not_waited_for(tmp_path: Path) -> None:
    bench = load_script()
    timing = bench.time_start("broken", tmp_path, ["--catalog", "no-such-catalog", "--db",
                                                   f"sqlite:///{tmp_path / 'empty.db'}"], timeout_s=60)
    assert timing.ready_s is None and timing.exit_code not in (None, 0)
    assert any("no-such-catalog" in line for line in timing.log_tail)
    assert "died" in bench.format_table([timing])
