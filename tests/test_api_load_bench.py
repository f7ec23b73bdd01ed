"""The API load benchmark runs end to end (a real server, real HTTP) on the shapes catalog, and its leak check can fail."""
from __future__ import annotations

import json
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from tests.benchmark_support import load_benchmark

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "api_load.py"


def load_script() -> ModuleType:
    return load_benchmark(SCRIPT)


@pytest.mark.network
def test_short_run_on_the_shapes_catalog(shapes_catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store, _ = shapes_catalog
    bench = load_script()
    out = tmp_path / "load.json"
    status = bench.main(["--catalog", "shapes", "--db", store.url, "--embedder", "fake", "--sessions", "3",
                         "--duration", "3", "--turns", "5", "--image-share", "0.5", "--json", str(out)])
    report = json.loads(out.read_text())
    assert status == 0, report["errors"]
    assert report["errors"]["count"] == 0 and report["leak_check"]["pass"] is True
    assert report["sessions"] >= 3 and report["leak_check"]["sessions_checked"] == report["sessions"]
    assert report["leak_check"]["turns_checked"] >= 3
    assert report["server"]["health"]["ready"] is True and report["server"]["health"]["index"]["items"] == 24
    assert report["config"] == {"sessions": 3, "duration_s": 3.0, "turns": 5, "image_share": 0.5, "seed": 0}
    assert {"POST /sessions", "POST /messages (text)", "GET /sessions/{id}"} <= set(report["endpoints"])
    for row in (*report["endpoints"].values(), report["overall"]):
        assert row["requests"] > 0 and row["rps"] > 0 and 0 < row["p50_ms"] <= row["p95_ms"] <= row["max_ms"]
    assert report["overall"]["requests"] == sum(r["requests"] for r in report["endpoints"].values())
    assert report["wall_s"] >= 3.0
    printed = capsys.readouterr().out
    assert "leak check:" in printed and "PASS" in printed and "overall" in printed


def test_the_leak_check_catches_foreign_data() -> None:
    bench = load_script()
    held = {"session_id": "s1", "liked": ["a"], "disliked": [],
            "turns": [{"text": "mine", "images": []}, {"text": "someone else's", "images": []}]}
    person = bench.Person("http://test", [("a", "A")], time.monotonic() + 60, 4, 0.0, 0)
    person.client = httpx.Client(base_url="http://test",
                                 transport=httpx.MockTransport(lambda request: httpx.Response(200, json=held)))
    sent = bench.Sent("s1", texts=["mine"], images=[[]])
    sent.rate("a", True)
    person.check(sent)
    assert person.checked[0]["problems"] == ["texts", "images"]
    sent.rate("a", False)  # a dislike moves the item: now the lists disagree too
    sent.texts.append("someone else's")
    sent.images.append([])
    person.check(sent)
    assert person.checked[1]["problems"] == ["liked", "disliked"]
