"""The README's first command ends in `python app.py`: start it for real and talk to it."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from crs.store.models import ChatTurn

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_python_app_py_serves_the_demo_catalog(crs_home: Path) -> None:
    port = free_port()
    env = {**os.environ, "CRS_HOME": str(crs_home)}
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"app.py exited early:\n{server.stdout.read()}"  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "app.py did not answer within 120 s"
                time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200 and b"gradio" in response.read().lower()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/catalog", timeout=30) as response:
            assert json.load(response)["catalog"] == "demo"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/widget.js", timeout=10) as response:
            assert response.headers["Content-Type"].startswith("application/javascript")
        # Same origin only by default: a page elsewhere gets no CORS grant.
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/health",
                                         headers={"Origin": "https://elsewhere.example"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Access-Control-Allow-Origin"] is None
    finally:
        # The warm-up may be building the demo index in the background (a fresh CRS_HOME): the
        # server must still stop promptly.
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.network
def test_python_app_py_with_two_workers_serves_one_session_from_both(shapes_catalog, crs_home: Path) -> None:
    """`python app.py --workers 2`: both workers get ready (one builds the index, the other opens
    it), and messages sent at once to one session, whichever worker takes each, are stored as
    consecutive turns."""
    import re
    import threading

    import httpx

    store, _ = shapes_catalog
    store.engine.dispose()
    port = free_port()
    env = {**os.environ, "CRS_HOME": str(crs_home), "CRS_RATE_LIMITS": "off"}
    log = crs_home / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--catalog", "shapes", "--db", store.url,
                                   "--embedder", "fake", "--workers", "2"], cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, text=True)
    workers: set[str] = set()
    try:
        deadline = time.monotonic() + 240
        while len(workers) < 2:
            assert server.poll() is None, f"app.py exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"two workers were not ready within 240 s:\n{log.read_text()}"
            workers = set(re.findall(r"ready: catalog 'shapes' open, models and index loaded \(process (\d+)\)",
                                     log.read_text()))
            time.sleep(0.5)
        text = log.read_text()
        assert text.count("index of 'shapes': built") <= 1  # one worker built it, under the preparation lock
        assert "Traceback" not in text
        api = f"http://127.0.0.1:{port}/api/v1"
        session_id = httpx.post(f"{api}/sessions", timeout=30).json()["session_id"]
        words = ["red", "square", "blue", "outline", "star", "green"]
        statuses: list[int] = []

        def send(word: str) -> None:
            # A new connection each: uvicorn's workers share the socket, the kernel picks one.
            statuses.append(httpx.post(f"{api}/sessions/{session_id}/messages", data={"text": word},
                                       timeout=120).status_code)

        threads = [threading.Thread(target=send, args=(w,)) for w in words]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=150)
        assert statuses == [200] * len(words)
        held = httpx.get(f"{api}/sessions/{session_id}", timeout=30).json()
        assert sorted(t["text"] for t in held["turns"]) == sorted(words)
        with store.session() as db:
            numbers = sorted(db.scalars(select(ChatTurn.number).where(ChatTurn.session_id == session_id)))
        assert numbers == list(range(1, len(words) + 1))
    finally:
        server.terminate()
        server.wait(timeout=30)
    for pid in workers:  # the supervisor took its workers down with it
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
