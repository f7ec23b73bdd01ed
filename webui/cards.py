"""Turning replies into what the chat page shows: chat messages with item cards, and the
reply as JSON for API clients.

Everything here works on the reply's JSON form (:meth:`crs.turn.Reply.to_json`), because that
is also what the store keeps per turn: a live turn and a turn re-read from
:meth:`crs.dialogue.DialogueManager.history` after a page reload render the same way.

Two rules keep the page safe whatever a catalog holds:

* catalog text (titles, reasons, values, the catalog's title) is always plain text: it is
  escaped here (:func:`plain_html`, :func:`plain_markdown`), so a title such as
  ``![x](http://host/t.png)`` or ``"><iframe`` never becomes markup or fetches anything;
* pictures reach the browser only through the app's own item image route
  (``/api/v1/items/{id}/image``, which serves exactly the catalog's known image files), never
  through a folder opened to gradio's file server, and no server path appears in the page (the
  person's own uploads come back as small ``data:`` thumbnails, :mod:`webui.thumbnails`).
"""
from __future__ import annotations

import html
import re
from typing import Any

import gradio as gr

from crs.config import ASSETS_DIR
from crs.errors import UserError
from crs.facts import CatalogFacts
from crs.web.errors import public_message
from crs.web.reply_json import client_reply, image_url  # one reply JSON for every client

# Markdown's special characters; a backslash before each makes CommonMark show it as itself.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:])")

# The page's look (cards, bubbles, the banner, the narrow layout) lives beside the widget's files.
CARDS_CSS = (ASSETS_DIR / "webui" / "page.css").read_text(encoding="utf-8")

# The widget's thumbs (assets/widget/widget.js, ICONS.up and ICONS.down): both clients draw the same
# card. Constant markup, never catalog text.
LIKE_ICON = ('<path d="M7 11v9H4v-9zM7 11l4-8a2.5 2.5 0 0 1 2.5 2.5V9h5.3a2 2 0 0 1 2 2.3l-1.3 7A2 2 0 0 1 '
             '17.5 20H7"/>')
DISLIKE_ICON = ('<path d="M17 13V4h3v9zM17 13l-4 8a2.5 2.5 0 0 1-2.5-2.5V15H5.2a2 2 0 0 1-2-2.3l1.3-7'
                'A2 2 0 0 1 6.5 4H17"/>')


def plain_html(text: str) -> str:
    """``text`` as HTML that shows exactly those characters (quotes too, for attributes)."""
    return html.escape(text, quote=True)


def plain_markdown(text: str) -> str:
    """``text`` as Markdown that shows exactly those characters: no link, image, emphasis or tag."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def page_error(exc: UserError) -> gr.Error:
    """A problem the visitor caused (or a service that is down) as gradio's error toast. The
    toast renders HTML, so the message is escaped; services' own reasons stay in the log."""
    return gr.Error(html.escape(public_message(exc), quote=False))


def reply_for_clients(reply: dict[str, Any], session_id: str, facts: CatalogFacts | None = None) -> dict[str, Any]:
    """The JSON API's reply (crs.web.reply_json) with the session id: the same shape for every client."""
    return {"session_id": session_id, **client_reply(reply, facts)}


def fallback_note(fallbacks: list[str]) -> str:
    """The visible note for a turn where a model-backed stage failed and rules answered instead."""
    if not fallbacks:
        return ""
    return f"\u26a0\ufe0f Part of this turn fell back to the built-in rules ({'; '.join(fallbacks)})."


def card_html(number: int, item: dict[str, Any], rating: bool | None = None) -> str:
    """One item as the widget draws it: the whole picture (through the app's image route), the full
    numbered title, the reason, and like/dislike on the card. ``rating``: the person's verdict so
    far (True liked, False disliked, None neither), shown as the pressed button. The buttons carry
    the item's catalog id; the page's script (assets/webui/page.js) sends a click to the server."""
    item_id = plain_html(str(item["id"]))
    url = image_url(str(item["id"]), bool(item.get("image")))
    title = plain_html(str(item.get("title", "")))
    picture = (f'<img src="{plain_html(url)}" alt="{title}" loading="lazy">' if url
               else f'<div class="crs-no-image" role="img" aria-label="{title}: no picture">no picture</div>')
    reason = str(item.get("reason", ""))
    votes = "".join(
        f'<button type="button" class="crs-vote crs-{verdict}" data-vote="{verdict}" data-item-id="{item_id}" '
        f'aria-pressed="{"true" if rating is pressed else "false"}" aria-label="{label} {title}" title="{label}">'
        f'<svg viewBox="0 0 24 24" width="15" height="15" fill="none" stroke="currentColor" stroke-width="2" '
        f'stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">{icon}</svg></button>'
        for verdict, label, pressed, icon in (("like", "Like", True, LIKE_ICON),
                                              ("dislike", "Dislike", False, DISLIKE_ICON)))
    return (f'<li class="crs-card" data-item-id="{item_id}">{picture}<div class="crs-body">'
            f'<p class="crs-name">{number}. {title}</p>'
            + (f'<p class="crs-reason">{plain_html(reason)}</p>' if reason else "")
            + f'</div><div class="crs-actions">{votes}</div></li>')


def reply_html(reply: dict[str, Any], ratings: dict[str, bool] | None = None) -> str:
    """The whole reply as escaped HTML: the text, the item cards (``ratings``: catalog id -> liked,
    for the pressed buttons), any fallback note."""
    ratings = ratings or {}
    parts = [f"<p>{plain_html(line)}</p>" for line in str(reply.get("reply", "")).split("\n") if line.strip()]
    items = reply.get("items", [])
    if items:
        cards = "".join(card_html(n, item, ratings.get(str(item["id"]))) for n, item in enumerate(items, start=1))
        parts.append(f'<ul class="crs-cards" aria-label="Suggested items">{cards}</ul>')
    note = fallback_note(reply.get("fallbacks", []))
    if note:
        parts.append(f"<p><em>{plain_html(note)}</em></p>")
    return f'<div class="crs-reply">{"".join(parts)}</div>'


def user_message(text: str, thumbnails: list[str], image_count: int) -> dict[str, Any]:
    """What the person sent, in one bubble: the pictures above the text, as the widget shows them.
    ``thumbnails`` are small ``data:`` URLs of the uploads (:func:`webui.thumbnails.thumbnail_url`),
    so no server path reaches the page. After a reload the uploads are gone (the store keeps only
    their size and hash), so those turns say how many pictures there were instead."""
    if not thumbnails and image_count == 0:
        return {"role": "user", "content": [plain_markdown(text) if text else ""]}
    pictures = "".join(f'<img src="{plain_html(url)}" alt="Your picture {n}">'
                       for n, url in enumerate(thumbnails, start=1))
    missing = image_count - len(thumbnails)
    note = (f'<p class="crs-note">({missing} picture{"s" if missing != 1 else ""})</p>' if missing > 0 else "")
    words = f"<p>{plain_html(text)}</p>" if text else ""
    body = (f'<div class="crs-thumbs">{pictures}</div>' if pictures else "") + note + words
    return {"role": "user", "content": [gr.HTML(f'<div class="crs-user">{body}</div>', padding=False)]}


def assistant_message(reply: dict[str, Any], ratings: dict[str, bool] | None = None) -> dict[str, Any]:
    return {"role": "assistant", "content": [gr.HTML(reply_html(reply, ratings), padding=False)]}
