"""The web app: the chat page at ``/``, the JSON API under ``/api/v1`` and the embeddable widget
(``/widget.js``, demo page ``/widget-demo``), in one FastAPI application.

``app`` is built at import time from the environment (``CRS_DB``, ``CRS_CATALOG``,
``CRS_EMBEDDER``, ``CRS_LLM``, ``CRS_CORS_ORIGINS``), so ``uvicorn app:app`` and the tests use it
without a server; importing opens nothing. ``python app.py`` parses the options, builds the app
from them and serves it. Either way, when the server starts, the models and the index load in
the background (:meth:`crs.web.services.Services.start_warm_up`) while it already answers.

Several server processes: ``python app.py --workers N`` (or ``uvicorn app:app --workers N``, or
gunicorn with uvicorn's worker class) runs N processes over one store. uvicorn starts each worker
from the import string ``app:app``, so the options reach the workers as the ``CRS_*`` variables
they stand for; the parent opens the store (migrations) and the catalog (the demo's first load)
before any worker starts, and each worker loads its own models and index (one worker builds a
missing index while the others wait: crs.web.prepare_lock). What makes this safe is that nothing
a conversation needs lives in a process: turns of one session are serialised through the store
(crs.sessions). Except the chat page: gradio keeps its queue and page state in the process that
served the page, so it needs all of one tab's requests to reach the same worker (see main()).

Limits (README, "Security and limits"): uploads, pixels and decoding (``crs.uploads``), a
per-client rate limit on the API and on the page's uploads and turns (``crs.web.rate_limits``,
``webui.uploads.PageUploadGuard``), idle sessions and old page uploads deleted by a janitor
thread (``crs.web.services``). The page's uploads live in a folder of this app's own
(``GRADIO_TEMP_DIR``, by default ``<tmp>/crs-page-uploads``), which the janitor may clean.

CORS: browsers on other sites may call the API only from the origins in the allow-list
(``--cors-origin``, repeatable, or ``CRS_CORS_ORIGINS``); by default none, so only pages served
by this app (same origin) can. Starlette's CORSMiddleware on the outer app enforces it for every
path; with it present, gradio does not add its own CORS handling, which would otherwise answer
any origin on the page's endpoints.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

# Gradio's usage statistics and version check would reach the internet; this app stays offline.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# The page's uploads go to a folder of this app's own, which its janitor cleans (not the
# machine-wide /tmp/gradio that other gradio apps share).
os.environ.setdefault("GRADIO_TEMP_DIR", str(Path(tempfile.gettempdir()) / "crs-page-uploads"))

import gradio as gr  # noqa: E402
from fastapi import FastAPI, HTTPException  # noqa: E402
from fastapi.middleware.cors import CORSMiddleware  # noqa: E402
from fastapi.responses import FileResponse  # noqa: E402

from crs.cli.args import add_stage_options, int_between  # noqa: E402
from crs.config import DEMO_CATALOG  # noqa: E402
from crs.errors import UserError  # noqa: E402
from crs.web.rate_limits import RateLimiter  # noqa: E402
from crs.web.services import Services  # noqa: E402
from crs.web.workers import LOG_FORMAT  # noqa: E402
from crs.settings import DEFAULT_EMBEDDER, Settings, parse_origins  # noqa: E402
from crs.web.api import PREFIX, build_router  # noqa: E402
from webui.cards import CARDS_CSS  # noqa: E402
from webui.chat import build_chat_ui  # noqa: E402
from webui.uploads import PageUploadGuard, upload_folder  # noqa: E402



def create_app(services: Services, *, serving: bool = False) -> FastAPI:
    """The app over ``services``. ``serving``: when a server starts it, set the thread pools for
    one-query-at-a-time serving and load the models and the index in the background."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if serving:
            from retrieval.threads import serve_single_queries

            serve_single_queries()
            services.start_warm_up()
            services.start_janitor(upload_folder())
        yield
        services.stop_janitor()

    web = FastAPI(title="Conversational multimodal recommender", version="1",
                  description="Find an item in a catalog by talking and showing pictures.",
                  openapi_url=f"{PREFIX}/openapi.json", docs_url=None, redoc_url=None,
                  lifespan=lifespan)
    web.state.services = services
    settings = services.settings
    limiter = RateLimiter(settings.rate_limits)  # one set of counters for the API and the page
    web.include_router(build_router(services, limiter))
    web.add_middleware(PageUploadGuard, limiter=limiter, limits=settings.uploads,
                       disk_mb=settings.page_upload_disk_mb)
    web.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                       allow_methods=["GET", "POST"], allow_headers=["Content-Type"],
                       allow_credentials=False, max_age=600)

    _offline_docs(web)

    @web.get("/widget.js", include_in_schema=False)
    def widget_js() -> FileResponse:
        return _widget_file(services, "widget.js", "application/javascript")

    @web.get("/widget-demo", include_in_schema=False)
    def widget_demo() -> FileResponse:
        return _widget_file(services, "demo.html", "text/html")

    # Mounted last: "/" catches every path the routes above do not.
    # max_file_size: gradio would otherwise take page uploads of any size before our checks run.
    ui = build_chat_ui(services)
    mounted = gr.mount_gradio_app(web, ui, path="/", css=CARDS_CSS, max_file_size=settings.uploads.max_bytes)
    # Gradio checks that a file named in an event's payload was uploaded (and that files it
    # serves lie in allowed folders) only once launch() has run; a mounted app never runs it, and
    # without this a client could name any server path (a file under the working directory)
    # and gradio would copy it into its cache for the handler. webui.uploads checks it again.
    ui.has_launched = True
    return mounted


def _offline_docs(web: FastAPI) -> None:
    """The API docs at /api/v1/docs with Swagger UI 5 served by the app itself (package
    swagger-ui-bundle-v2): FastAPI's default page loads it from a CDN, which is a blank page
    offline and a third-party request from every visitor's browser otherwise. Swagger UI's
    validator badge is off for the same reason: by default the page sends the spec's URL to
    validator.swagger.io."""
    import swagger_ui_bundle
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    assets = f"{PREFIX}/docs-assets"
    web.mount(assets, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @web.get(f"{PREFIX}/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=f"{PREFIX}/openapi.json", title="Recommender API",
                                   swagger_js_url=f"{assets}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{assets}/swagger-ui.css",
                                   swagger_favicon_url=f"{assets}/favicon-32x32.png",
                                   swagger_ui_parameters={"validatorUrl": None})


def _widget_file(services: Services, name: str, media_type: str) -> FileResponse:
    path = services.settings.widget_dir / name
    if not path.is_file():
        raise HTTPException(404, f"the widget file {name} is missing from {services.settings.widget_dir.name}/")
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})


def _app_from_env() -> FastAPI:
    """The app for `uvicorn app:app`, from the environment alone; a bad variable (for example
    CRS_CORS_ORIGINS='*') stops the server with the same one-line error the options give."""
    try:
        return create_app(Services(), serving=True)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


# `python app.py` builds its app in main(), from the options; importing builds it from the
# environment (uvicorn, tests) and starts nothing.
if __name__ != "__main__":
    app = _app_from_env()

# Each worker holds its own models and index (~0.9 GB on the demo): more than this is a typo.
MAX_WORKERS = 32


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the chat page, the JSON API and the widget")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--catalog", default=None, help=f"catalog name (default $CRS_CATALOG or {DEMO_CATALOG})")
    parser.add_argument("--db", default=None, help="SQLAlchemy URL (default $CRS_DB or SQLite under $CRS_HOME)")
    parser.add_argument("--llm", default=None, metavar="SPEC",
                        help="LLM for understanding, e.g. ollama:qwen2.5:7b (default $CRS_LLM or none: offline)")
    parser.add_argument("--embedder", default=None,
                        help=f"aligned, aligned:WEIGHTS, clip:PATH_OR_NAME or fake (tests) (default $CRS_EMBEDDER or {DEFAULT_EMBEDDER})")
    add_stage_options(parser)
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="a site allowed to call the API from the browser, e.g. https://shop.example "
                             "(repeatable; also $CRS_CORS_ORIGINS, comma-separated)")
    parser.add_argument("--workers", type=int_between(1, MAX_WORKERS), default=1, metavar="N",
                        help=f"server processes over the one store, 1 to {MAX_WORKERS} (default 1); each loads "
                             "its own models and index. The chat page then needs a proxy that sends each "
                             "visitor to one process; the API and the widget do not")
    return parser.parse_args(argv)


def worker_environment(args: argparse.Namespace, settings: Settings) -> dict[str, str]:
    """The options as the CRS_* variables a worker's Settings.from_env reads (the workers of
    uvicorn --workers import app:app and know nothing of this process's options)."""
    given = {"CRS_DB": args.db, "CRS_CATALOG": args.catalog, "CRS_EMBEDDER": args.embedder, "CRS_LLM": args.llm,
             "CRS_PARSER": args.parser, "CRS_IMAGE_READER": args.reader, "CRS_REPLY_WRITER": args.writer}
    env = {name: value for name, value in given.items() if value is not None}
    env["CRS_CORS_ORIGINS"] = ",".join(settings.cors_origins)  # the variable's origins and the options'
    return env


def shared_store_problem(settings: Settings) -> str | None:
    """Why ``settings``' store cannot be shared by several processes, or None."""
    from sqlalchemy.engine import make_url

    from crs.config import default_db_url

    try:
        url = make_url(settings.db_url or default_db_url())
    except Exception:  # noqa: BLE001 - opening the store reports a bad URL in its own words
        return None
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return "an in-memory SQLite database belongs to one process: give --db a file or a server"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        # --cors-origin adds to $CRS_CORS_ORIGINS rather than replacing it.
        origins = parse_origins([os.environ.get("CRS_CORS_ORIGINS", ""), *args.cors_origin])
        settings = Settings.from_env(db_url=args.db, catalog=args.catalog, embedder=args.embedder, llm=args.llm,
                                     parser=args.parser, reader=args.reader, writer=args.writer,
                                     cors_origins=origins)
        if args.workers > 1 and (problem := shared_store_problem(settings)):
            raise UserError(f"--workers {args.workers}: {problem}")
        served = Services(settings)
        # A first run loads the demo catalog into the store here (~10 s): say so, or the console
        # stays blank before the server even answers. With several workers this is the only
        # place it happens: the parent migrates the store and loads the demo before any starts.
        print(f"opening catalog {settings.catalog!r} ...", file=sys.stderr, flush=True)
        catalog = served.catalog  # a missing catalog or an unusable database fails here, at once
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    workers = f"; {args.workers} worker processes" if args.workers > 1 else ""
    print(f"catalog {catalog.name!r}: {catalog.title}; serving http://{args.host}:{args.port}/ "
          f"(API {PREFIX}/docs; CORS origins: {', '.join(settings.cors_origins) or 'same origin only'}{workers})",
          flush=True)
    if args.workers == 1:
        import uvicorn

        uvicorn.run(create_app(served, serving=True), host=args.host, port=args.port, log_level="warning")
        return 0
    # gradio's queue and page state live in the process that served the page (gradio issues
    # #7224, #10487), and uvicorn hands each connection to any worker: say so where it is chosen.
    print(f"note: with {args.workers} workers the chat page at / needs every request of a browser tab to reach one "
          "process (a proxy with sticky sessions, or the page served by a single-worker instance); the JSON API "
          "and the widget need nothing of the kind", file=sys.stderr, flush=True)
    served.store.engine.dispose()  # the workers open their own connections
    os.environ.update(worker_environment(args, settings))
    # crs.web.workers and app:app import from this folder even when the package is not installed.
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    sys.stdout.flush()
    sys.stderr.flush()
    # This process becomes uvicorn's supervisor (crs.web.workers says why it is replaced).
    os.execv(sys.executable, [sys.executable, "-m", "crs.web.workers", "--host", args.host, "--port", str(args.port),
                              "--workers", str(args.workers), "--app-dir", here])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
