"""The API docs page works offline and reaches no other site (issue 16), and the OpenAPI document
describes what a client sees while the catalog is still being prepared.

tests/test_app.py checks that every script and style the page names is served by the app; here,
what the page would fetch on its own once loaded, and the document the page renders.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import app as webapp
from crs.settings import Settings
from crs.web.api import build_router
from crs.web.services import Services

API = "/api/v1"


@pytest.fixture
def client(shapes_catalog) -> Iterator[TestClient]:
    # The router and the docs alone: the docs do not depend on the gradio page mounted beside them.
    store, _ = shapes_catalog
    services = Services(Settings(db_url=store.url, catalog="shapes", embedder="fake", k=3))
    web = FastAPI(openapi_url=f"{API}/openapi.json", docs_url=None, redoc_url=None)
    web.include_router(build_router(services))
    webapp._offline_docs(web)
    with TestClient(web) as client:
        yield client


def test_the_docs_page_names_only_this_app(client: TestClient) -> None:
    page = client.get(f"{API}/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    # Swagger UI's validator badge would send the spec's URL to validator.swagger.io from every
    # visitor's browser (and show a broken image offline); the page turns it off.
    assert '"validatorUrl": null' in page.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert f"{API}/openapi.json" in urls
    for url in urls:
        assert url.startswith("/"), url
        response = client.get(url)
        assert response.status_code == 200 and response.content, url
    script = client.get(next(u for u in urls if u.endswith(".js"))).text
    assert "SwaggerUIBundle" in script  # the real bundle, not an error page


def test_the_document_describes_health_progress_and_the_503_while_preparing(client: TestClient) -> None:
    document = client.get(f"{API}/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert {"ready", "preparing", "progress", "index"} <= set(schemas["HealthOut"]["properties"])
    assert set(schemas["ProgressOut"]["properties"]) == {"stage", "done", "total", "unit", "elapsed_s", "eta_s"}
    paths = document["paths"]
    for path in (f"{API}/sessions", f"{API}/sessions/{{session_id}}/messages", f"{API}/sessions/{{session_id}}/feedback"):
        unavailable = paths[path]["post"]["responses"]["503"]
        assert unavailable["content"]["application/json"]["schema"]["$ref"].endswith("/NotReadyOut"), path
    feedback = paths[f"{API}/sessions/{{session_id}}/feedback"]["post"]["responses"]
    assert "404" in feedback  # an unknown session or item, as the README says
