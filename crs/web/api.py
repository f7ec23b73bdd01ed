"""The JSON API under ``/api/v1``: sessions, messages with image uploads, feedback, items.

A thin adapter over :class:`crs.dialogue.DialogueManager` (through :class:`crs.web.services.Services`):
the same ``respond`` that the chat page, the terminal chat and the simulated users call. The
contract (paths and fields) is in DESIGN.md; the OpenAPI document is at ``/api/v1/openapi.json``.

What every endpoint shares, done once in :class:`_GuardedRoute` rather than per endpoint:

* a per-client rate limit (:mod:`crs.web.rate_limits`): new sessions, messages and everything else
  each have their own budget; over it, 429 with ``Retry-After``;
* errors are always ``{"detail": "<a sentence for a person>"}``: validation errors are turned
  into one readable line, the project's own :class:`~crs.errors.UserError` family maps to 4xx/503,
  and anything else is logged with its traceback and answered with a generic 500 (a stack trace
  tells an attacker more than it tells a user). No answer names a server path, a database URL
  or a credential: when the store or the models cannot be opened the client gets 503 and a
  sentence, and the reason goes to the server log; a busy store answers 503 with ``Retry-After``;
* request bodies are capped while they arrive (a message may carry at most its images at their
  limit), so a huge upload is refused before it is spooled to disk;
* while the server's warm-up is still opening the models or building the index, the endpoints
  that need them answer 503 at once, with ``Retry-After`` (from the build's ETA) and the build's
  progress in the body (:class:`~crs.web.services.NotReady`); ``/health`` reports the same;
* endpoints are plain ``def`` functions: FastAPI runs them in its threadpool, so one session's
  blocking turn (encoders, FAISS, SQLite) does not hold up the others. The dialogue manager
  serialises turns of the same session with its own per-session lock.

Session ids are the dialogue manager's unguessable tokens; every read goes through the session
id in the path, so one session never sees another's turns or feedback.
"""
# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations at
# runtime, and those of the message endpoint describe the limits from the closure's settings.
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message as AsgiMessage

from crs.catalog.browse import get_item
from crs.catalog.info import catalog_info
from crs.dialogue import SessionNotFound
from crs.errors import UserError
from crs.facts import CatalogFacts
from crs.web.chat_intro import chat_intro
from crs.web.rate_limits import RateLimited, RateLimiter
from crs.search import QueryError
from crs.web.errors import INTERNAL_ERROR, UNAVAILABLE, busy_store
from crs.web.reply_json import PREFIX, client_reply, image_url
from crs.web.services import NotReady, Services, ServiceUnavailable
from crs.store import StoreError
from crs.turn import Message
from crs.uploads import UploadError, UploadLimits, check_uploads, release_memory

log = logging.getLogger(__name__)

FIELD_TOO_LARGE = "a form field is too large (over 1 MiB): the text of a message may have at most {chars:,} characters"


# -- response and request models (the OpenAPI document is generated from these) --------------------

class ErrorOut(BaseModel):
    detail: str = Field(description="what went wrong, for a person to read")


class SessionCreated(BaseModel):
    session_id: str = Field(description="an unguessable token; keep it private to the person chatting")


class QuestionOut(BaseModel):
    attribute: str
    options: list[str] = Field(description="values to pick from; the last one is usually 'any'. Send one back "
                                           "as the message text to answer")
    text: str = Field(description="the question as a sentence")
    label: str = Field(description="the attribute's name for people (the catalog schema's label)")
    option_labels: list[str] = Field(description="what to show on each option's button, in the order of "
                                                 "options (the schema's display names, else the value)")


class ItemCard(BaseModel):
    id: str = Field(description="the catalog's id of the item (use it for feedback and /items)")
    title: str
    image_url: str | None = Field(description="relative URL of the item's picture, or null when it has none")
    score: float
    reason: str = Field(description="one line on why it is shown")


class ReplyOut(BaseModel):
    reply: str = Field(description="the assistant's answer as text")
    action: Literal["ask", "recommend", "answer"]
    question: QuestionOut | None = Field(description="the clarifying question when action is 'ask'")
    items: list[ItemCard]
    fallbacks: list[str] = Field(description="model-backed stages that fell back to the rules this turn")


class ImageInfo(BaseModel):
    width: int
    height: int
    sha1: str = Field(description="sha1 of the decoded RGB pixels (transparency on white)")


class TurnOut(BaseModel):
    number: int
    text: str = Field(description="the text the person sent")
    images: list[ImageInfo] = Field(description="the images that were read, in order")
    reply: ReplyOut
    latency_ms: float


class SessionOut(BaseModel):
    session_id: str
    turns: list[TurnOut]
    liked: list[str] = Field(description="catalog ids of the items liked so far")
    disliked: list[str]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, max_length=512, description="the catalog id, as in items[].id")
    liked: StrictBool


class MessageForm(BaseModel):
    """The multipart body of a message. Unknown fields are refused (a field named ``image``
    instead of ``images`` would otherwise be dropped without a word)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, arbitrary_types_allowed=True)

    text: str = Field("", description="the message")
    images: list[UploadFile] | None = Field(None, description="pictures (PNG, JPEG, WebP, GIF)")
    images_brackets: list[UploadFile] | None = Field(None, alias="images[]",
                                                     description="the same, for clients that name the field images[]")


class Ok(BaseModel):
    ok: Literal[True] = True


class ItemOut(BaseModel):
    id: str
    title: str
    description: str
    attributes: dict[str, Any]
    source: str
    license: str
    has_image: bool
    image_url: str | None


class IndexOut(BaseModel):
    built: bool = Field(description="false: loaded from the on-disk cache")
    reason: str
    items: int
    seconds: float


class ProgressOut(BaseModel):
    stage: str = Field(description="what the build is doing, e.g. 'encoding pictures'")
    done: int
    total: int
    unit: str = Field(description="what done and total count, usually items")
    elapsed_s: float = Field(description="seconds since this stage started")
    eta_s: float | None = Field(description="seconds left at this stage's rate so far; null until known")


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    catalog: str
    ready: bool = Field(description="the models and the index are loaded: a chat turn will not wait for them")
    preparing: bool = Field(False, description="the server is still loading the models or building the index; "
                                               "chat requests answer 503 with Retry-After until it is done")
    progress: ProgressOut | None = Field(None, description="while not ready: the build's latest report "
                                                           "(null before any, or when nothing is built)")
    index: IndexOut | None


class NotReadyOut(BaseModel):
    detail: str = Field(description="that the catalog is still being prepared, and how far it is")
    ready: Literal[False] = False
    progress: ProgressOut | None = Field(description="the build's latest report, if any")


class ChatIntroOut(BaseModel):
    catalog: str = Field(description="the catalog's name")
    title: str = Field(description="the catalog's title (its schema's `title`), for a chat window's heading")
    pictures: bool = Field(description="whether the catalog's items have pictures: offer picture uploads only then")
    topics: list[str] = Field(description="what people choose by here: the askable attributes' labels")
    greeting: str = Field(description="a first line for the assistant that fits the catalog")
    placeholder: str = Field(description="what an empty chat says")
    input_placeholder: str = Field(description="a hint for the message box")


class CatalogOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    catalog: str
    title: str
    items: int
    images: dict[str, Any]
    attributes: list[dict[str, Any]]
    sources: dict[str, int]
    licenses: dict[str, int]


def reply_out(data: dict[str, Any], facts: CatalogFacts | None = None) -> ReplyOut:
    """:meth:`crs.turn.Reply.to_json` in the API's shape (:func:`crs.web.reply_json.client_reply`)."""
    return ReplyOut.model_validate(client_reply(data, facts))


# -- errors and body limits, for every route of the router ------------------------------------------

def error_response(exc: Exception, request: Request, max_text_chars: int = 2000) -> Response:
    """The JSON error for any exception an endpoint raised (see the module docstring)."""
    if isinstance(exc, StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 400 and "exceeded maximum size" in detail:  # Starlette's form parser
            return JSONResponse({"detail": FIELD_TOO_LARGE.format(chars=max_text_chars)}, 422)
        return JSONResponse({"detail": detail}, exc.status_code, headers=getattr(exc, "headers", None))
    if isinstance(exc, RequestValidationError):
        return JSONResponse({"detail": describe_validation(exc.errors())}, 422)
    if isinstance(exc, RateLimited):
        return JSONResponse({"detail": str(exc)}, 429, headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, UploadError):
        return JSONResponse({"detail": str(exc)}, exc.status)
    if isinstance(exc, SessionNotFound):
        return JSONResponse({"detail": str(exc)}, 404)
    if isinstance(exc, NotReady):  # before ServiceUnavailable, whose message is the generic one
        progress = exc.progress.as_dict() if exc.progress is not None else None
        return JSONResponse({"detail": str(exc), "ready": False, "progress": progress}, 503,
                            headers={"Retry-After": str(exc.retry_after)})
    busy = busy_store(exc)
    if busy is not None:
        log.warning("%s %s: %s", request.method, request.url.path, busy)
        return JSONResponse({"detail": str(busy)}, 503, headers={"Retry-After": str(busy.retry_after)})
    if isinstance(exc, (ServiceUnavailable, StoreError)):
        log.error("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": UNAVAILABLE}, 503, headers={"Retry-After": "30"})
    if isinstance(exc, QueryError):
        return JSONResponse({"detail": str(exc)}, 422)
    if isinstance(exc, UserError):
        return JSONResponse({"detail": str(exc)}, 400)
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": INTERNAL_ERROR}, 500)


def describe_validation(errors: Any) -> str:
    """FastAPI's list of validation errors as one line: ``liked: Input should be a valid boolean``."""
    parts = []
    for error in errors:
        where = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header")]
        message = error.get("msg", "invalid")
        if error.get("type") == "extra_forbidden":
            message = "unknown field (this request does not take it)"
        if error.get("type") == "json_invalid":
            message = f"invalid JSON: {error.get('ctx', {}).get('error', message)}"
            where = []
        parts.append(f"{'.'.join(where)}: {message}" if where else message)
    return "; ".join(parts) or "invalid request"


def _limited(request: Request, max_bytes: int) -> Request:
    """The request with its body capped at ``max_bytes``: the declared length is checked at
    once, the bytes actually received as they arrive (a client may lie or stream)."""
    too_large = (f"request body too large: a message may carry at most {max_bytes:,} bytes "
                 "(its images at their size limit, plus the text)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, too_large)
    received = 0
    receive = request.receive

    async def limited_receive() -> AsgiMessage:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise HTTPException(413, too_large)
        return message

    return Request(request.scope, limited_receive)


def _guarded_route(limits: UploadLimits, limiter: RateLimiter, services: Services) -> type[APIRoute]:
    class GuardedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
            handler = super().get_route_handler()
            bucket = _bucket(self.path, self.methods)
            chat = _needs_ready(self.path, self.methods)

            async def guarded(request: Request) -> Response:
                try:
                    limiter.hit(bucket, client_address(request))
                    if chat:  # before the body is read: a 503 costs the client no upload
                        services.require_ready()
                    return await handler(_limited(request, limits.max_request_bytes))
                except Exception as exc:  # every error leaves as JSON; see error_response
                    return error_response(exc, request, limits.max_text_chars)

            return guarded

    return GuardedRoute


def _bucket(path: str, methods: set[str] | None) -> str:
    """Which rate limit a route counts against: creating sessions, sending messages, or the rest."""
    if "POST" in (methods or set()):
        if path == f"{PREFIX}/sessions":
            return "sessions"
        if path.endswith("/messages"):
            return "messages"
    return "requests"


def _needs_ready(path: str, methods: set[str] | None) -> bool:
    """The chat calls, which answer 503 at once while the warm-up runs: new sessions, messages,
    feedback. Reading a session or an item works as soon as the store is open."""
    return "POST" in (methods or set()) and (path == f"{PREFIX}/sessions" or path.endswith(("/messages", "/feedback")))


def client_address(request: Request) -> str:
    """The client as the server sees it (behind a proxy, see crs.web.rate_limits)."""
    return request.client.host if request.client else "unknown"


# -- the router ------------------------------------------------------------------------------------------

def build_router(services: Services, limiter: RateLimiter | None = None) -> APIRouter:
    limits = services.settings.uploads
    limiter = limiter or RateLimiter(services.settings.rate_limits)
    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorOut, "description": text} for code, text in (
            (422, "invalid request"), (429, "too many requests from this address (see Retry-After)"),
            (500, "internal error (logged)"),
            (503, "the catalog, models, index or database is not available now (see Retry-After)"))}
    # While the warm-up builds, the chat endpoints answer 503 in this shape (the progress beside the detail).
    preparing = {503: {"model": NotReadyOut, "description": "the catalog is still being prepared (see Retry-After "
                                                            "and progress), or it could not be opened"}}
    router = APIRouter(prefix=PREFIX, route_class=_guarded_route(limits, limiter, services),
                       responses=errors)
    not_found = {404: {"model": ErrorOut, "description": "no such session or item"}}

    @router.get("/health", response_model=HealthOut, tags=["service"])
    def health() -> HealthOut:
        # Reads only what is already open: a health check answers at once, whatever is building.
        status = services.index_status
        index = IndexOut(built=status.built, reason=status.short_reason, items=status.items,
                         seconds=round(status.seconds, 3)) if status else None
        ready = services.ready
        progress = services.progress
        return HealthOut(catalog=services.catalog_name, ready=ready, preparing=services.preparing,
                         progress=ProgressOut(**progress.as_dict()) if progress is not None and not ready else None,
                         index=index)

    @router.get("/catalog", response_model=CatalogOut, tags=["service"])
    def catalog_summary() -> dict[str, Any]:
        return catalog_info(services.store, services.catalog)

    @router.get("/chat-intro", response_model=ChatIntroOut, tags=["service"])
    def intro() -> dict[str, Any]:
        """How a chat client introduces this catalog (the widget reads it when it opens)."""
        return chat_intro(services.store, services.catalog).to_json()

    @router.post("/sessions", response_model=SessionCreated, status_code=201, tags=["sessions"], responses=preparing)
    def create_session() -> SessionCreated:
        return SessionCreated(session_id=services.dm.start({"client": "api"}))

    @router.post("/sessions/{session_id}/messages", response_model=ReplyOut, tags=["sessions"], responses={
        **not_found, **preparing,
        400: {"model": ErrorOut, "description": "an image is empty, truncated or corrupt"},
        413: {"model": ErrorOut, "description": "an image has too many bytes or pixels (or is a decompression bomb)"},
        415: {"model": ErrorOut, "description": "an upload is not a PNG, JPEG, WebP or GIF image"},
        422: {"model": ErrorOut, "description": "too many images, text too long, or an empty message"}})
    def post_message(session_id: str, form: Annotated[MessageForm, Form(media_type="multipart/form-data")]) -> ReplyOut:
        dm = services.dm
        if not dm.exists(session_id):  # a 404 before any upload is looked at (respond reads the session itself)
            raise SessionNotFound(f"no session {session_id!r}")
        # A browser's empty <input type=file> still sends one part with no name and no bytes.
        uploads = [u for u in [*(form.images or []), *(form.images_brackets or [])] if u.filename or u.size]
        checked = check_uploads(form.text, [(u.filename, u.file) for u in uploads], limits)
        try:
            reply = dm.respond(session_id, Message(form.text, tuple(c.image for c in checked)))
        finally:
            if checked:
                release_memory()
        return reply_out(reply.to_json(), dm.facts)

    @router.get("/sessions/{session_id}", response_model=SessionOut, tags=["sessions"], responses=not_found)
    def get_session(session_id: str) -> SessionOut:
        dm = services.dm
        turns = [TurnOut(number=t["number"], text=t["message"], latency_ms=t["latency_ms"] or 0.0,
                         images=[ImageInfo(width=i["size"][0], height=i["size"][1], sha1=i["sha1"])
                                 for i in t["images"] or []],
                         reply=reply_out(t["reply"], dm.facts)) for t in dm.history(session_id)]
        belief = dm.belief(session_id)
        return SessionOut(session_id=session_id, turns=turns, liked=services.searcher.external_ids(belief.liked),
                          disliked=services.searcher.external_ids(belief.disliked))

    @router.post("/sessions/{session_id}/feedback", response_model=Ok, tags=["sessions"],
                 responses={**not_found, **preparing})
    def post_feedback(session_id: str, feedback: FeedbackIn) -> Ok:
        dm = services.dm
        if not dm.exists(session_id):  # a 404 for the session before the one for the item
            raise SessionNotFound(f"no session {session_id!r}")
        try:
            item_id = services.searcher.item_ids([feedback.item_id])[0]
        except QueryError as exc:  # an unknown item is a missing resource, as in GET /items/{id}
            raise HTTPException(404, str(exc)) from None
        dm.feedback(session_id, item_id, feedback.liked)
        return Ok()

    # The image route comes first: with ids that may contain "/" ({item_id:path}), ".../image"
    # must not be read as part of an id.
    @router.get("/items/{item_id:path}/image", tags=["items"], response_class=FileResponse, responses={
        **not_found, 200: {"content": {"image/*": {}}, "description": "the picture"},
        307: {"description": "the picture is only known by its URL: go there"}})
    def item_image(item_id: str) -> Response:
        view = get_item(services.store, services.catalog, item_id)
        if view is None and get_item(services.store, services.catalog, f"{item_id}/image") is not None:
            return item(f"{item_id}/image")  # /items/a/image where the id is "a/image" and there is no "a"
        if view is None:
            raise HTTPException(404, f"no item {item_id!r} in catalog {services.catalog.name!r}")
        if view.image_path is not None and view.image_path.is_file():  # served from the catalog's folder
            media_type = mimetypes.guess_type(view.image_path.name)[0] or "application/octet-stream"
            # Catalog pictures change only with the catalog: let browsers keep them for an hour.
            return FileResponse(view.image_path, media_type=media_type,
                                headers={"Cache-Control": "public, max-age=3600",
                                         "X-Content-Type-Options": "nosniff"})
        if view.remote_image:
            return RedirectResponse(view.remote_image, 307)
        raise HTTPException(404, f"item {item_id!r} has no image")

    @router.get("/items/{item_id:path}", response_model=ItemOut, tags=["items"], responses=not_found)
    def item(item_id: str) -> Response:
        view = get_item(services.store, services.catalog, item_id)
        if view is None:
            raise HTTPException(404, f"no item {item_id!r} in catalog {services.catalog.name!r}")
        out = ItemOut(**view.to_json(), image_url=image_url(view.id, view.image_path is not None
                                                            or bool(view.remote_image)))
        return JSONResponse(out.model_dump())

    return router
