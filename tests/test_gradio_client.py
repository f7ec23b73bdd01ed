"""The chat page's API through ``gradio_client``, against the real app (app.create_app) served by
uvicorn on a loopback port, on the shapes catalog with the fake embedder."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from crs.services import Services, Settings
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
    with pytest.raises(AppError, match="not a PNG"):
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
