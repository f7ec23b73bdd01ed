"""Helpers for the browser tests: the app in a subprocess, a second origin, Debian's chromium.

`playwright install` (its own browser download) cannot work offline, so the tests drive the
system chromium through Playwright's `executable_path`.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # a dev dependency: imported by the tests after the chromium check
    from playwright.sync_api import Browser, Playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("CRS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_chromium() -> None:
    """Skip when there is no chromium on a developer machine; under CI its absence is a failure."""
    if CHROMIUM.is_file():
        return
    message = f"no chromium at {CHROMIUM} (Debian: apt-get install chromium; or set CRS_CHROMIUM)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}: the browser tests must run in CI")
    pytest.skip(message)


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def ingest_shapes(db_url: str, folder: Path) -> None:
    """The generated shapes catalog (tests/shapes.py), ingested as catalog "shapes" into db_url."""
    from crs.catalog.ingest import IngestOptions, ingest
    from crs.store import open_store
    from tests.shapes import write_shapes_catalog

    path = write_shapes_catalog(folder)
    ingest(open_store(db_url), path, IngestOptions(format="jsonl", catalog="shapes"))


class AppServer:
    """`python app.py` on a free port, its output in a log file that failures quote."""

    def __init__(self, *, catalog: str, db_url: str, home: Path, embedder: str = "fake",
                 cors_origins: Sequence[str] = (), extra_args: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "app.log"
        args = [sys.executable, "app.py", "--port", str(self.port), "--catalog", catalog, "--db", db_url,
                "--embedder", embedder, *extra_args]
        for origin in cors_origins:
            args += ["--cors-origin", origin]
        env = {**os.environ, "CRS_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        env.pop("CRS_CORS_ORIGINS", None)
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not answer /api/v1/health within {timeout:.0f} s:\n{self.log()}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


@contextmanager
def app_server(**options: Any) -> Iterator[AppServer]:
    """An AppServer (same options) that answers /api/v1/health; stopped on exit."""
    server = AppServer(**options)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


class StaticSite:
    """A tiny HTTP server on its own port (so its own origin) serving fixed pages: the "shop"."""

    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                body = site.pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StaticSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """$CRS_SCREENSHOTS if set (CI keeps them), else a pytest temporary directory."""
    folder = Path(os.environ["CRS_SCREENSHOTS"]) if os.environ.get("CRS_SCREENSHOTS") else \
        tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class WarmingUp:
    """The app's :class:`~crs.web.services.Services` as they look during a first start, with the
    warm-up played by the test: ``ready``, ``progress`` and ``warm_up_error`` are what the test
    sets (a 15-minute build is not needed to see its banner); everything else is the real
    services'. Asking for the dialogue manager before ``ready`` is a failure: the page must not
    wait for it meanwhile."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.ready = False
        self.progress: Any = None  # a retrieval.progress.BuildProgress, or None
        self.warm_up_error: str | None = None
        self.warm_ups = 0

    @property
    def dm(self) -> Any:
        if not self.ready:
            raise AssertionError("the dialogue manager was asked for before the app was ready")
        return self.real.dm

    def start_warm_up(self) -> None:
        self.warm_ups += 1  # the test is the warm-up: it flips `ready` itself

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@contextmanager
def app_in_process(services: Any, timeout: float = 60) -> Iterator[str]:
    """app.create_app(services) served by uvicorn in a thread of this process (so the test can
    change ``services`` while a browser watches); yields its base URL."""
    import uvicorn

    from app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="app-in-process", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the app did not start on port {port} within {timeout:.0f} s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def small_png(path: Path) -> None:
    """Rewrite a screenshot as a 256-colour PNG: a third of the size, the same to the eye (the
    committed screenshots stay small)."""
    from PIL import Image

    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)
