"""benchmarks/api_load.py --db URL,URL: the same load on SQLite and on PostgreSQL in one run, each row naming its store."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.benchmark_support import load_benchmark


@pytest.mark.network
def test_sqlite_and_postgres_in_one_run(postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from crs.catalog.ingest import IngestOptions, ingest
    from crs.store import open_store
    from tests.shapes import write_shapes_catalog

    path = write_shapes_catalog(tmp_path / "shapes")
    urls = [f"sqlite:///{tmp_path / 'load.db'}", postgres_url]
    for url in urls:
        store = open_store(url)
        ingest(store, path, IngestOptions(format="jsonl", catalog="shapes"))
        store.engine.dispose()
    out = tmp_path / "load.json"
    status = load_benchmark("api_load.py").main([
        "--catalog", "shapes", "--db", ",".join(urls), "--embedder", "fake", "--sessions", "3", "--duration", "2",
        "--turns", "3", "--image-share", "0.5", "--json", str(out)])
    result = json.loads(out.read_text())
    assert status == 0, [r["errors"] for r in result["runs"]]
    assert [r["db"]["backend"] for r in result["runs"]] == ["sqlite", "postgresql"]
    assert [(row["db"], row["workers"]) for row in result["scaling"]] == [("sqlite", 1), ("postgresql", 1)]
    sqlite, postgres = result["scaling"]
    assert sqlite["store_ratio"] == 1.0 and postgres["store_ratio"] == round(
        postgres["turns_per_s"] / sqlite["turns_per_s"], 2)
    for run in result["runs"]:
        assert run["errors"]["count"] == 0 and run["leak_check"]["pass"] and run["turns_per_s"] > 0
    printed = capsys.readouterr().out
    assert "store ratio" in printed and "postgresql" in printed


@pytest.mark.parametrize("value, message", [
    ("sqlite:///a.db,", "none empty"),
    ("sqlite:///a.db,::user:s3cret@host", "store URL number 2 is not"),
])
def test_bad_store_lists_are_refused_without_echoing_them(value: str, message: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        load_benchmark("api_load.py").main(["--db", value])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and message in err and "s3cret" not in err
