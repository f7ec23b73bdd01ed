"""Ask a chat model for one JSON object and get it back validated, or get :class:`LLMError`.

Models answer JSON in many wrappings: bare, inside ``` fences, after a sentence of prose,
after a ``<think>`` block. We take the first JSON object in the reply text rather than rely on a
provider's structured-output mode, because that mode differs per backend (llama.cpp servers
answer HTTP 500 to ``json_schema``; the test fakes and small local models have none at all).

The contract with the dialogue manager: every problem that comes from the model (unreachable,
slow, refused, garbage, a value outside the catalog's vocabulary) is raised as :class:`LLMError`,
so it can fall back to the rule-based stage for that turn. A bug in our own code is not wrapped.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable
from pydantic import BaseModel, ValidationError

from ..errors import StageFailure

log = logging.getLogger(__name__)
# One INFO line per stage call: whether the reply was schema-valid JSON (the CI's slow test and
# benchmarks/llm_stages.py count these). Silent unless the program configures logging.
calls_log = logging.getLogger("crs.llm.calls")
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

MAX_REPLY_CHARS = 20_000  # a reply longer than this is cut before the JSON search (runaway generation)
MAX_REASON_CHARS = 200  # LLMError reasons are stored on the turn: keep them one line
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL | re.IGNORECASE)


class LLMError(StageFailure):
    """The model gave no usable answer this turn; the message is a short reason for the turn record."""

    def __init__(self, reason: str) -> None:
        reason = " ".join(reason.split())
        super().__init__(reason if len(reason) <= MAX_REASON_CHARS else reason[:MAX_REASON_CHARS - 3] + "...")


_CANCEL: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("crs_llm_cancel", default=None)
_IN_FLIGHT: dict[threading.Thread, threading.Event] = {}  # calls still running -> their cancellation flags
_IN_FLIGHT_LOCK = threading.Lock()


def call_with_timeout(fn: Callable[[], T], timeout_s: float) -> T:
    """Run ``fn`` in a worker thread; raise :class:`LLMError` if it has not returned in ``timeout_s``.

    Works for any client, including in-process models that take no timeout. On the timeout the
    call's cancellation flag is set (:func:`cancelled` reads it inside ``fn``): backends that
    generate in this process stop at their next token, so an abandoned call does not keep the
    model busy and the next stage's call does not queue behind it. The worker is a daemon
    thread, so a client that never returns cannot hold up the turn; :func:`abandon_all` cancels
    and joins what is left before the models are freed at exit. Exceptions from ``fn`` are
    re-raised as they are.
    """
    box: dict[str, Any] = {}
    done = threading.Event()
    cancel = threading.Event()

    def run() -> None:
        _CANCEL.set(cancel)
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 (handed to the caller's thread, which decides)
            box["error"] = exc
        finally:
            done.set()
            with _IN_FLIGHT_LOCK:
                _IN_FLIGHT.pop(threading.current_thread(), None)

    context = contextvars.copy_context()  # LangChain callbacks and tracing live in context variables
    thread = threading.Thread(target=context.run, args=(run,), name="llm-call", daemon=True)
    with _IN_FLIGHT_LOCK:
        _IN_FLIGHT[thread] = cancel
    thread.start()
    if not done.wait(timeout_s):
        cancel.set()
        raise LLMError(f"timeout after {timeout_s:.1f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def cancelled() -> bool:
    """Whether the call running in this thread was abandoned by its caller (timed out or shut down).
    A backend that generates token by token checks it and stops generating."""
    event = _CANCEL.get()
    return event is not None and event.is_set()


def in_flight() -> int:
    """How many model calls are still running (abandoned ones included)."""
    with _IN_FLIGHT_LOCK:
        return len(_IN_FLIGHT)


def abandon_all(wait_s: float) -> bool:
    """Cancel every model call still running and wait up to ``wait_s`` for their threads to end;
    True if none is left. Called before in-process models are freed at exit: freeing a model
    while a thread still generates with it crashes the interpreter (status 139)."""
    with _IN_FLIGHT_LOCK:
        running = dict(_IN_FLIGHT)
    for cancel in running.values():
        cancel.set()
    deadline = time.monotonic() + wait_s
    for thread in running:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in running)


def reply_text(message: BaseMessage | dict[str, Any]) -> str:
    """The text of a reply, whether its content is a string or a list of content blocks; from
    ``with_structured_output(include_raw=True)``, the raw message's (we parse and check it ourselves)."""
    if isinstance(message, dict):
        message = message["raw"]
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def extract_json(text: str) -> dict[str, Any]:
    """The first complete top-level JSON object in ``text``; :class:`LLMError` if there is none.

    Only an object that opens outside any other brace counts: in a reply cut off by the token
    limit (``{"require": {"colour": ["red"]}, "exclude": {"colour": ["bro``) the inner
    ``{"colour": ["red"]}`` is complete, but taking it would turn a broken answer into a
    different, silently wrong one (here an empty critique). Such a reply is an LLMError, so the
    turn falls back to the rules and the fallback is recorded.
    """
    text = _THINK.sub("", text[:MAX_REPLY_CHARS])
    decoder = json.JSONDecoder()
    for start in _top_level_braces(text):
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue  # braces in prose ("{not json}"); a later top-level object may still be whole
        if isinstance(value, dict):
            return value
    if "{" in text:  # most often a reply cut off by the token limit
        raise LLMError(f"reply cut off or malformed: no complete top-level JSON object in "
                       f"{_excerpt(text, text.index('{'))!r}")
    raise LLMError("no JSON in reply" + (f": {text.strip()[:60]!r}" if text.strip() else " (empty)"))


def _top_level_braces(text: str) -> list[int]:
    """Offsets of the ``{`` that open at depth 0 (braces inside JSON strings ignored): an object
    starting inside an unclosed one is a part of it, never an answer of its own."""
    starts, depth, in_string, escaped = [], 0, False, False
    for offset, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"' and depth > 0:  # quotes in prose outside any object are not JSON strings
            in_string = True
        elif char == "{":
            if depth == 0:
                starts.append(offset)
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
    return starts


def _excerpt(text: str, start: int) -> str:
    tail = text[start:].strip()
    return tail if len(tail) <= 60 else tail[:28] + " ... " + tail[-28:]


def validate(data: dict[str, Any], schema: type[M]) -> M:
    """``data`` as ``schema``; the first problem becomes a one-line :class:`LLMError`."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "reply"
        raise LLMError(f"field {where}: {error['msg']}") from None


def invoke_text(model: BaseChatModel | Runnable, messages: Sequence[BaseMessage], *, timeout_s: float) -> str:
    """The model's reply text, within ``timeout_s``; any failure of the model is an :class:`LLMError`."""
    try:
        reply = call_with_timeout(lambda: model.invoke(list(messages)), timeout_s)
    except LLMError:
        raise
    except Exception as exc:  # raised inside the model client: refused connection, HTTP 500, no image support...
        log.debug("model call failed", exc_info=True)
        raise LLMError(f"model failed: {type(exc).__name__}: {exc}") from exc
    return reply_text(reply)


def with_json_schema(model: BaseChatModel, schema: dict[str, Any], name: str = "answer") -> Runnable:
    """``model`` bound to decode only replies that fit ``schema``, where its backend can.

    In-process llama.cpp turns the schema into a grammar (``model.bind(json_schema=...)``). Ollama
    and OpenAI's own API go through LangChain's ``with_structured_output(method="json_schema")``
    (Ollama: ``format``; OpenAI: a ``json_schema`` response format, ``strict`` off because the
    schema leaves keys optional), with ``include_raw`` so the reply text still goes through
    :func:`parse_reply` and every backend fails the same way (LLMError). OpenAI-compatible servers,
    transformers models and the fakes get the model unchanged: servers differ in what they accept
    (llama.cpp servers answered HTTP 500), and the prompt names the same keys anyway.
    """
    from .local_chat import LocalChatModel

    if isinstance(model, LocalChatModel):
        return model.bind(json_schema=schema) if model.decodes_json_schema else model
    kind = type(model).__name__
    titled = {"title": name, **schema}  # with_structured_output names the format after the title
    if kind == "ChatOllama":
        return model.with_structured_output(titled, method="json_schema", include_raw=True)
    if kind == "ChatOpenAI" and "api.openai.com" in str(getattr(model, "openai_api_base", None) or "api.openai.com"):
        return model.with_structured_output(titled, method="json_schema", include_raw=True, strict=False)
    return model


def ask_json(model: BaseChatModel | Runnable, messages: Sequence[BaseMessage], schema: type[M], *,
             timeout_s: float) -> M:
    """Send ``messages``, take the first JSON object of the reply and validate it against ``schema``."""
    started = time.perf_counter()
    try:
        text = invoke_text(model, messages, timeout_s=timeout_s)
    except LLMError as exc:
        calls_log.info("stage=%s outcome=failed seconds=%.2f reason=%s", schema.__name__,
                       time.perf_counter() - started, exc)
        raise
    try:
        answer = parse_reply(text, schema)
    except LLMError as exc:
        calls_log.info("stage=%s outcome=invalid seconds=%.2f reason=%s", schema.__name__,
                       time.perf_counter() - started, exc)
        raise
    calls_log.info("stage=%s outcome=valid seconds=%.2f", schema.__name__, time.perf_counter() - started)
    return answer


def parse_reply(text: str, schema: type[M]) -> M:
    """A reply text (from any generator, not only chat models) -> ``schema``, or :class:`LLMError`."""
    return validate(extract_json(text), schema)


def value_lists(value: Any) -> Any:
    """``{attribute: values}`` with every value a list: models write ``{"colour": "red"}`` as often
    as ``{"colour": ["red"]}`` and both mean the same. For pydantic "before" validators."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {k: [] if v is None else [v] if isinstance(v, str) else v for k, v in value.items()}
    return value


def one_of(field: str, value: str, allowed: Sequence[str]) -> str:
    """``value`` spelled as in ``allowed`` (case and spaces forgiven); :class:`LLMError` if absent."""
    key = _key(value)
    for candidate in allowed:
        if _key(candidate) == key:
            return candidate
    shown = ", ".join(allowed[:12]) + (f", ... ({len(allowed)} in all)" if len(allowed) > 12 else "")
    raise LLMError(f"field {field}: {value!r} is not one of {shown or '(nothing)'}")


def _key(text: str) -> str:
    return " ".join(str(text).lower().replace("_", " ").split())
