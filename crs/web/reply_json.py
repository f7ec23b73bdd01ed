"""A reply as clients see it: the one ``Reply -> JSON`` of every web interface (the JSON API, the
chat page's API for programs, the page's item cards), so none of them rebuilds it its own way.

Works on :meth:`crs.turn.Reply.to_json`, fresh or as the store keeps it with a turn. The item's
server-side image path never leaves the server: it becomes ``image_url``, the app's own route.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from crs.replies import question_labels

if TYPE_CHECKING:
    from crs.facts import CatalogFacts

PREFIX = "/api/v1"


def image_url(external_id: str, has_image: bool) -> str | None:
    # Relative, so it works behind any host name or proxy prefix the page was loaded from;
    # quoted, because catalog ids may hold characters that are special in a URL.
    return f"{PREFIX}/items/{quote(external_id, safe='')}/image" if has_image else None


def client_reply(reply: dict[str, Any], facts: CatalogFacts | None = None) -> dict[str, Any]:
    """``{reply, action, question: {attribute, options, text, label, option_labels} | null,
    items: [{id, title, image_url, score, reason}], fallbacks}``: DESIGN's contract for a reply.
    The options stay values (what a client sends back when one is clicked); ``label`` and
    ``option_labels`` (one per option) are what a client shows, from the catalog's schema
    (``facts``; without it, the names as stored)."""
    question = reply.get("question")
    return {
        "reply": reply["reply"], "action": reply["action"],
        "question": {"attribute": question["attribute"], "options": list(question["options"]),
                     "text": question.get("text", ""),
                     **question_labels(facts, question["attribute"], list(question["options"]))} if question else None,
        "items": [{"id": i["id"], "title": i["title"], "image_url": image_url(i["id"], bool(i.get("image"))),
                   "score": i["score"], "reason": i["reason"]} for i in reply.get("items", [])],
        "fallbacks": list(reply.get("fallbacks", [])),
    }
