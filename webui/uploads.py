"""The chat page's uploaded files: where they live, which paths a handler may read, and the
guard in front of gradio's upload route.

Gradio keeps page uploads in its upload folder (``GRADIO_TEMP_DIR``; app.py points it at a folder
of this app's own) and hands handlers their paths. A client can also name a path itself in an
event's payload, and a mounted gradio app does not check it, so every handler that reads a
"file the person uploaded" goes through :func:`uploaded_file`: a regular file inside the upload
folder, or a refusal that does not echo the path (which would let a client probe for files).

:class:`PageUploadGuard` wraps ``POST /gradio_api/upload`` (gradio accepts any file type there):
the per-client rate limit, a cap on the request body while it arrives, a disk budget for the
whole folder, and a content check of every stored file (an image of an accepted format and
size, judged by its bytes); a refused request's files are deleted at once. The same guard
rate-limits ``/gradio_api/queue/join``, through which the page's turns run. Old uploads are
deleted by the web app's janitor (:meth:`crs.web.services.Services.sweep`).
"""
from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gradio.processing_utils import save_file_to_cache
from gradio.utils import get_upload_folder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crs.web.rate_limits import RateLimited, RateLimiter
from crs.uploads import MIB, UploadError, UploadLimits, check_header, label, read_limited

UPLOAD_PATH = "/gradio_api/upload"
TURN_PATH = "/gradio_api/queue/join"
NOT_AN_UPLOAD = "not a file uploaded to this page (upload the picture first)"


def upload_folder() -> Path:
    return Path(get_upload_folder()).resolve()


def uploaded_file(path: str, what: str) -> Path:
    """``path`` if it is a regular file in the page's upload folder; otherwise an UploadError
    that names the image by its position only."""
    folder = upload_folder()
    try:
        resolved = Path(path).resolve(strict=True)
        regular = stat.S_ISREG(resolved.stat().st_mode)
    except (OSError, ValueError, RuntimeError):  # missing, unreadable, a link loop, a NUL in the name
        raise UploadError(422, f"{what}: {NOT_AN_UPLOAD}") from None
    if not regular or not resolved.is_relative_to(folder):
        raise UploadError(422, f"{what}: {NOT_AN_UPLOAD}")
    return resolved


def servable_copy(catalog_image: str) -> str:
    """A copy of one catalog picture in the upload folder, for the page to show and send (an
    example's picture). Copying the one file, not opening its folder to gradio, keeps every
    other file beside it private. An existing copy is reused and its age reset."""
    return save_file_to_cache(catalog_image, str(upload_folder()))


def folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


class PageUploadGuard:
    """ASGI middleware for the gradio page's upload and turn routes (see the module docstring)."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, limits: UploadLimits, disk_mb: int,
                 client: Callable[[Scope], str] | None = None) -> None:
        self.app = app
        self.limiter = limiter
        self.limits = limits
        self.disk_bytes = disk_mb * MIB
        self.client = client or (lambda scope: (scope.get("client") or ("unknown",))[0])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope["path"] not in (UPLOAD_PATH, TURN_PATH):
            await self.app(scope, receive, send)
            return
        try:
            self.limiter.hit("messages", self.client(scope))
        except RateLimited as exc:
            await _json(send, 429, str(exc), {"retry-after": str(exc.retry_after)})
            return
        if scope["path"] == TURN_PATH:
            await self.app(scope, receive, send)
        else:
            await self._upload(scope, receive, send)

    async def _upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        cap = self.limits.max_request_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > cap:
            await _json(send, 413, f"upload too large: at most {cap:,} bytes per request")
            return
        if folder_bytes(upload_folder()) > self.disk_bytes:
            await _json(send, 503, "the page's upload space is full right now; try again in a few minutes",
                        {"retry-after": "300"})
            return
        # The body is spooled (memory up to 1 MiB, then a temporary file) while it is counted, so
        # gradio never starts on a request that turns out too large.
        with tempfile.SpooledTemporaryFile(max_size=MIB) as body:
            size, more = 0, True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > cap:
                    await _json(send, 413, f"upload too large: at most {cap:,} bytes per request")
                    return
                body.write(chunk)
                more = message.get("more_body", False)
            body.seek(0)
            status, headers, content = await self._run(scope, body, size)
        if status == 200:
            refusal = self._check_stored(content)
            if refusal is not None:
                await _json(send, refusal.status, str(refusal))
                return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _run(self, scope: Scope, body: Any, size: int) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Gradio's upload route on the spooled body; its response is held back until checked.
        (Its background copy into the cache finishes before the call returns.)"""
        done = False
        response: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

        async def replay() -> Message:
            nonlocal done
            if done:  # the whole body was handed over: the next receive would wait for a disconnect
                return {"type": "http.disconnect"}
            chunk = body.read(256 * 1024)
            done = body.tell() >= size
            return {"type": "http.request", "body": chunk, "more_body": not done}

        async def hold(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"], response["headers"] = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                response["body"] += message.get("body", b"")

        await self.app(scope, replay, hold)
        return response["status"], response["headers"], response["body"]

    def _check_stored(self, content: bytes) -> UploadError | None:
        """Every file gradio stored must be an accepted image; the ones that are not are deleted
        at once, and the request is refused with the first problem. (Gradio names stored files by
        their content's hash, so a good image may be shared with an earlier upload: only the bad
        files, which no check ever let stay, are removed.)"""
        try:
            paths = [str(p) for p in json.loads(content)]
        except (ValueError, TypeError):
            return None  # not the list of paths this route answers with: pass it on untouched
        problems: list[UploadError] = []
        if len(paths) > self.limits.max_images:
            problems.append(UploadError(422, f"too many files: {len(paths)}, at most {self.limits.max_images} "
                                             "per message"))
        for number, path in enumerate(paths, start=1):
            what = label(number, Path(path).name)
            try:
                stored = uploaded_file(path, what)
                with stored.open("rb") as handle:
                    check_header(read_limited(handle, what, self.limits.max_bytes), what, self.limits)
            except UploadError as exc:
                problems.append(exc)
                with contextlib.suppress(OSError):
                    if Path(path).resolve().is_relative_to(upload_folder()):
                        Path(path).unlink()
        return problems[0] if problems else None


async def _json(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    payload = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
