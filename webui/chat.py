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
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import gradio as gr

from crs.dialogue import DialogueManager
from crs.errors import UserError
from crs.settings import Settings
from crs.web.chat_intro import DEFAULT_TITLE, PICTURE_INPUT, PICTURE_PLACEHOLDER, ChatIntro

from .cards import assistant_message, page_error, plain_markdown, user_message
from .session import ChatTabs, ClientApi, Example, TabState
from .uploads import servable_copy

MAX_OPTIONS = 8  # the policies offer at most 5 values and "any"; spare buttons for LLM policies
MAX_ITEMS = 10  # rating slots; a reply with more items (k > 10) has its first 10 rateable
TURNS_AT_ONCE = 4  # turns computed in parallel across all tabs (a turn may wait on an LLM)
STORAGE_KEY = "crs-chat-session"

# Runs in the browser before the load handler: its return value replaces the handler's input.
READ_SESSION_JS = f"() => [window.sessionStorage.getItem('{STORAGE_KEY}') || '']"
WRITE_SESSION_JS = (f"(id) => {{ if (id) {{ window.sessionStorage.setItem('{STORAGE_KEY}', id); }} "
                    f"else {{ window.sessionStorage.removeItem('{STORAGE_KEY}'); }} return []; }}")
WRITE_TITLE_JS = "(title) => { if (title) { document.title = title; } return []; }"


class HasDialogue(Protocol):
    """What the page needs from :class:`crs.web.services.Services`: the dialogue manager (opened
    lazily) and the settings (for the upload limits, the same as the JSON API's)."""

    @property
    def dm(self) -> DialogueManager: ...

    @property
    def settings(self) -> Settings: ...


@dataclass
class RatingSlot:
    card: gr.Column
    title: gr.Markdown
    like: gr.Button
    dislike: gr.Button


@dataclass
class Page:
    """The page's components; those in :meth:`outputs` follow a TabState (see :func:`render`)."""

    state: gr.State
    session_box: gr.Textbox
    title_box: gr.Textbox  # the catalog's title, which WRITE_TITLE_JS makes the browser tab's
    heading: gr.Markdown
    chatbot: gr.Chatbot
    note: gr.Markdown
    options_row: gr.Row
    options: list[gr.Button]
    rate_panel: gr.Column
    slots: list[RatingSlot]
    # Inputs only: they do not follow the state.
    textbox: gr.MultimodalTextbox
    new_button: gr.Button

    def outputs(self) -> list[Any]:
        return [self.state, self.session_box, self.chatbot, self.note, self.options_row, *self.options,
                self.rate_panel, *(component for slot in self.slots
                                   for component in (slot.card, slot.title, slot.like, slot.dislike))]


def messages(state: TabState) -> list[dict[str, Any]]:
    out = []
    for turn in state.turns:
        out += [user_message(turn.text, list(turn.images), turn.image_count), assistant_message(turn.reply)]
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
        messages(state), examples=chat_examples(examples),
        **({"placeholder": intro.placeholder} if intro is not None else {}))
    out: list[Any] = [state, state.session_id, chat, plain_markdown(state.note), gr.Row(visible=bool(options))]
    out += [gr.Button(value=options[n], visible=True) if n < len(options) else gr.Button(visible=False)
            for n in range(MAX_OPTIONS)]
    out.append(gr.Column(visible=bool(state.shown)))
    for n in range(MAX_ITEMS):
        if n >= len(state.shown):
            out += [gr.Column(visible=False), "", gr.Button(), gr.Button()]
            continue
        item = state.shown[n]
        rating = state.ratings.get(item.item_id)
        out += [gr.Column(visible=True), f"**{n + 1}.** {plain_markdown(item.title)}",
                gr.Button(variant="primary" if rating is True else "secondary"),
                gr.Button(variant="stop" if rating is False else "secondary")]
    return out


def on_page_load(tabs: ChatTabs, stored_id: str) -> list[Any]:
    """Values for :meth:`Page.outputs`, then the heading, the page title and the message box. The
    catalog shapes the page: its title, examples from its own values, and picture hints and
    uploads only where it has pictures (:mod:`crs.web.chat_intro`)."""
    state, intro, examples = tabs.resume(stored_id), tabs.intro(), tabs.examples()
    return [*render(state, examples, intro), f"## {plain_markdown(intro.title)}", intro.title,
            gr.MultimodalTextbox(placeholder=intro.input_placeholder, sources=["upload"] if intro.pictures else [])]


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
                return on_page_load(tabs, stored_id)

        def on_send(state: TabState, value: dict[str, Any] | None) -> list[Any]:
            value = value or {}
            with _shown_as_error():
                after = tabs.send(state, value.get("text", ""), value.get("files", []))
            sent = after.turns != state.turns
            # A refused message stays in the box, to be fixed rather than typed again.
            return [*render(after), gr.MultimodalTextbox(value=None) if sent else gr.MultimodalTextbox()]

        def shows(handler: Callable[..., TabState]) -> Callable[..., list[Any]]:
            def run(*args: Any) -> list[Any]:
                with _shown_as_error():
                    return render(handler(*args))
            return run

        def on_example(state: TabState, chosen: gr.SelectData) -> list[Any]:
            with _shown_as_error():
                return render(tabs.run_example(state, int(chosen.index)))

        ui.load(on_load, page.session_box, [*outputs, page.heading, page.title_box, page.textbox],
                js=READ_SESSION_JS, **private)
        page.session_box.change(None, page.session_box, None, js=WRITE_SESSION_JS, **private)
        page.title_box.change(None, page.title_box, None, js=WRITE_TITLE_JS, **private)
        page.textbox.submit(on_send, [page.state, page.textbox], [*outputs, page.textbox], **turn)
        page.chatbot.example_select(on_example, page.state, outputs, **turn)
        page.new_button.click(shows(tabs.start_over), page.state, outputs, **private)
        page.chatbot.clear(shows(tabs.start_over), page.state, outputs, **private)  # its trash button
        for n, button in enumerate(page.options):
            button.click(shows(lambda state, n=n: tabs.pick(state, n)), page.state, outputs, **turn)
        for n, slot in enumerate(page.slots):
            for button, liked in ((slot.like, True), (slot.dislike, False)):
                button.click(shows(lambda state, n=n, liked=liked: tabs.rate(state, n, liked)), page.state, outputs,
                             **private, concurrency_limit=None)
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
    with gr.Row(equal_height=True):
        heading = gr.Markdown(f"## {DEFAULT_TITLE}")
        new_button = gr.Button("Start over", size="sm", scale=0, min_width=120)
    chatbot = gr.Chatbot(show_label=False, height=520, group_consecutive_messages=False, buttons=["copy_all"],
                         placeholder=PICTURE_PLACEHOLDER)
    with gr.Row(visible=False) as options_row:
        options = [gr.Button(visible=False, size="sm", min_width=80) for _ in range(MAX_OPTIONS)]
    with gr.Column(visible=False) as rate_panel:
        gr.Markdown("Like or dislike what I showed; it steers the next suggestions.")
        with gr.Row():
            slots = []
            for _ in range(MAX_ITEMS):
                with gr.Column(visible=False, min_width=150) as card:
                    title = gr.Markdown()
                    with gr.Row():
                        like = gr.Button("Like", size="sm", min_width=40)
                        dislike = gr.Button("Dislike", size="sm", min_width=40)
                slots.append(RatingSlot(card, title, like, dislike))
    note = gr.Markdown()
    textbox = gr.MultimodalTextbox(file_types=["image"], file_count="multiple", show_label=False, autofocus=True,
                                   placeholder=PICTURE_INPUT)
    return Page(state, session_box, title_box, heading, chatbot, note, options_row, options, rate_panel, slots, textbox,
                new_button)


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
