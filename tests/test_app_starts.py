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
