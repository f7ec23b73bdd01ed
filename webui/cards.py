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
  through a folder opened to gradio's file server, and no server path appears in the page.
"""
from __future__ import annotations

import html
import re
from typing import Any

import gradio as gr

from crs.errors import UserError
from crs.facts import CatalogFacts
from crs.web.errors import public_message
from crs.web.reply_json import client_reply, image_url  # one reply JSON for every client

# Markdown's special characters; a backslash before each makes CommonMark show it as itself.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:])")

CARDS_CSS = """
.crs-cards { display: grid !important; grid-template-columns: repeat(auto-fill, minmax(112px, 1fr)); gap: 8px;
             list-style: none !important; margin: 8px 0 0 !important; padding: 0 !important;
             width: min(640px, 72vw); }  /* a chat bubble shrinks to its content: give the grid a width */
.crs-cards > li::before { content: none !important; }
.crs-card { display: flex; flex-direction: column; border: 1px solid var(--border-color-primary);
            border-radius: 8px; overflow: hidden; background: var(--background-fill-primary); margin: 0; }
.crs-card img, .crs-card .crs-no-image { width: 100%; height: 110px; object-fit: contain; background: #fff;
            padding: 6px; box-sizing: border-box; }
.crs-card .crs-no-image { display: flex; align-items: center; justify-content: center; color: #8a919c;
            font-size: 12px; background: #eef0f3; }
.crs-card .crs-name { font-weight: 600; font-size: 13px; line-height: 1.3; margin: 4px 6px 0;
            overflow-wrap: anywhere; }
.crs-card .crs-reason { color: var(--body-text-color-subdued); font-size: 12px; line-height: 1.3;
            margin: 2px 6px 6px; }
.crs-reply p { margin: 0 0 6px; }
"""


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


def card_html(number: int, item: dict[str, Any]) -> str:
    """One item: its picture (through the app's image route), numbered title and reason."""
    url = image_url(item["id"], bool(item.get("image")))
    title = plain_html(str(item.get("title", "")))
    picture = (f'<img src="{plain_html(url)}" alt="{title}" loading="lazy">' if url
               else '<div class="crs-no-image" role="img" aria-label="no picture">no picture</div>')
    return (f'<li class="crs-card" data-item-id="{plain_html(str(item["id"]))}">{picture}'
            f'<p class="crs-name">{number}. {title}</p>'
            f'<p class="crs-reason">{plain_html(str(item.get("reason", "")))}</p></li>')


def reply_html(reply: dict[str, Any]) -> str:
    """The whole reply as escaped HTML: the text, the item cards, any fallback note."""
    parts = [f"<p>{plain_html(line)}</p>" for line in str(reply.get("reply", "")).split("\n") if line.strip()]
    items = reply.get("items", [])
    if items:
        cards = "".join(card_html(n, item) for n, item in enumerate(items, start=1))
        parts.append(f'<ul class="crs-cards" aria-label="Suggested items">{cards}</ul>')
    note = fallback_note(reply.get("fallbacks", []))
    if note:
        parts.append(f"<p><em>{plain_html(note)}</em></p>")
    return f'<div class="crs-reply">{"".join(parts)}</div>'


def user_message(text: str, images: list[str], image_count: int) -> dict[str, Any]:
    """What the person sent. ``images`` are files in the page's upload folder (gradio serves
    those). After a reload the uploads are gone (the store keeps only their size and hash),
    so those turns say how many pictures there were instead."""
    content: list[Any] = [plain_markdown(text)] if text else []
    content += [{"path": path} for path in images]
    missing = image_count - len(images)
    if missing > 0:
        content.append(f"*({missing} picture{'s' if missing != 1 else ''})*")
    return {"role": "user", "content": content or [""]}


def assistant_message(reply: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": [gr.HTML(reply_html(reply), padding=False)]}
