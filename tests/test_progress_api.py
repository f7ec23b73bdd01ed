"""While the server's warm-up builds the index, the API answers at once (issue 16).

A new user's `POST /api/v1/sessions` queued behind a first build for 2,337 s and then answered
201, with no hint why. Here the build is held open by the test (a stand-in for a slow one that
reports BuildProgress) and every call is timed: the health check shows the progress, the chat
calls answer 503 with Retry-After and the progress, and nothing waits on the build's lock.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from crs import assemble
from crs.settings import Settings
from crs.web.api import build_router
from crs.web.errors import public_message
from crs.web.services import NotReady, Services
from retrieval.progress import BuildProgress

API = "/api/v1"
FAST_S = 5.0  # a blocked call would wait the 30 s the build is held; 5 s leaves room for a loaded machine


class HeldBuild:
    """``assemble.open_searcher`` that reports one BuildProgress and waits for ``release``."""

    def __init__(self) -> None:
        self.reported = threading.Event()
        self.release = threading.Event()
        self.real = assemble.open_searcher

    def __call__(self, store: Any, catalog: Any, settings: Settings, **kwargs: Any) -> Any:
        progress = kwargs["progress"]
        progress("a sentence from a build that does not report BuildProgress yet")  # both kinds arrive
        progress(BuildProgress("encoding pictures", 6, 24, elapsed_s=3.0))  # 9 s left at this rate
        self.reported.set()
        assert self.release.wait(30), "the test never released the build"
        return self.real(store, catalog, settings, **kwargs)


@pytest.fixture
def held(shapes_catalog, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Services, HeldBuild, TestClient]]:
    store, _ = shapes_catalog
    build = HeldBuild()
    monkeypatch.setattr(assemble, "open_searcher", build)
    services = Services(Settings(db_url=store.url, catalog="shapes", embedder="fake", k=3))
    app = FastAPI()
    app.include_router(build_router(services))
    with TestClient(app) as client:
        services.start_warm_up()
        assert build.reported.wait(30)
        try:
            yield services, build, client
        finally:
            build.release.set()
            services.start_warm_up().join(timeout=30)


def timed(call: Any) -> Any:
    started = time.perf_counter()
    response = call()
    assert time.perf_counter() - started < FAST_S, "the request waited for the build"
    return response


def test_health_reports_the_build_while_it_runs(held: tuple[Services, HeldBuild, TestClient]) -> None:
    services, build, client = held
    body = timed(lambda: client.get(f"{API}/health")).json()
    assert body["catalog"] == "shapes" and body["ready"] is False and body["preparing"] is True
    assert body["progress"] == {"stage": "encoding pictures", "done": 6, "total": 24, "unit": "items",
                                "elapsed_s": 3.0, "eta_s": 9.0}
    assert body["index"] is None

    build.release.set()
    services.start_warm_up().join(timeout=30)
    after = client.get(f"{API}/health").json()
    assert after["ready"] is True and after["preparing"] is False and after["progress"] is None
    assert after["index"]["items"] == 24


def test_chat_calls_answer_503_with_retry_after_until_ready(held: tuple[Services, HeldBuild, TestClient]) -> None:
    services, build, client = held
    calls = {"new session": lambda: client.post(f"{API}/sessions"),
             "message": lambda: client.post(f"{API}/sessions/s1/messages", data={"text": "a red star"}),
             "feedback": lambda: client.post(f"{API}/sessions/s1/feedback",
                                             json={"item_id": "red-star-flat", "liked": True}),
             # not a chat call, but it needs the dialogue manager the build is still opening
             "read a session": lambda: client.get(f"{API}/sessions/s1")}
    for name, call in calls.items():
        response = timed(call)
        assert response.status_code == 503, (name, response.text)
        assert response.headers["Retry-After"] == "9", name
        body = response.json()
        assert body["ready"] is False and body["progress"]["stage"] == "encoding pictures", name
        assert body["detail"].startswith("the catalog 'shapes' is still being prepared (encoding pictures: "
                                         "6/24 items, about 9 s left)"), body["detail"]
    # What is open already still answers: items come from the store alone.
    assert timed(lambda: client.get(f"{API}/items/red-star-flat")).status_code == 200

    build.release.set()
    services.start_warm_up().join(timeout=30)
    created = client.post(f"{API}/sessions")
    assert created.status_code == 201
    reply = client.post(f"{API}/sessions/{created.json()['session_id']}/messages", data={"text": "a red star"})
    assert reply.status_code == 200 and reply.json()["items"]


def test_without_a_warm_up_requests_open_what_they_need(shapes_catalog) -> None:
    """Tests and scripts that use Services directly (no server) keep the old behaviour: the first
    request opens the models itself."""
    store, _ = shapes_catalog
    services = Services(Settings(db_url=store.url, catalog="shapes", embedder="fake", k=3))
    app = FastAPI()
    app.include_router(build_router(services))
    with TestClient(app) as client:
        health = client.get(f"{API}/health").json()
        assert health["ready"] is False and health["preparing"] is False and health["progress"] is None
        assert client.post(f"{API}/sessions").status_code == 201
        assert client.get(f"{API}/health").json()["ready"] is True


@pytest.mark.parametrize(("progress", "retry_after"), [
    (None, NotReady.RETRY_UNKNOWN_S),  # nothing reported yet: the models are loading
    (BuildProgress("encoding texts", 0, 100, elapsed_s=0.0), NotReady.RETRY_UNKNOWN_S),  # no rate yet
    (BuildProgress("encoding texts", 99, 100, elapsed_s=9.9), NotReady.RETRY_MIN_S),  # 0.1 s left
    (BuildProgress("encoding pictures", 10, 100_000, elapsed_s=10.0), NotReady.RETRY_MAX_S),  # hours left
])
def test_retry_after_follows_the_eta_within_bounds(progress: BuildProgress | None, retry_after: int) -> None:
    exc = NotReady("demo", progress)
    assert exc.retry_after == retry_after
    assert str(exc).endswith(f"try again in {retry_after} s")
    # The page shows the same sentence (not the generic 'not available' one).
    assert public_message(exc) == str(exc)


def test_a_failed_warm_up_leaves_no_stale_progress(shapes_catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a failed build the health check says so (not preparing, no progress that reads as
    still going), and a chat call tries again and answers the generic 503 (the reason is logged)."""
    from crs.errors import UserError
    from crs.web.errors import UNAVAILABLE

    def failing(*args: Any, **kwargs: Any) -> Any:
        kwargs["progress"](BuildProgress("encoding pictures", 3, 24, elapsed_s=1.0))
        raise UserError("embedder 'aligned:/srv/private/head.safetensors': no such file")

    monkeypatch.setattr(assemble, "open_searcher", failing)
    store, _ = shapes_catalog
    services = Services(Settings(db_url=store.url, catalog="shapes", embedder="fake", k=3))
    app = FastAPI()
    app.include_router(build_router(services))
    with TestClient(app) as client:
        services.start_warm_up().join(timeout=30)
        assert services.warm_up_error is not None
        health = client.get(f"{API}/health").json()
        assert health["ready"] is False and health["preparing"] is False and health["progress"] is None
        response = client.post(f"{API}/sessions")
        assert response.status_code == 503 and response.json() == {"detail": UNAVAILABLE}
        assert "/srv/private" not in response.text


def test_after_the_index_the_models_loading_is_a_stage_of_its_own(shapes_catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    # Between the index's last report and ready, the dialogue manager and its models load for
    # 10-20 s on 2 cores: the banner must not sit on "writing the index: N/N" meanwhile.
    store, _ = shapes_catalog
    seen: list[str] = []
    real = assemble.build_dialogue_manager

    def build_dm(*args: Any, **kwargs: Any) -> Any:
        seen.append(services.progress.stage if services.progress else "")
        return real(*args, **kwargs)

    monkeypatch.setattr(assemble, "build_dialogue_manager", build_dm)
    services = Services(Settings(db_url=store.url, catalog="shapes", embedder="fake", k=3))
    services.start_warm_up().join(timeout=60)
    assert services.ready and seen == ["loading the models"]
