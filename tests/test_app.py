from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from crs.catalog.ingest import ingest
from crs.store import open_store

FIXTURES = Path(__file__).parent / "fixtures" / "catalog"


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import app as webapp

    url = f"sqlite:///{tmp_path / 'app.db'}"
    ingest(open_store(url), FIXTURES / "items.jsonl")
    monkeypatch.setattr(webapp, "services", webapp.Services(db_url=url, catalog_name="tiny"))
    with TestClient(webapp.app) as client:
        yield client


def test_item_endpoints(client: TestClient) -> None:
    body = client.get("/api/v1/items/apple").json()
    assert body["title"] == "Red apple sticker" and body["attributes"]["colour"] == ["red"]
    assert body["image_url"] == "/api/v1/items/apple/image"
    image = client.get(body["image_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    missing = client.get("/api/v1/items/nope")
    assert missing.status_code == 404 and "no item 'nope'" in missing.json()["detail"]


def test_health_catalog_and_openapi(client: TestClient) -> None:
    assert client.get("/api/v1/health").json() == {"status": "ok", "catalog": "tiny"}
    assert client.get("/api/v1/catalog").json()["items"] == 4
    assert "/api/v1/items/{item_id}" in client.get("/api/v1/openapi.json").json()["paths"]


def test_gradio_page_and_browse(client: TestClient) -> None:
    import app as webapp

    page = client.get("/")
    assert page.status_code == 200 and "gradio" in page.text.lower()
    assert [title for _, title in webapp.browse("", "nature", "(any)", "(any)")] == ["Green leaf", "Yellow sun"]
    assert [title for _, title in webapp.browse("apple", "(any)", "(any)", "red")] == ["Red apple sticker"]
