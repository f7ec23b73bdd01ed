"""The chat page's API through ``gradio_client``, against the real app (app.create_app) served by
uvicorn on a loopback port, on the shapes catalog with the fake embedder."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crs.web.services import Services
from crs.settings import Settings
from tests.browser_support import free_port

pytestmark = pytest.mark.network


@pytest.fixture
def services(shapes_catalog) -> Services:
    store, _ = shapes_catalog
    return Services(Settings(db_url=store.url, catalog="shapes", embedder="fake"))


@pytest.fixture
def url(services: Services) -> Iterator[str]:
    import uvicorn

    from app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning",
                                          timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    # The client's event stream stays open: do not wait for it to close.
    server.should_exit = server.force_exit = True
    thread.join(timeout=10)


@pytest.fixture
def client(url: str):  # type: ignore[no-untyped-def]
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


def test_the_named_endpoints_are_the_whole_api(client) -> None:  # type: ignore[no-untyped-def]
    api = client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {"/respond", "/start", "/feedback", "/history"}
    assert not api["unnamed_endpoints"]


def test_a_conversation_over_the_client(client, url: str, services: Services) -> None:  # type: ignore[no-untyped-def]
    session_id = client.predict(api_name="/start")
    assert isinstance(session_id, str) and len(session_id) > 16

    asked = client.predict(session_id, "a sticker", None, api_name="/respond")
    assert asked["session_id"] == session_id and asked["action"] == "ask"
    options = asked["question"]["options"]
    assert options[-1] == "any" and asked["items"] == []

    shown = client.predict(session_id, options[0], None, api_name="/respond")
    assert shown["action"] == "recommend" and shown["items"]
    item = shown["items"][0]
    assert set(item) == {"id", "title", "score", "reason", "image_url"}  # no server file paths
    picture = httpx.get(url + item["image_url"])
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"

    noted = client.predict(session_id, item["id"], True, api_name="/feedback")
    assert noted == {"session_id": session_id, "item_id": item["id"], "liked": True}
    assert services.searcher.item_ids([item["id"]])[0] in services.dm.belief(session_id).liked

    history = client.predict(session_id, api_name="/history")
    assert [t["message"] for t in history] == ["a sticker", options[0]]
    assert history[1]["items"] == shown["items"]


def test_an_image_over_the_client_starts_a_session_and_finds_the_item(client, tmp_path) -> None:  # type: ignore

    from gradio_client import handle_file

    from tests.shapes import COLOURS, _draw

    picture = tmp_path / "mine.png"
    _draw("star", COLOURS["green"], "flat").save(picture)
    reply = client.predict("", "", handle_file(str(picture)), api_name="/respond")
    assert reply["session_id"] and reply["action"] == "recommend"
    assert reply["items"][0]["id"] == "green-star-flat"


def test_problems_come_back_as_errors_with_the_reason(client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="no session"):
        client.predict("no-such-session", "a sticker", None, api_name="/respond")
    with pytest.raises(AppError, match="empty message"):
        client.predict("", "  ", None, api_name="/respond")
    fake = tmp_path / "cat.png"
    fake.write_text("not a picture")
    # Refused by the page's upload route itself (webui.uploads.PageUploadGuard), before any handler.
    with pytest.raises(httpx.HTTPStatusError, match="415"):
        client.predict("", "like this", handle_file(str(fake)), api_name="/respond")
    session_id = client.predict(api_name="/start")
    with pytest.raises(AppError, match="no item"):
        client.predict(session_id, "no-such-item", True, api_name="/feedback")


def test_the_chat_page_is_served_at_the_root(url: str) -> None:
    assert httpx.get(url + "/").status_code == 200
    config = httpx.get(url + "/config").json()
    kinds = {c["type"] for c in config["components"]}
    assert {"chatbot", "multimodaltextbox"} <= kinds
    assert "Start over" in [c["props"].get("value") for c in config["components"] if c["type"] == "button"]


def _upload(url: str, *files: tuple[str, bytes]) -> httpx.Response:
    return httpx.post(url + "/gradio_api/upload", files=[("files", (name, data)) for name, data in files])


def test_the_upload_route_keeps_only_images_and_deletes_the_rest(url: str, tmp_path) -> None:  # type: ignore
    """Defect: /gradio_api/upload took any file type from anyone and never cleaned up."""
    import io

    from PIL import Image

    from webui.uploads import upload_folder

    import os

    def stored() -> set[Path]:
        return {p for p in upload_folder().rglob("*") if p.is_file()}

    before = stored()
    refused = _upload(url, ("notes.txt", b"hello " * 1000 + os.urandom(8)))
    assert refused.status_code == 415 and "not a PNG, JPEG, WebP or GIF image" in refused.json()["detail"]
    assert stored() == before  # the refused file is gone at once
    mixed = io.BytesIO()
    Image.new("RGB", (20, 20), "red").save(mixed, "PNG")
    refused = _upload(url, ("red.png", mixed.getvalue()), ("page.html", b"<html>" + os.urandom(8)))
    assert refused.status_code == 415 and "image 2" in refused.json()["detail"]
    assert not any(p.name == "page.html" for p in stored())
    accepted = _upload(url, ("red.png", mixed.getvalue()))
    assert accepted.status_code == 200
    (stored,) = accepted.json()
    assert Path(stored).is_relative_to(upload_folder()) and Path(stored).read_bytes() == mixed.getvalue()


def test_respond_reads_only_uploads_and_never_echoes_a_path(client, url: str) -> None:  # type: ignore
    """Defect: /respond accepted any server path with an image extension, and a missing one
    answered with '[Errno 2] No such file or directory: ...', which lets a client probe for files.
    Now gradio's own upload check refuses every path that was not uploaded (app.py turns it on
    for the mounted page), with the same words whether the file exists or not."""
    repo_png = next(Path(__file__).parent.parent.glob("assets/**/*.png"))
    answers = []
    for path in (str(repo_png), str(repo_png.with_name("no-such-file.png")), str(Path.cwd() / ".venv" / "x.png")):
        payload = {"data": ["", "look", {"path": path, "meta": {"_type": "gradio.FileData"}}]}
        response = httpx.post(url + "/gradio_api/call/respond", json=payload)
        event = httpx.get(url + f"/gradio_api/call/respond/{response.json()['event_id']}").text
        assert event.startswith("event: error") and "not uploaded by a user" in event, event
        assert "Errno" not in event and "recommend" not in event
        answers.append(event.replace(path, "PATH"))
    assert len(set(answers)) == 1  # existing or not: nothing to tell them apart


def test_catalog_pictures_are_served_only_by_the_item_route(tmp_path, store) -> None:  # type: ignore
    """Defect: once the page had shown an item, gradio served every file in that item's image
    folder (a secret.txt, the items.jsonl), and image URLs revealed absolute server paths."""
    import json

    import uvicorn
    from PIL import Image

    from app import create_app
    from crs.catalog.ingest import IngestOptions, ingest

    folder = tmp_path / "d"
    folder.mkdir()
    Image.new("RGB", (64, 64), "red").save(folder / "red.png")
    (folder / "secret.txt").write_text("SECRET")
    rows = folder / "items.jsonl"
    rows.write_text(json.dumps({"id": "o", "title": "red thing", "image": str(folder / "red.png"),
                                "attributes": {"colour": "red"}}) + "\n")
    ingest(store, rows, IngestOptions(format="jsonl", catalog="evil"))
    services = Services(Settings(db_url=store.url, catalog="evil", embedder="fake"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning",
                                          timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    try:
        from webui.session import ChatTabs, TabState
        from webui.chat import messages

        # What the page renders for "a red thing" (the same handler the browser's event runs).
        state = ChatTabs(lambda: services.dm).send(TabState(), "a red thing")
        page = json.dumps(messages(state), default=lambda c: getattr(c, "value", str(c)))
        assert "/api/v1/items/o/image" in page and str(folder) not in page
        assert httpx.get(base + "/api/v1/items/o/image").content == (folder / "red.png").read_bytes()
        for path in (folder / "secret.txt", rows, folder / "red.png"):
            leaked = httpx.get(f"{base}/gradio_api/file={path}")
            assert leaked.status_code in (403, 404) and b"SECRET" not in leaked.content, path
    finally:
        server.should_exit = server.force_exit = True
        thread.join(timeout=10)
