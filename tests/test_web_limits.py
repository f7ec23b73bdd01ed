"""The web app's limits, each replaying a defect found by probing it as an attacker would:
rate limits, the per-message pixel budget and decode slots, a busy store, idle sessions, old page
uploads, odd form fields and ids, and a bad environment at start-up. HTTP-level through the
composed app (app.create_app) on the shapes catalog with the fake embedder."""
from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text

from app import create_app
from crs.web.rate_limits import RateLimits
from crs.web.services import Services
from crs.settings import Settings
from crs.uploads import UploadLimits, check_uploads
from tests.test_bad_inputs import snapshot

API = "/api/v1"
REPO = Path(__file__).resolve().parent.parent


def png(size: tuple[int, int], colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def make_client(shapes_catalog) -> Iterator:  # type: ignore[type-arg]
    store, _ = shapes_catalog
    clients: list[TestClient] = []

    def make(**settings: object) -> tuple[TestClient, Services]:
        services = Services(Settings(db_url=store.url, catalog="shapes", embedder="fake", **settings))
        client = TestClient(create_app(services))
        client.__enter__()
        clients.append(client)
        return client, services

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_session_creation_is_rate_limited_per_client(make_client) -> None:  # type: ignore[no-untyped-def]
    """Defect: 300 session creations in 4.6 s, no limit anywhere."""
    client, services = make_client(rate_limits=RateLimits(sessions="3/minute"))
    codes = [client.post(f"{API}/sessions").status_code for _ in range(5)]
    assert codes == [201, 201, 201, 429, 429]
    refused = client.post(f"{API}/sessions")
    assert "too many requests" in refused.json()["detail"] and 1 <= int(refused.headers["Retry-After"]) <= 60
    with services.store.engine.connect() as db:
        assert db.execute(text("SELECT COUNT(*) FROM chat_sessions")).scalar_one() == 3  # refused ones stored nothing
    # Other requests have their own budget.
    assert client.get(f"{API}/health").status_code == 200


def test_messages_and_page_uploads_share_the_message_budget(make_client) -> None:  # type: ignore[no-untyped-def]
    client, _ = make_client(rate_limits=RateLimits(messages="2/minute"))
    session = client.post(f"{API}/sessions").json()["session_id"]
    assert client.post(f"{API}/sessions/{session}/messages", data={"text": "a red star"}).status_code == 200
    assert client.post("/gradio_api/upload", files=[("files", ("a.png", png((8, 8))))]).status_code == 200
    over = client.post(f"{API}/sessions/{session}/messages", data={"text": "a blue one"})
    assert over.status_code == 429 and over.headers["Retry-After"]
    assert client.post("/gradio_api/upload", files=[("files", ("a.png", png((8, 8))))]).status_code == 429


def test_rate_limits_can_be_switched_off_and_bad_ones_are_refused() -> None:
    assert RateLimits.from_env({"CRS_RATE_LIMITS": "off"}).enabled is False
    assert RateLimits.from_env({"CRS_RATE_LIMIT_MESSAGES": "5/second"}).messages == "5/second"
    from crs.errors import UserError

    with pytest.raises(UserError, match="is not a limit"):
        RateLimits.from_env({"CRS_RATE_LIMIT_SESSIONS": "lots"})


def test_a_message_over_the_pixel_budget_is_refused_before_decoding(make_client) -> None:  # type: ignore
    """Defect: four one-colour 4470x4470 PNGs (19 KB each) passed the per-image check and took
    the server from 257 MB to 1 GB; now the message's pixels are budgeted from the headers."""
    client, services = make_client(uploads=UploadLimits(max_message_pixels=40_000_000))
    session = client.post(f"{API}/sessions").json()["session_id"]
    before = snapshot(services.store)
    big = png((4470, 4470))
    assert len(big) < 200_000
    response = client.post(f"{API}/sessions/{session}/messages", data={"text": "like these"},
                           files=[("images", (f"{n}.png", big, "image/png")) for n in range(4)])
    assert response.status_code == 413, response.text
    assert "pixels in all" in response.json()["detail"] and "none was decoded" in response.json()["detail"]
    assert snapshot(services.store) == before


def test_images_are_kept_at_the_size_the_models_need() -> None:
    checked = check_uploads("", [("wide.png", io.BytesIO(png((3000, 1500))))], UploadLimits(decode_side=512))
    assert (checked[0].width, checked[0].height) == (3000, 1500)  # as uploaded
    assert checked[0].image.size == (512, 256)  # as kept
    jpeg = io.BytesIO()
    Image.new("RGB", (4000, 3000), "blue").save(jpeg, "JPEG")
    jpeg.seek(0)
    assert max(check_uploads("", [("p.jpg", jpeg)], UploadLimits())[0].image.size) == 768


def test_decodes_are_bounded_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageFile

    inside, most = 0, 0
    guard = threading.Lock()
    load = ImageFile.ImageFile.load

    def slow_load(self):  # type: ignore[no-untyped-def]
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        time.sleep(0.05)
        try:
            return load(self)
        finally:
            with guard:
                inside -= 1

    monkeypatch.setattr(ImageFile.ImageFile, "load", slow_load)
    limits = UploadLimits(max_concurrent_decodes=2)
    threads = [threading.Thread(target=check_uploads, args=("", [("x.png", io.BytesIO(png((64, 64))))], limits))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 2


def test_a_busy_store_answers_503_with_retry_after_and_no_path(make_client, shapes_catalog) -> None:  # type: ignore
    """Defect: while `crs ingest` wrote, messages failed with 400 and 'database sqlite:////...crs.db
    is locked by another process' (with Postgres, the password would have reached clients)."""
    store, _ = shapes_catalog
    client, services = make_client(db_busy_timeout_s=0.2)
    session = client.post(f"{API}/sessions").json()["session_id"]
    writer = sqlite3.connect(store.url.removeprefix("sqlite:///"))
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock, as a long ingest does
    try:
        for response in (client.post(f"{API}/sessions"),
                         client.post(f"{API}/sessions/{session}/messages", data={"text": "a red star"})):
            assert response.status_code == 503, response.text
            assert int(response.headers["Retry-After"]) >= 1
            detail = response.json()["detail"]
            assert "busy" in detail and "sqlite" not in detail and str(store.url) not in detail and "/" not in detail
    finally:
        writer.rollback()
        writer.close()
    assert client.post(f"{API}/sessions/{session}/messages", data={"text": "a red star"}).status_code == 200


def test_idle_web_sessions_expire_and_others_stay(make_client) -> None:  # type: ignore[no-untyped-def]
    """Defect: sessions never expired."""
    client, services = make_client(session_idle_hours=1)
    old, fresh = (client.post(f"{API}/sessions").json()["session_id"] for _ in range(2))
    for session in (old, fresh):
        assert client.post(f"{API}/sessions/{session}/messages", data={"text": "a red star"}).status_code == 200
    terminal = services.dm.start({"client": "cli"})
    with services.store.engine.begin() as db:
        db.execute(text("UPDATE chat_sessions SET updated_at = :t WHERE id IN (:a, :b)"),
                   {"t": datetime.utcnow() - timedelta(hours=2), "a": old, "b": terminal})
    assert services.sweep() == (1, 0)
    assert client.get(f"{API}/sessions/{old}").status_code == 404
    assert client.get(f"{API}/sessions/{fresh}").status_code == 200
    services.dm.belief(terminal)  # a terminal session is its owner's to keep
    with services.store.engine.connect() as db:
        assert db.execute(text("SELECT COUNT(*) FROM chat_turns WHERE session_id = :s"), {"s": old}).scalar_one() == 0


def test_old_page_uploads_are_deleted(make_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Defect: 10 x 7 MB uploads in 1 s stayed in gradio's temp folder for good."""
    _, services = make_client(page_upload_minutes=30)
    (tmp_path / "a").mkdir()
    old, new = tmp_path / "a" / "old.png", tmp_path / "new.png"
    old.write_bytes(png((4, 4)))
    new.write_bytes(png((4, 4)))
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    assert services.sweep(tmp_path) == (0, 1)
    assert not old.exists() and not (tmp_path / "a").exists() and new.exists()


def test_odd_form_fields_and_huge_texts_get_422(make_client) -> None:  # type: ignore[no-untyped-def]
    """Defects: a form field named `image` was silently dropped; a 1 MB text got 400 from the form parser."""
    client, _ = make_client()
    session = client.post(f"{API}/sessions").json()["session_id"]
    url = f"{API}/sessions/{session}/messages"
    wrong = client.post(url, data={"text": "like this"}, files=[("image", ("a.png", png((8, 8)), "image/png"))])
    assert wrong.status_code == 422 and wrong.json()["detail"].startswith("image: unknown field")
    huge = client.post(url, data={"text": "x" * (1024 * 1024 + 10)}, files=[("images", ("a.png", png((8, 8))))])
    assert huge.status_code == 422 and "at most 2,000 characters" in huge.json()["detail"]
    assert client.get(f"{API}/sessions/{session}").json()["turns"] == []


def test_an_item_whose_id_ends_in_image_can_be_fetched(tmp_path: Path, store) -> None:  # type: ignore
    """Defect: GET /items/a/image always meant 'the picture of a', so item 'a/image' was unreachable."""
    import json

    from crs.catalog.ingest import IngestOptions, ingest

    Image.new("RGB", (16, 16), "red").save(tmp_path / "red.png")
    rows = tmp_path / "items.jsonl"
    rows.write_text("".join(json.dumps({"id": i, "title": f"thing {i}", "image": "red.png",
                                        "attributes": {"colour": "red"}}) + "\n" for i in ("a/image", "b")))
    ingest(store, rows, IngestOptions(format="jsonl", catalog="odd"))
    services = Services(Settings(db_url=store.url, catalog="odd", embedder="fake"))
    with TestClient(create_app(services)) as client:
        item = client.get(f"{API}/items/a/image")
        assert item.status_code == 200 and item.json()["id"] == "a/image"
        assert client.get(f"{API}/items/a%2Fimage/image").headers["content-type"] == "image/png"
        assert client.get(f"{API}/items/b/image").headers["content-type"] == "image/png"
        assert client.get(f"{API}/items/c/image").status_code == 404


@pytest.mark.parametrize("variable, value, message", [
    ("CRS_CORS_ORIGINS", "*", "CORS origin '*' is not allowed"),
    ("CRS_MAX_IMAGES", "four", "CRS_MAX_IMAGES='four' is not a whole number"),
    ("CRS_RATE_LIMIT_MESSAGES", "fast", "is not a limit"),
])
def test_a_bad_environment_stops_uvicorn_app_with_one_line(variable: str, value: str, message: str) -> None:
    """Defect: CRS_CORS_ORIGINS='*' crashed app.py with a traceback (the option gave a clean error)."""
    env = {**os.environ, variable: value}
    result = subprocess.run([sys.executable, "-c", "import app"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
