"""The web app: the chat page at ``/``, the JSON API under ``/api/v1`` and the embeddable widget
(``/widget.js``, demo page ``/widget-demo``), in one FastAPI application.

``app`` is built at import time from the environment (``CRS_DB``, ``CRS_CATALOG``,
``CRS_EMBEDDER``, ``CRS_LLM``, ``CRS_CORS_ORIGINS``), so ``uvicorn app:app`` and the tests use it
without a server; importing opens nothing. ``python app.py`` parses the options, builds the app
from them and serves it. Either way, when the server starts, the models and the index load in
the background (:meth:`crs.services.Services.start_warm_up`) while it already answers.

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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# Gradio's usage statistics and version check would reach the internet; this app stays offline.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from fastapi import FastAPI, HTTPException  # noqa: E402
from fastapi.middleware.cors import CORSMiddleware  # noqa: E402
from fastapi.responses import FileResponse  # noqa: E402

from crs.config import DEMO_CATALOG  # noqa: E402
from crs.errors import UserError  # noqa: E402
from crs.services import DEFAULT_EMBEDDER, Services, Settings, parse_origins  # noqa: E402
from crs.web_api import PREFIX, build_router  # noqa: E402
from webui.chat import build_chat_ui  # noqa: E402



def create_app(services: Services, *, serving: bool = False) -> FastAPI:
    """The app over ``services``. ``serving``: when a server starts it, set the thread pools for
    one-query-at-a-time serving and load the models and the index in the background."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if serving:
            from retrieval.threads import serve_single_queries

            serve_single_queries()
            services.start_warm_up()
        yield

    web = FastAPI(title="Conversational multimodal recommender", version="1",
                  description="Find an item in a catalog by talking and showing pictures.",
                  openapi_url=f"{PREFIX}/openapi.json", docs_url=f"{PREFIX}/docs", redoc_url=None,
                  lifespan=lifespan)
    web.include_router(build_router(services))
    web.add_middleware(CORSMiddleware, allow_origins=list(services.settings.cors_origins),
                       allow_methods=["GET", "POST"], allow_headers=["Content-Type"],
                       allow_credentials=False, max_age=600)

    @web.get("/widget.js", include_in_schema=False)
    def widget_js() -> FileResponse:
        return _widget_file(services, "widget.js", "application/javascript")

    @web.get("/widget-demo", include_in_schema=False)
    def widget_demo() -> FileResponse:
        return _widget_file(services, "demo.html", "text/html")

    # Mounted last: "/" catches every path the routes above do not.
    # max_file_size: gradio would otherwise take page uploads of any size before our checks run.
    return gr.mount_gradio_app(web, build_chat_ui(services), path="/",
                               max_file_size=services.settings.uploads.max_bytes)


def _widget_file(services: Services, name: str, media_type: str) -> FileResponse:
    path = services.settings.widget_dir / name
    if not path.is_file():
        raise HTTPException(404, f"the widget file {name} is missing from {services.settings.widget_dir.name}/")
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})


services = Services()
app = create_app(services, serving=True)  # for `uvicorn app:app`; importing it starts nothing


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
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="a site allowed to call the API from the browser, e.g. https://shop.example "
                             "(repeatable; also $CRS_CORS_ORIGINS, comma-separated)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        # --cors-origin adds to $CRS_CORS_ORIGINS rather than replacing it.
        origins = parse_origins([os.environ.get("CRS_CORS_ORIGINS", ""), *args.cors_origin])
        settings = Settings.from_env(db_url=args.db, catalog=args.catalog, embedder=args.embedder, llm=args.llm,
                                     cors_origins=origins)
        served = Services(settings)
        catalog = served.catalog  # a missing catalog or an unusable database fails here, at once
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"catalog {catalog.name!r}: {catalog.title}; serving http://{args.host}:{args.port}/ "
          f"(API {PREFIX}/docs; CORS origins: {', '.join(settings.cors_origins) or 'same origin only'})",
          flush=True)
    import uvicorn

    uvicorn.run(create_app(served, serving=True), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
