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
    result = json.loads(out.read_text())
    (report,) = result["runs"]
    assert status == 0, report["errors"]
    assert report["workers"] == 1 and [row["workers"] for row in result["scaling"]] == [1]
    assert result["scaling"][0]["ratio"] == 1.0 and report["turns_per_s"] > 0
    (worker,) = report["memory"]["workers"]  # one process: the server itself
    assert 50 < worker["rss_mb"] <= worker["peak_mb"] and report["memory"]["supervisor"] is None
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


def test_likes_a_new_topic_dropped_are_not_a_leak_but_a_foreign_like_is() -> None:
    """The dialogue drops the likes of an old topic (BeliefState.drop_topic): fewer likes than
    sent, in the order sent, pass and are counted; a like this session never sent is a leak."""
    bench = load_script()
    held = {"session_id": "s1", "liked": ["b"], "disliked": [], "turns": [{"text": "mine", "images": []}]}
    person = bench.Person("http://test", [("a", "A")], time.monotonic() + 60, 4, 0.0, 0)
    person.client = httpx.Client(base_url="http://test",
                                 transport=httpx.MockTransport(lambda request: httpx.Response(200, json=held)))
    sent = bench.Sent("s1", texts=["mine"], images=[[]])
    sent.rate("a", True)
    sent.rate("b", True)
    person.check(sent)
    assert person.checked[0]["problems"] == [] and person.checked[0]["likes_dropped"] == 1
    held["liked"] = ["b", "z"]  # z: another session's like
    person.check(sent)
    assert person.checked[1]["problems"] == ["liked"]


@pytest.mark.network
def test_one_and_two_workers_in_one_run(shapes_catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--workers 1,2: two fresh servers under the same load; turns/s of each, the ratio, no errors,
    no leaks, and the memory of each of the two workers (the supervisor apart)."""
    store, _ = shapes_catalog
    bench = load_script()
    out = tmp_path / "load.json"
    status = bench.main(["--catalog", "shapes", "--db", store.url, "--embedder", "fake", "--sessions", "4",
                         "--duration", "3", "--turns", "3", "--image-share", "0", "--workers", "1,2",
                         "--json", str(out)])
    result = json.loads(out.read_text())
    assert status == 0, [r["errors"] for r in result["runs"]]
    one, two = result["runs"]
    assert (one["workers"], two["workers"]) == (1, 2)
    assert [row["workers"] for row in result["scaling"]] == [1, 2]
    assert result["scaling"][0]["ratio"] == 1.0
    assert result["scaling"][1]["ratio"] == round(two["turns_per_s"] / one["turns_per_s"], 2)
    assert all(row["errors"] == 0 and row["leaks"] == 0 for row in result["scaling"])
    assert len(two["memory"]["workers"]) == 2 and two["memory"]["supervisor"]["rss_mb"] > 0
    assert all(w["rss_mb"] > 50 for w in two["memory"]["workers"])
    assert two["leak_check"]["pass"] and two["leak_check"]["sessions_checked"] == two["sessions"]
    printed = capsys.readouterr().out
    assert "scaling (same load, a fresh server each" in printed and "RSS per worker" in printed


@pytest.mark.parametrize("value", ["0", "1,x", "33", ""])
def test_bad_worker_counts_are_refused(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        load_script().main(["--workers", value])
    assert exited.value.code == 2 and "--workers" in capsys.readouterr().err
