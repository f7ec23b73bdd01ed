"""The chat page: layout and event wiring over :class:`webui.session.ChatTabs`.

``build_chat_ui(services)`` returns the Blocks that app.py mounts at ``/``. Nothing here touches
``services.dm`` until the first page load or API call, so building the page stays cheap.

Sessions: each browser tab keeps its dialogue session id in ``sessionStorage``, which is per tab
and survives a reload (``localStorage``, and so ``gr.BrowserState``, is shared by every tab of
the site, which would put two tabs in one conversation). On load the id comes back to the
server and the conversation is re-read from the store.

API for programs (``gradio_client``): ``/start`` -> session id; ``/respond`` (session_id, text,
image) -> reply JSON; ``/feedback`` (session_id, item_id, liked); ``/history`` (session_id).
The page's own events are ``api_visibility="private"`` (gradio 6's form of ``api_name=False``):
they exchange components, not data.

Items are cards inside the assistant's messages (:mod:`webui.cards`), with like and dislike on
each card. Those buttons are HTML, not gradio components: the page's script
(assets/webui/page.js) writes a click into a hidden textbox, whose change handler rates
the item. The same script keeps the latest exchange in view (the person's bubble, with their
picture, at the top of the chat rather than scrolled away by the cards below it).

Getting ready: until ``services.ready``, the page touches nothing that would wait for the models
or the index; it shows a banner with the build's progress (:mod:`webui.banner`), polled by a
``gr.Timer``, and loads itself when the app is ready.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

import gradio as gr

from crs.config import ASSETS_DIR
from crs.dialogue import DialogueManager
from crs.errors import UserError
from crs.settings import Settings
from retrieval.progress import BuildProgress
from crs.web.chat_intro import DEFAULT_TITLE, PICTURE_INPUT, PICTURE_PLACEHOLDER, ChatIntro

from .banner import WAITING_INPUT, banner_html, failure_html
from .cards import assistant_message, page_error, plain_markdown, user_message
from .session import ChatTabs, ClientApi, Example, TabState
from .thumbnails import thumbnail_url
from .uploads import servable_copy

MAX_OPTIONS = 8  # the policies offer at most 5 values and "any"; spare buttons for LLM policies
TURNS_AT_ONCE = 4  # turns computed in parallel across all tabs (a turn may wait on an LLM)
STORAGE_KEY = "crs-chat-session"

# Runs in the browser before the load handler: its return value replaces the handler's input.
READ_SESSION_JS = f"() => [window.sessionStorage.getItem('{STORAGE_KEY}') || '']"
WRITE_SESSION_JS = (f"(id) => {{ if (id) {{ window.sessionStorage.setItem('{STORAGE_KEY}', id); }} "
                    f"else {{ window.sessionStorage.removeItem('{STORAGE_KEY}'); }} return []; }}")
# The title arrives with the page's first full load: from then on the page is usable, which
# `<html data-crs-ready>` tells scripts and browser tests (the banner is gone, the box takes input).
WRITE_TITLE_JS = ("(title) => { if (title) { document.title = title; "
                  "document.documentElement.dataset.crsReady = 'true'; } return []; }")
# Card votes and keeping the latest exchange in view; a function gradio runs once on load.
PAGE_JS = (ASSETS_DIR / "webui" / "page.js").read_text(encoding="utf-8")
POLL_S = 1.0  # how often the banner asks how far the build is
# The chat fills the window above the heading, the option buttons and the message box, so the box
# stays on screen from 390 px phones to desktops; never so short that a card row does not fit.
CHAT_HEIGHT = "calc(100dvh - 250px)"
CHAT_MIN_HEIGHT = 300


class HasDialogue(Protocol):
    """What the page needs from :class:`crs.web.services.Services`: the dialogue manager (opened
    lazily), the settings (for the upload limits, the same as the JSON API's), and whether the
    app is ready (``ready``, ``progress``, ``warm_up_error``, ``start_warm_up``) for the banner."""

    @property
    def dm(self) -> DialogueManager: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def ready(self) -> bool: ...

    progress: BuildProgress | None
    warm_up_error: str | None

    def start_warm_up(self) -> Any: ...


@dataclass
class Page:
    """The page's components; those in :meth:`outputs` follow a TabState (see :func:`render`)."""

    state: gr.State
    session_box: gr.Textbox
    title_box: gr.Textbox  # the catalog's title, which WRITE_TITLE_JS makes the browser tab's
    vote_box: gr.Textbox  # a card's like/dislike click, written by PAGE_JS: {"item": id, "vote": ...}
    banner: gr.HTML  # shown while the app gets ready
    timer: gr.Timer  # polls readiness while the banner shows
    heading: gr.Markdown
    chatbot: gr.Chatbot
    note: gr.Markdown
    options_row: gr.Row
    options: list[gr.Button]
    # Inputs only: they do not follow the state.
    textbox: gr.MultimodalTextbox
    new_button: gr.Button

    def outputs(self) -> list[Any]:
        return [self.state, self.session_box, self.chatbot, self.note, self.options_row, *self.options]

    def arrival(self) -> list[Any]:
        """What a page load (and each readiness poll) sets: :meth:`outputs`, then the heading, the
        page title, the message box, the banner and the timer."""
        return [*self.outputs(), self.heading, self.title_box, self.textbox, self.banner, self.timer]


def messages(state: TabState) -> list[dict[str, Any]]:
    out = []
    for turn in state.turns:
        thumbnails = [url for url in map(thumbnail_url, turn.images) if url]
        out += [user_message(turn.text, thumbnails, turn.image_count), assistant_message(turn.reply, state.ratings)]
    return out


def chat_examples(examples: list[Example]) -> list[dict[str, Any]]:
    """The examples as the chatbot shows them while it is empty: text, and the picture as its icon."""
    return [{"text": e.text, "display_text": e.text} | ({"icon": servable_copy(e.image)} if e.image else {})
            for e in examples]


def render(state: TabState, examples: list[Example] | None = None, intro: ChatIntro | None = None) -> list[Any]:
    """Values for :meth:`Page.outputs`, in that order; ``examples`` also sets the chat's examples,
    ``intro`` (with them) its placeholder."""
    options = state.option_labels
    chat: Any = messages(state) if examples is None else gr.Chatbot(
        messages(state), examples=chat_examples(examples), visible=True,
        **({"placeholder": intro.placeholder} if intro is not None else {}))
    out: list[Any] = [state, state.session_id, chat, plain_markdown(state.note), gr.Row(visible=bool(options))]
    out += [gr.Button(value=options[n], visible=True) if n < len(options) else gr.Button(visible=False)
            for n in range(MAX_OPTIONS)]
    return out


def on_page_load(tabs: ChatTabs, stored_id: str) -> list[Any]:
    """Values for :meth:`Page.outputs`, then the heading, the page title and the message box. The
    catalog shapes the page: its title, examples from its own values, and picture hints and
    uploads only where it has pictures (:mod:`crs.web.chat_intro`)."""
    state, intro, examples = tabs.resume(stored_id), tabs.intro(), tabs.examples()
    return [*render(state, examples, intro), f"## {plain_markdown(intro.title)}", intro.title,
            gr.MultimodalTextbox(placeholder=intro.input_placeholder, sources=["upload"] if intro.pictures else [],
                                 interactive=True)]


def on_arrival(services: HasDialogue, tabs: ChatTabs, stored_id: str) -> list[Any]:
    """Values for :meth:`Page.arrival`. Until the app is ready nothing here waits for it: the
    page keeps its components, the message box waits, and the banner shows the build's progress
    (the timer asks again); once ready, the page loads. After a failed warm-up the banner says
    why and the page stays usable, so a message retries opening the catalog and shows the error."""
    if not services.ready:
        error = services.warm_up_error
        if error is None:
            services.start_warm_up()  # a no-op when the server started it; else someone must
        # The chat shows only once there is someone to talk to: meanwhile the banner takes its
        # place, and the message box stays on a phone's first screen below it.
        keep = [gr.skip(), gr.skip(), gr.Chatbot(visible=error is not None),
                *(gr.skip() for _ in range(2 + MAX_OPTIONS + 2))]
        if error is not None:
            return [*keep, gr.MultimodalTextbox(interactive=True), gr.HTML(failure_html(error), visible=True),
                    gr.Timer(active=False)]
        return [*keep, gr.MultimodalTextbox(interactive=False, placeholder=WAITING_INPUT),
                gr.HTML(banner_html(services.progress), visible=True), gr.Timer(active=True)]
    return [*on_page_load(tabs, stored_id), gr.HTML("", visible=False), gr.Timer(active=False)]


def parse_vote(raw: str) -> tuple[str, bool] | None:
    """A card click as PAGE_JS writes it: ``{"item": catalog id, "vote": "like"|"dislike", ...}``."""
    try:
        vote = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(vote, dict) or not isinstance(vote.get("item"), str) or vote.get("vote") not in ("like",
                                                                                                       "dislike"):
        return None
    return vote["item"], vote["vote"] == "like"


def build_chat_ui(services: HasDialogue) -> gr.Blocks:
    tabs = ChatTabs(lambda: services.dm, services.settings.uploads)
    api = ClientApi(lambda: services.dm, services.settings.uploads)
    private = {"api_visibility": "private"}
    turn = {**private, "concurrency_id": "dialogue-turn", "concurrency_limit": TURNS_AT_ONCE}

    with gr.Blocks(title=DEFAULT_TITLE) as ui:
        page = _layout()
        outputs = page.outputs()

        def on_load(stored_id: str) -> list[Any]:
            with _shown_as_error():
                return on_arrival(services, tabs, stored_id)

        def on_send(state: TabState, value: dict[str, Any] | None) -> list[Any]:
            value = value or {}
            with _shown_as_error():
                after = tabs.send(state, value.get("text", ""), value.get("files", []))
            sent = after.turns != state.turns
            # A refused message stays in the box, to be fixed rather than typed again.
            return [*render(after), gr.MultimodalTextbox(value=None) if sent else gr.MultimodalTextbox()]

        def on_start_over(state: TabState) -> list[Any]:
            # Whatever waits in the box (a refused upload) belongs to the conversation left behind.
            return [*render(tabs.start_over(state)), gr.MultimodalTextbox(value=None)]

        def shows(handler: Callable[..., TabState]) -> Callable[..., list[Any]]:
            def run(*args: Any) -> list[Any]:
                with _shown_as_error():
                    return render(handler(*args))
            return run

        def on_example(state: TabState, chosen: gr.SelectData) -> list[Any]:
            with _shown_as_error():
                return render(tabs.run_example(state, int(chosen.index)))

        def on_vote(state: TabState, raw: str) -> list[Any]:
            vote = parse_vote(raw)
            if vote is None:
                return render(replace(state, note="There is no such item to rate."))
            with _shown_as_error():
                return render(tabs.rate(state, *vote))

        ui.load(on_load, page.session_box, page.arrival(), js=READ_SESSION_JS, **private)
        ui.load(None, None, None, js=PAGE_JS, **private)
        page.timer.tick(on_load, page.session_box, page.arrival(), js=READ_SESSION_JS, **private)
        page.session_box.change(None, page.session_box, None, js=WRITE_SESSION_JS, **private)
        page.title_box.change(None, page.title_box, None, js=WRITE_TITLE_JS, **private)
        page.textbox.submit(on_send, [page.state, page.textbox], [*outputs, page.textbox], **turn)
        page.chatbot.example_select(on_example, page.state, outputs, **turn)
        page.new_button.click(on_start_over, page.state, [*outputs, page.textbox], **private)
        for n, button in enumerate(page.options):
            button.click(shows(lambda state, n=n: tabs.pick(state, n)), page.state, outputs, **turn)
        page.vote_box.change(on_vote, [page.state, page.vote_box], outputs, **private, concurrency_limit=None)
        _client_api(api, turn)
    return ui


@contextmanager
def _shown_as_error() -> Iterator[None]:
    """A UserError (the catalog cannot be opened, a session vanished) becomes gradio's error
    toast with its reason; anything else is a bug and keeps its traceback in the server log."""
    try:
        yield
    except UserError as exc:
        raise page_error(exc) from exc


def _layout() -> Page:
    state = gr.State(TabState())
    # Mirrors state.session_id into the browser, where WRITE_SESSION_JS stores it for reloads.
    session_box = gr.Textbox(visible="hidden")
    title_box = gr.Textbox(visible="hidden")
    vote_box = gr.Textbox(visible="hidden", elem_id="crs-vote")
    timer = gr.Timer(POLL_S, active=False)
    banner = gr.HTML(visible=False, elem_id="crs-banner")
    with gr.Row(equal_height=True, elem_id="crs-top"):
        heading = gr.Markdown(f"## {DEFAULT_TITLE}", elem_id="crs-heading")
        new_button = gr.Button("Start over", size="sm", scale=0, min_width=100)
    # No clear or copy icons: they sat over the person's first bubble, and "Start over" clears.
    chatbot = gr.Chatbot(show_label=False, elem_id="crs-chat", height=CHAT_HEIGHT, min_height=CHAT_MIN_HEIGHT,
                         autoscroll=False, group_consecutive_messages=False, buttons=[],
                         placeholder=PICTURE_PLACEHOLDER)
    with gr.Row(visible=False, elem_id="crs-options") as options_row:
        options = [gr.Button(visible=False, size="sm", min_width=60, scale=0) for _ in range(MAX_OPTIONS)]
    note = gr.Markdown(elem_id="crs-note")
    textbox = gr.MultimodalTextbox(file_types=["image"], file_count="multiple", show_label=False, autofocus=True,
                                   placeholder=PICTURE_INPUT, elem_id="crs-input")
    return Page(state, session_box, title_box, vote_box, banner, timer, heading, chatbot, note, options_row, options,
                textbox, new_button)


def _client_api(api: ClientApi, turn: dict[str, Any]) -> None:
    # /respond goes through real components, so an uploaded image is checked to be an upload
    # (gr.api would hand over any path a client names); the rest are plain JSON endpoints.
    with gr.Column(visible=False):
        session_id = gr.Textbox(label="session_id")
        text = gr.Textbox(label="text")
        # gr.File hands over the upload undecoded: the checks judge its bytes, as the JSON API does.
        image = gr.File(type="filepath", file_types=["image"], label="image")
        reply = gr.JSON(label="reply")
        send = gr.Button()
    send.click(api.respond, [session_id, text, image], reply, **{**turn, "api_visibility": "public"},
               api_name="respond")
    gr.api(api.start, api_name="start")
    gr.api(api.feedback, api_name="feedback", concurrency_limit=None)
    gr.api(api.history, api_name="history", concurrency_limit=None)
