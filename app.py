"""The web app: a gradio page at `/` and the JSON API under `/api/v1`, in one FastAPI application.

`app` is built at import time (tests import it without a server); the store and catalog open
lazily on first use, and the server starts only under `__main__`. The chat assistant itself
arrives with the dialogue manager; until then the page browses the catalog.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from functools import cached_property

import gradio as gr
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse

from crs.catalog.browse import attribute_values, get_item, list_items
from crs.catalog.demo import open_catalog
from crs.catalog.info import catalog_info
from crs.config import DEMO_CATALOG
from crs.store import Store, open_store
from crs.store.models import Catalog

BROWSE_FILTERS = ("category", "style", "colour")
ANY = "(any)"


@dataclass
class Services:
    """What requests share; opened on first use so importing this module stays cheap."""

    db_url: str | None = field(default_factory=lambda: os.environ.get("CRS_DB"))
    catalog_name: str = field(default_factory=lambda: os.environ.get("CRS_CATALOG", DEMO_CATALOG))

    @cached_property
    def store(self) -> Store:
        return open_store(self.db_url)

    @cached_property
    def catalog(self) -> Catalog:
        return open_catalog(self.store, self.catalog_name)


services = Services()
app = FastAPI(title="Conversational multimodal recommender", openapi_url="/api/v1/openapi.json",
              docs_url="/api/v1/docs", redoc_url=None)


@app.get("/api/v1/health")
def health() -> dict[str, str]:
    return {"status": "ok", "catalog": services.catalog.name}


@app.get("/api/v1/catalog")
def catalog_summary() -> dict:
    return catalog_info(services.store, services.catalog)


@app.get("/api/v1/items/{item_id}")
def item(item_id: str) -> dict:
    view = get_item(services.store, services.catalog, item_id)
    if view is None:
        raise HTTPException(404, f"no item {item_id!r} in catalog {services.catalog.name!r}")
    return {**view.to_json(), "image_url": f"/api/v1/items/{item_id}/image" if view.image_path else None}


@app.get("/api/v1/items/{item_id}/image")
def item_image(item_id: str) -> FileResponse:
    view = get_item(services.store, services.catalog, item_id)
    if view is None or view.image_path is None or not view.image_path.is_file():
        raise HTTPException(404, f"no image for item {item_id!r}")
    return FileResponse(view.image_path)


def browse(text: str, *filters: str) -> list[tuple[str, str]]:
    where = {name: value for name, value in zip(BROWSE_FILTERS, filters) if value and value != ANY}
    items = list_items(services.store, services.catalog, text, where)
    return [(str(i.image_path), i.title) for i in items if i.image_path]


def filter_choices() -> list[gr.Dropdown]:
    return [gr.Dropdown(choices=[ANY, *attribute_values(services.store, services.catalog, name)], value=ANY)
            for name in BROWSE_FILTERS]


def build_ui() -> gr.Blocks:
    with gr.Blocks(title="Sticker shop assistant") as ui:
        gr.Markdown("## Sticker shop assistant\nThe chat assistant is not built yet; browse the catalog meanwhile.")
        with gr.Row():
            text = gr.Textbox(label="Title contains", scale=2)
            dropdowns = [gr.Dropdown(label=name, choices=[ANY], value=ANY) for name in BROWSE_FILTERS]
        gallery = gr.Gallery(label="Items", columns=8, height="auto")
        for trigger in [text.submit, *(d.change for d in dropdowns)]:
            trigger(browse, [text, *dropdowns], gallery, api_name=False)
        ui.load(filter_choices, None, dropdowns, api_name=False).then(browse, [text, *dropdowns], gallery,
                                                                      api_name=False)
    return ui


app = gr.mount_gradio_app(app, build_ui(), path="/")


def main() -> None:
    parser = argparse.ArgumentParser(description="Start the web app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--catalog", default=DEMO_CATALOG)
    parser.add_argument("--db", default=None, help="SQLAlchemy URL (default: SQLite under $CRS_HOME)")
    args = parser.parse_args()
    services.catalog_name, services.db_url = args.catalog, args.db
    print(f"catalog {services.catalog.name!r}: {services.catalog.title}; serving http://{args.host}:{args.port}/")
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
