"""The JSON API under /api/v1, driven over HTTP (TestClient) on the shapes catalog with the fake embedder.

Long on purpose: every endpoint of the JSON API, over HTTP, in one place.
"""
from __future__ import annotations

import io
import logging
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from crs.web.services import Services
from crs.settings import Settings
from crs.uploads import UploadLimits
from crs.web.api import build_router
from crs.web.errors import INTERNAL_ERROR, UNAVAILABLE
from crs.web.reply_json import image_url

API = "/api/v1"


def api_app(services: Services) -> FastAPI:
    # The router alone: what the API does does not depend on the gradio page beside it (test_app.py
    # covers the composed app). Its error handling lives in the router, so this is the real thing.
    app = FastAPI()
    app.include_router(build_router(services))
    return app


# The tests that keep state in the store (sessions, turns, feedback) run on SQLite and on
# PostgreSQL: the shapes catalog's `store` follows store_url (tests/postgres_support.py).
ON_BOTH_STORES = pytest.mark.usefixtures("store_url")


@pytest.fixture
def services(shapes_catalog) -> Services:
    store, _ = shapes_catalog
    return Services(Settings(db_url=store.url, catalog="shapes", embedder="fake", k=3))


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(api_app(services)) as client:
        yield client


def new_session(client: TestClient) -> str:
    response = client.post(f"{API}/sessions")
    assert response.status_code == 201
    return response.json()["session_id"]


def say(client: TestClient, session: str, text: str = "", files: list | None = None, expect: int = 200) -> dict:
    response = client.post(f"{API}/sessions/{session}/messages", data={"text": text} if text else None,
                           files=files)
    assert response.status_code == expect, response.text
    return response.json()


def png_bytes(size: tuple[int, int] = (40, 30), colour: str = "blue", mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour if mode == "RGB" else 0).save(out, "PNG")
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with a few bytes of pixel data: cheap to send,
    ruinous to decode."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


# -- a whole conversation -------------------------------------------------------------------------

@ON_BOTH_STORES
def test_conversation_text_answer_image_and_feedback(client: TestClient) -> None:
    session = new_session(client)
    first = say(client, session, "a sticker")
    assert set(first) == {"reply", "action", "question", "items", "fallbacks"}
    assert first["action"] == "ask" and first["question"]["options"] and first["question"]["text"]
    assert first["question"]["text"] in first["reply"]

    # answering with an offered option settles that attribute: it is not asked again
    asked = first["question"]["attribute"]
    second = say(client, session, first["question"]["options"][0])
    assert second["action"] in ("ask", "recommend")
    assert second["question"] is None or second["question"]["attribute"] != asked

    # an uploaded picture of a catalog item is read and steers the search
    picture = client.get(f"{API}/items/blue-square-flat/image")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    third = say(client, session, "something like this", files=[("images", ("mine.png", picture.content, "image/png"))])
    assert third["reply"].startswith("I see a blue")

    history = client.get(f"{API}/sessions/{session}").json()
    assert history["session_id"] == session
    assert [t["text"] for t in history["turns"]] == ["a sticker", first["question"]["options"][0],
                                                     "something like this"]
    assert [len(t["images"]) for t in history["turns"]] == [0, 0, 1]
    assert history["turns"][2]["images"][0]["width"] == 96 and len(history["turns"][2]["images"][0]["sha1"]) == 40
    assert history["turns"][0]["reply"] == first and history["turns"][2]["reply"] == third
    assert history["liked"] == [] and history["disliked"] == []


def recommend(client: TestClient, session: str) -> dict:
    """Talk until the assistant recommends: ask for blue circles, then take the first option."""
    reply = say(client, session, "blue circle")
    for _ in range(6):
        if reply["action"] == "recommend":
            return reply
        reply = say(client, session, reply["question"]["options"][0])
    raise AssertionError(f"no recommendation after 7 turns: {reply}")


def test_items_carry_relative_image_urls_that_serve_the_picture(client: TestClient) -> None:
    reply = recommend(client, new_session(client))
    assert reply["items"] and all(set(i) == {"id", "title", "image_url", "score", "reason"} for i in reply["items"])
    for item in reply["items"]:
        assert item["image_url"] == f"{API}/items/{item['id']}/image" and item["reason"]
        image = client.get(item["image_url"])
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")


@ON_BOTH_STORES
def test_feedback_changes_the_next_turn(client: TestClient) -> None:
    rated, control = new_session(client), new_session(client)
    shown = recommend(client, rated)["items"]
    assert [i["id"] for i in recommend(client, control)["items"]] == [i["id"] for i in shown]  # same path so far

    liked, disliked = "red-star-flat", shown[0]["id"]  # a star was never asked for: only the like brings it
    for item_id, verdict in ((liked, True), (disliked, False)):
        response = client.post(f"{API}/sessions/{rated}/feedback", json={"item_id": item_id, "liked": verdict})
        assert response.status_code == 200 and response.json() == {"ok": True}
    after = [i["id"] for i in say(client, rated, "flat")["items"]]
    untouched = [i["id"] for i in say(client, control, "flat")["items"]]
    assert liked in after and liked not in untouched and disliked not in after
    state = client.get(f"{API}/sessions/{rated}").json()
    assert state["liked"] == [liked] and state["disliked"] == [disliked]
    assert client.get(f"{API}/sessions/{control}").json()["liked"] == []


def test_images_field_may_be_named_images_brackets(client: TestClient) -> None:
    session = new_session(client)
    reply = say(client, session, files=[("images[]", ("a.png", png_bytes(colour="red"), "image/png")),
                                        ("images", ("b.png", png_bytes(colour="red"), "image/png"))])
    assert reply["reply"].startswith("I see a red")
    assert len(client.get(f"{API}/sessions/{session}").json()["turns"][0]["images"]) == 2


def test_an_empty_file_input_is_ignored(client: TestClient) -> None:
    # What a browser sends for a form whose file input was left empty: a part with filename="".
    body = (b'--b\r\nContent-Disposition: form-data; name="text"\r\n\r\na circle\r\n'
            b'--b\r\nContent-Disposition: form-data; name="images"; filename=""\r\n'
            b'Content-Type: application/octet-stream\r\n\r\n\r\n--b--\r\n')
    response = client.post(f"{API}/sessions/{new_session(client)}/messages", content=body,
                           headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 200 and response.json()["action"] in ("ask", "recommend")


# -- sessions are private -----------------------------------------------------------------------------

@ON_BOTH_STORES
def test_unknown_session_is_404_everywhere(client: TestClient) -> None:
    for response in (client.get(f"{API}/sessions/nope"),
                     client.post(f"{API}/sessions/nope/messages", data={"text": "hi"}),
                     client.post(f"{API}/sessions/nope/feedback", json={"item_id": "red-star-flat", "liked": True})):
        assert response.status_code == 404 and response.json() == {"detail": "no session 'nope'"}


@ON_BOTH_STORES
def test_concurrent_sessions_are_kept_apart(services: Services) -> None:
    app = api_app(services)
    results: dict[int, tuple[str, list[str], dict]] = {}
    failures: list[BaseException] = []
    start = threading.Barrier(6)

    def chat(n: int) -> None:
        try:
            with TestClient(app) as client:
                start.wait(timeout=30)
                session = new_session(client)
                texts = [f"session {n} wants a circle", f"red please, session {n}", f"number {n} again"]
                for text in texts:
                    say(client, session, text)
                client.post(f"{API}/sessions/{session}/feedback", json={"item_id": f"red-circle-{'flat' if n % 2 else 'outline'}",
                                                                        "liked": bool(n % 2)})
                results[n] = (session, texts, client.get(f"{API}/sessions/{session}").json())
        except BaseException as exc:  # reported below, with the thread's number
            failures.append(exc)

    threads = [threading.Thread(target=chat, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    assert len({session for session, _, _ in results.values()}) == 6
    for n, (session, texts, history) in results.items():
        assert history["session_id"] == session
        assert [t["text"] for t in history["turns"]] == texts
        assert [t["number"] for t in history["turns"]] == [1, 2, 3]
        expected = [f"red-circle-{'flat' if n % 2 else 'outline'}"]
        assert (history["liked"], history["disliked"]) == ((expected, []) if n % 2 else ([], expected))


# -- bad uploads ------------------------------------------------------------------------------------------

@pytest.fixture
def small_limits_client(shapes_catalog) -> Iterator[TestClient]:
    store, _ = shapes_catalog
    limits = UploadLimits(max_bytes=20_000, max_images=2, max_pixels=1_000_000, max_text_chars=50)
    services = Services(Settings(db_url=store.url, catalog="shapes", embedder="fake", uploads=limits))
    with TestClient(api_app(services)) as client:
        yield client


def refused(client: TestClient, files: list, status: int, *needles: str, text: str = "hi") -> None:
    session = new_session(client)
    response = client.post(f"{API}/sessions/{session}/messages", data={"text": text}, files=files)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and all(n in detail for n in needles), detail
    assert client.get(f"{API}/sessions/{session}").json()["turns"] == []  # nothing reached the dialogue


def test_a_text_file_named_png_is_415(client: TestClient) -> None:
    refused(client, [("images", ("cat.png", b"just some text, honestly\n" * 10, "image/png"))], 415,
            "image 1 ('cat.png')", "not a PNG, JPEG, WebP or GIF image")


def test_an_unaccepted_real_image_format_is_415(client: TestClient) -> None:
    bmp = io.BytesIO()
    Image.new("RGB", (8, 8)).save(bmp, "BMP")
    refused(client, [("images", ("pic.png", bmp.getvalue(), "image/png"))], 415, "'pic.png'")


def test_too_many_bytes_is_413(small_limits_client: TestClient) -> None:
    noise = Image.effect_noise((200, 200), 64).convert("RGB")
    big = io.BytesIO()
    noise.save(big, "PNG")
    assert len(big.getvalue()) > 20_000
    refused(small_limits_client, [("images", ("big.png", big.getvalue(), "image/png"))], 413,
            "image 1 ('big.png')", "too large", "20,000 bytes")


def test_too_many_pixels_is_413_without_decoding(small_limits_client: TestClient) -> None:
    data = png_bytes((2000, 1000), mode="1")  # 2 MP of one colour: a few hundred bytes
    assert len(data) < 2000
    refused(small_limits_client, [("images", ("wide.png", data, "image/png"))], 413,
            "'wide.png'", "2000x1000", "too many pixels", "1,000,000")


def test_a_decompression_bomb_is_413(client: TestClient) -> None:
    refused(client, [("images", ("bomb.png", png_header_only(40_000, 40_000), "image/png"))], 413,
            "'bomb.png'", "too many pixels")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_truncated_image_is_400(client: TestClient, fmt: str) -> None:
    out = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(out, fmt)
    data = out.getvalue()
    refused(client, [("images", (f"cut.{fmt.lower()}", data[: len(data) * 2 // 3], f"image/{fmt.lower()}"))], 400,
            f"'cut.{fmt.lower()}'", "truncated or corrupt")


def test_an_empty_named_file_is_400(client: TestClient) -> None:
    refused(client, [("images", ("nothing.png", b"", "image/png"))], 400, "'nothing.png'", "empty")


def test_too_many_images_is_422(small_limits_client: TestClient) -> None:
    files = [("images", (f"{n}.png", png_bytes(), "image/png")) for n in range(3)]
    refused(small_limits_client, files, 422, "too many images: 3", "at most 2")


def test_text_too_long_and_empty_messages_are_422(small_limits_client: TestClient) -> None:
    refused(small_limits_client, [], 422, "too long", "51", text="x" * 51)
    session = new_session(small_limits_client)
    empty = small_limits_client.post(f"{API}/sessions/{session}/messages", data={"text": "   "})
    assert empty.status_code == 422 and "empty message" in empty.json()["detail"]


def test_an_oversized_request_is_refused_while_it_arrives(small_limits_client: TestClient) -> None:
    session = new_session(small_limits_client)
    limit = UploadLimits(max_bytes=20_000, max_images=2).max_request_bytes
    declared = small_limits_client.post(f"{API}/sessions/{session}/messages", files=[
        ("images", ("huge.png", b"\0" * (limit + 10), "image/png"))])
    assert declared.status_code == 413 and "request body too large" in declared.json()["detail"]

    def stream() -> Iterator[bytes]:  # no Content-Length: chunked, counted as it arrives
        boundary = b"--xyz\r\nContent-Disposition: form-data; name=\"images\"; filename=\"s.png\"\r\n\r\n"
        yield boundary
        for _ in range(limit // 65536 + 2):
            yield b"\0" * 65536

    streamed = small_limits_client.post(f"{API}/sessions/{session}/messages", content=stream(),
                                        headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert streamed.status_code == 413 and "request body too large" in streamed.json()["detail"]


# -- feedback, items, health, catalog ---------------------------------------------------------------------

@ON_BOTH_STORES
def test_feedback_validation(client: TestClient) -> None:
    session = new_session(client)
    url = f"{API}/sessions/{session}/feedback"
    unknown = client.post(url, json={"item_id": "purple-hexagon", "liked": True})
    assert unknown.status_code == 404 and unknown.json() == {"detail": "no item 'purple-hexagon' in catalog 'shapes'"}
    for body, needle in (({"item_id": "red-star-flat", "liked": "yes"}, "liked: Input should be a valid boolean"),
                         ({"liked": True}, "item_id: Field required"),
                         ({"item_id": "red-star-flat", "liked": True, "x": 1}, "x: unknown field")):
        response = client.post(url, json=body)
        assert response.status_code == 422 and needle in response.json()["detail"], response.text
    broken = client.post(url, content=b'{"item_id": ', headers={"Content-Type": "application/json"})
    assert broken.status_code == 422 and broken.json()["detail"].startswith("invalid JSON")


@ON_BOTH_STORES
def test_item_endpoints(client: TestClient) -> None:
    body = client.get(f"{API}/items/red-star-flat").json()
    assert body["title"] == "Red star" and body["attributes"]["shape"] == "star" and body["has_image"]
    assert body["image_url"] == f"{API}/items/red-star-flat/image"
    assert client.get(body["image_url"]).headers["cache-control"].startswith("public")
    for url in (f"{API}/items/nope", f"{API}/items/nope/image"):
        missing = client.get(url)
        assert missing.status_code == 404 and "'nope'" in missing.json()["detail"]


def test_an_image_known_only_by_url_redirects(tmp_path: Path) -> None:
    import json

    from crs.catalog.ingest import IngestOptions, ingest
    from crs.store import open_store

    path = tmp_path / "remote.jsonl"
    path.write_text(json.dumps({"id": "far", "title": "Far away star", "image": "https://cdn.example/far.png",
                                "attributes": {"colour": ["red"]}}) + "\n", encoding="utf-8")
    store = open_store(f"sqlite:///{tmp_path / 'remote.db'}")
    ingest(store, path, IngestOptions(format="jsonl", catalog="remote", fetch_images=False))
    with TestClient(api_app(Services(Settings(db_url=store.url, catalog="remote", embedder="fake")))) as client:
        body = client.get(f"{API}/items/far").json()
        assert body["image_url"] == f"{API}/items/far/image" and not body["has_image"]
        image = client.get(body["image_url"], follow_redirects=False)
        assert image.status_code == 307 and image.headers["location"] == "https://cdn.example/far.png"


def test_image_urls_quote_the_id() -> None:
    assert image_url("a b/c?d", True) == f"{API}/items/a%20b%2Fc%3Fd/image"
    assert image_url("x", False) is None


@ON_BOTH_STORES
def test_health_and_catalog(client: TestClient, services: Services) -> None:
    before = client.get(f"{API}/health").json()
    assert before == {"status": "ok", "catalog": "shapes", "ready": False, "preparing": False, "progress": None,
                      "index": None}
    new_session(client)  # opens the dialogue manager, and so the index
    after = client.get(f"{API}/health").json()
    assert after["ready"] is True and after["index"]["items"] == 24 and after["index"]["built"] is True
    catalog = client.get(f"{API}/catalog").json()
    assert catalog["catalog"] == "shapes" and catalog["items"] == 24
    assert {a["name"] for a in catalog["attributes"]} >= {"shape", "colour", "style"}


# -- errors -------------------------------------------------------------------------------------------------

def test_an_unexpected_error_is_a_logged_500_without_a_traceback(client: TestClient, services: Services,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    session = new_session(client)

    def broken(*args: object) -> None:
        raise RuntimeError("secret detail from deep inside")

    monkeypatch.setattr(services.dm, "respond", broken)
    with caplog.at_level(logging.ERROR, logger="crs.web.api"):
        response = client.post(f"{API}/sessions/{session}/messages", data={"text": "hi"})
    assert response.status_code == 500 and response.json() == {"detail": INTERNAL_ERROR}
    assert "secret" not in response.text and "Traceback" not in response.text
    record = next(r for r in caplog.records if r.name == "crs.web.api")
    assert record.exc_info and "secret detail" in str(record.exc_info[1])


def test_an_unusable_catalog_is_503_with_the_reason_in_the_log_only(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    services = Services(Settings(db_url=f"sqlite:///{tmp_path / 'empty.db'}", catalog="missing", embedder="fake"))
    with caplog.at_level(logging.ERROR), TestClient(api_app(services)) as client:
        response = client.post(f"{API}/sessions")
    assert response.status_code == 503 and response.json() == {"detail": UNAVAILABLE}
    assert response.headers["Retry-After"] == "30"
    assert any("no catalog named 'missing'" in r.getMessage() for r in caplog.records)  # the operator learns why
    assert str(tmp_path) not in response.text


def test_openapi_lists_every_endpoint_with_models(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {(path, method) for path, ops in spec["paths"].items() for method in ops} == {
        (f"{API}/health", "get"), (f"{API}/catalog", "get"), (f"{API}/chat-intro", "get"), (f"{API}/sessions", "post"),
        (f"{API}/sessions/{{session_id}}/messages", "post"), (f"{API}/sessions/{{session_id}}", "get"),
        (f"{API}/sessions/{{session_id}}/feedback", "post"), (f"{API}/items/{{item_id}}", "get"),
        (f"{API}/items/{{item_id}}/image", "get")}
    schemas = spec["components"]["schemas"]
    assert set(schemas["ReplyOut"]["properties"]) == {"reply", "action", "question", "items", "fallbacks"}
    assert set(schemas["ItemCard"]["properties"]) == {"id", "title", "image_url", "score", "reason"}
    assert set(schemas["SessionOut"]["properties"]) == {"session_id", "turns", "liked", "disliked"}
    message = spec["paths"][f"{API}/sessions/{{session_id}}/messages"]["post"]
    body = schemas[message["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"text", "images", "images[]"} <= set(body["properties"])
    assert {"200", "400", "404", "413", "415", "422", "500"} <= set(message["responses"])
    assert message["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
