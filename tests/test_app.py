"""The composed web app (app.py): API + CORS allow-list + widget files + the gradio page at /, and its settings."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import app as webapp
from crs.errors import UserError
from crs.search import CatalogSearch
from crs.web.services import Services
from crs.settings import Settings, parse_origins

SHOP = "https://shop.example"
EVIL = "https://evil.example"


@pytest.fixture
def widget_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "widget"
    folder.mkdir()
    (folder / "widget.js").write_text("console.log('widget');\n")
    (folder / "demo.html").write_text("<!doctype html><title>demo</title><script src='/widget.js'></script>\n")
    return folder


@pytest.fixture
def services(shapes_catalog, widget_dir: Path) -> Services:
    store, _ = shapes_catalog
    return Services(Settings(db_url=store.url, catalog="shapes", embedder="fake", cors_origins=(SHOP,),
                             widget_dir=widget_dir))


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(webapp.create_app(services)) as client:
        yield client


def test_module_defines_the_app_without_opening_anything() -> None:
    assert isinstance(webapp.app, FastAPI) and webapp.app.state.services.ready is False
    assert webapp.app.state.services.settings.cors_origins == ()  # nobody else by default


def test_gradio_page_at_root_and_api_beside_it(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "gradio" in page.text.lower()
    assert client.get("/api/v1/health").json()["catalog"] == "shapes"
    session = client.post("/api/v1/sessions").json()["session_id"]
    assert client.post(f"/api/v1/sessions/{session}/messages", data={"text": "a red star"}).status_code == 200
    spec = client.get("/api/v1/openapi.json").json()
    assert spec["paths"] and all(path.startswith("/api/v1/") for path in spec["paths"])


def test_chat_intro_tells_clients_the_catalog_title_and_whether_it_has_pictures(client: TestClient) -> None:
    intro = client.get("/api/v1/chat-intro").json()
    assert (intro["catalog"], intro["title"], intro["pictures"]) == ("shapes", "Coloured shapes", True)
    assert "picture" in intro["greeting"] and intro["topics"][:3] == ["shape", "colour", "style"]


def test_chat_intro_of_a_text_only_catalog_has_no_picture_hints(store, tmp_path: Path) -> None:
    from tests.text_catalogs import ingest_films

    ingest_films(store, tmp_path / "films", count=30)
    with TestClient(webapp.create_app(Services(Settings(db_url=store.url, catalog="films", embedder="fake")))) as c:
        intro = c.get("/api/v1/chat-intro").json()
    assert (intro["title"], intro["pictures"]) == ("Films (Wikidata, 1940-2014)", False)
    assert intro["greeting"] == "Hi! Tell me what you are looking for, for example its genre, decade or length."
    assert not any("picture" in intro[k] for k in ("greeting", "placeholder", "input_placeholder"))


def test_the_widget_reads_the_intro_and_drops_uploads_without_pictures() -> None:
    script = (Path(webapp.__file__).parent / "assets" / "widget" / "widget.js").read_text(encoding="utf-8")
    assert '"/api/v1/chat-intro"' in script and "this.attachButton.hidden = !this.pictures" in script


def test_widget_files(client: TestClient, widget_dir: Path) -> None:
    script = client.get("/widget.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("application/javascript")
    assert script.text == "console.log('widget');\n"
    demo = client.get("/widget-demo")
    assert demo.status_code == 200 and demo.headers["content-type"].startswith("text/html") and "/widget.js" in demo.text
    (widget_dir / "widget.js").unlink()
    missing = client.get("/widget.js")
    assert missing.status_code == 404 and "widget.js is missing" in missing.json()["detail"]


def test_the_shipped_widget_is_served() -> None:
    with TestClient(webapp.create_app(Services(Settings(embedder="fake")))) as client:
        script = client.get("/widget.js")
        assert script.status_code == 200 and "/api/v1/sessions" in script.text
        assert client.get("/widget-demo").headers["content-type"].startswith("text/html")


def test_cors_allows_only_listed_origins(client: TestClient) -> None:
    allowed = client.get("/api/v1/health", headers={"Origin": SHOP})
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert "access-control-allow-credentials" not in allowed.headers  # the API uses no cookies
    refused = client.get("/api/v1/health", headers={"Origin": EVIL})
    assert refused.status_code == 200 and "access-control-allow-origin" not in refused.headers

    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = client.options("/api/v1/sessions/x/feedback", headers={"Origin": SHOP, **preflight})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == SHOP
    assert "POST" in ok.headers["access-control-allow-methods"]
    bad = client.options("/api/v1/sessions/x/feedback", headers={"Origin": EVIL, **preflight})
    assert bad.status_code == 400 and "access-control-allow-origin" not in bad.headers


def test_gradio_does_not_reflect_arbitrary_origins(client: TestClient) -> None:
    # Left alone, gradio answers any origin (with credentials) on a non-localhost host like "testserver".
    for path in ("/config", "/gradio_api/info"):
        response = client.get(path, headers={"Origin": EVIL})
        assert "access-control-allow-origin" not in response.headers, path
        assert "access-control-allow-credentials" not in response.headers, path
    assert client.get("/config", headers={"Origin": SHOP}).headers["access-control-allow-origin"] == SHOP


def test_no_origins_by_default(shapes_catalog) -> None:
    store, _ = shapes_catalog
    services = Services(Settings(db_url=store.url, catalog="shapes", embedder="fake"))
    with TestClient(webapp.create_app(services)) as client:
        for origin in (SHOP, "http://localhost:7860", "null"):
            response = client.get("/api/v1/health", headers={"Origin": origin})
            assert "access-control-allow-origin" not in response.headers, origin


def test_unknown_api_paths_answer_json(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.json() == {"detail": "Not Found"}


# -- settings -----------------------------------------------------------------------------------------

def test_settings_from_the_environment() -> None:
    settings = Settings.from_env({"CRS_EMBEDDER": "fake", "CRS_CATALOG": "shapes", "CRS_DB": "sqlite:///x.db",
                                  "CRS_CORS_ORIGINS": f"{SHOP}, http://localhost:8000/ ,{SHOP}"})
    assert (settings.embedder, settings.catalog, settings.db_url) == ("fake", "shapes", "sqlite:///x.db")
    assert settings.cors_origins == (SHOP, "http://localhost:8000")
    defaults = Settings.from_env({})
    assert (defaults.embedder, defaults.catalog, defaults.db_url, defaults.llm) == ("aligned", "demo", None, None)
    assert Settings.from_env({"CRS_EMBEDDER": "fake"}, embedder="aligned:w.safetensors").embedder == "aligned:w.safetensors"


@pytest.mark.parametrize("origin", ["*", "shop.example", "https://shop.example/path", "ftp://x"])
def test_bad_cors_origins_are_refused(origin: str) -> None:
    with pytest.raises(UserError, match="CORS origin"):
        parse_origins([origin])


def test_services_open_once_across_threads(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = []
    real_open = CatalogSearch.open.__func__  # type: ignore[attr-defined]

    def counting_open(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(threading.current_thread().name)
        return real_open(cls, *args, **kwargs)

    monkeypatch.setattr(CatalogSearch, "open", classmethod(counting_open))
    got = []
    threads = [threading.Thread(target=lambda: got.append(services.dm)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(opened) == 1 and len(got) == 8 and all(dm is got[0] for dm in got)
    assert services.ready and services.index_status is not None and services.index_status.items == 24


def test_a_starting_server_warms_up_in_the_background(services: Services) -> None:
    with TestClient(webapp.create_app(services, serving=True)):  # runs the lifespan, as a server does
        deadline = time.monotonic() + 60
        while not services.ready and time.monotonic() < deadline:  # no request asks for anything
            time.sleep(0.05)
        assert services.ready and services.warm_up_error is None
    idle = Services(services.settings)
    with TestClient(webapp.create_app(idle)) as client:
        client.get("/api/v1/health")
        assert not idle.ready  # without `serving`, nothing opens before a request needs it


def test_main_refuses_bad_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert webapp.main(["--cors-origin", "*"]) == 1
    assert "CORS origin '*' is not allowed" in capsys.readouterr().err
    assert webapp.main(["--db", f"sqlite:///{tmp_path / 'x.db'}", "--catalog", "nope"]) == 1
    assert "no catalog named 'nope'" in capsys.readouterr().err


def test_the_api_docs_need_no_network(client: TestClient) -> None:
    """/api/v1/docs used to load Swagger UI from a CDN: a blank page offline. Now every asset the
    page names is served by the app itself."""
    import re

    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert urls and not [u for u in urls if u.startswith(("http://", "https://", "//"))], urls
    for url in urls:
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("value, message", [("0", "must be between 1 and 32, got 0"),
                                            ("33", "must be between 1 and 32, got 33"),
                                            ("two", "must be a whole number, got 'two'")])
def test_workers_out_of_range_are_refused_before_anything_opens(value: str, message: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        webapp.main(["--workers", value])
    assert exited.value.code == 2
    assert f"argument --workers: {message}" in capsys.readouterr().err


def test_workers_need_a_store_other_processes_can_open(capsys: pytest.CaptureFixture[str]) -> None:
    assert webapp.main(["--workers", "2", "--db", "sqlite://"]) == 1
    err = capsys.readouterr().err
    assert "--workers 2: an in-memory SQLite database belongs to one process" in err and "Traceback" not in err


def test_the_options_reach_the_workers_as_the_variables_they_stand_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRS_CORS_ORIGINS", SHOP)
    args = webapp.parse_args(["--db", "sqlite:///s.db", "--catalog", "shapes", "--embedder", "fake", "--parser", "rules",
                              "--cors-origin", "http://localhost:8000", "--workers", "3"])
    settings = Settings.from_env(db_url=args.db, catalog=args.catalog, embedder=args.embedder, parser=args.parser,
                                 cors_origins=parse_origins([SHOP, *args.cors_origin]))
    env = webapp.worker_environment(args, settings)
    assert env == {"CRS_DB": "sqlite:///s.db", "CRS_CATALOG": "shapes", "CRS_EMBEDDER": "fake", "CRS_PARSER": "rules",
                   "CRS_CORS_ORIGINS": f"{SHOP},http://localhost:8000"}
    worker = Settings.from_env(env)  # what a worker's app:app builds from them
    assert (worker.db_url, worker.catalog, worker.embedder, worker.parser, worker.cors_origins) == \
        (settings.db_url, settings.catalog, settings.embedder, settings.parser, settings.cors_origins)
