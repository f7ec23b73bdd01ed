"""Turning replies into what the chat page shows: chat messages with item cards, and the
reply as JSON for API clients.

Everything here works on the reply's JSON form (:meth:`crs.turn.Reply.to_json`), because that
is also what the store keeps per turn: a live turn and a turn re-read from
:meth:`crs.dialogue.DialogueManager.history` after a page reload render the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from crs.web_api import image_url  # the JSON API's item image URLs, one definition

PLACEHOLDER_IMAGE = Path(__file__).resolve().parent.parent / "assets" / "webui" / "no-image.svg"
GALLERY_COLUMNS = 5
GALLERY_HEIGHT = 200  # px (the caption covers the bottom of each card); "auto" leaves a tall empty box inside a chat bubble

_served_dirs: set[Path] = set()


def catalog_image(image: str) -> str:
    """A catalog image the page may show: a URL as is, a local file made servable, else a placeholder.

    Gradio serves only files in its cache, the working directory, the temp dir or static paths.
    Catalog images live wherever the catalog was ingested from, so the folders of the images
    actually shown become static paths (served in place, never copied into the cache). Only
    folders holding shown catalog images are exposed, never a whole drive or the store's folder.
    """
    if image.startswith(("http://", "https://")):
        return image
    path = Path(image).resolve() if image else None
    if path is None or not path.is_file():
        path = PLACEHOLDER_IMAGE
    if path.parent not in _served_dirs:
        gr.set_static_paths([path.parent])
        _served_dirs.add(path.parent)
    return str(path)


def reply_for_clients(reply: dict[str, Any], session_id: str) -> dict[str, Any]:
    """The reply JSON with the session id, and image URLs in place of server file paths."""
    items = [{key: value for key, value in item.items() if key != "image"}
             | {"image_url": image_url(item["id"], bool(item.get("image")))} for item in reply.get("items", [])]
    return {"session_id": session_id, **reply, "items": items}


def fallback_note(fallbacks: list[str]) -> str:
    """The visible note for a turn where a model-backed stage failed and rules answered instead."""
    if not fallbacks:
        return ""
    stages = "; ".join(fallbacks)
    return f"\u26a0\ufe0f *Part of this turn fell back to the built-in rules ({stages}).*"


def reply_text(reply: dict[str, Any]) -> str:
    """The reply as markdown: the text, each item's title and reason, and any fallback note."""
    lines = [reply.get("reply", "")]
    items = reply.get("items", [])
    if items:
        lines.append("\n".join(f"{n}. **{item['title']}** \u2014 {item['reason']}"
                               for n, item in enumerate(items, start=1)))
    note = fallback_note(reply.get("fallbacks", []))
    if note:
        lines.append(note)
    return "\n\n".join(line for line in lines if line)


def item_gallery(items: list[dict[str, Any]]) -> gr.Gallery:
    """The item cards of one reply: image and numbered title (the text above has the reasons)."""
    return gr.Gallery(value=[(catalog_image(item.get("image", "")), f"{n}. {item['title']}")
                             for n, item in enumerate(items, start=1)],
                      columns=min(len(items), GALLERY_COLUMNS), height=GALLERY_HEIGHT, object_fit="contain",
                      allow_preview=True, show_label=False, interactive=False, buttons=["fullscreen", "download"])


def user_message(text: str, images: list[str], image_count: int) -> dict[str, Any]:
    """What the person sent. After a reload the uploads are gone (the store keeps only their
    size and hash), so those turns say how many pictures there were instead."""
    content: list[Any] = [text] if text else []
    content += [{"path": path} for path in images]
    missing = image_count - len(images)
    if missing > 0:
        content.append(f"*({missing} picture{'s' if missing != 1 else ''})*")
    return {"role": "user", "content": content or [""]}


def assistant_message(reply: dict[str, Any]) -> dict[str, Any]:
    content: list[Any] = [reply_text(reply)]
    if reply.get("items"):
        content.append(item_gallery(reply["items"]))
    return {"role": "assistant", "content": content}
