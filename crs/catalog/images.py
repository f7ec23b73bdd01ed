"""Ingest-time image checks: local files must decode; URLs are fetched into a cache first."""
from __future__ import annotations

import hashlib
import os
import stat
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from retrieval.images import ImageLoadError, load_image

from ..errors import UserError
from ..uploads import UploadError, read_limited

MAX_IMAGE_BYTES = 25 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
FETCH_TIMEOUT_S = 10.0
_URL_PREFIXES = ("http://", "https://")


class ImageProblem(UserError, ValueError):
    """An item's image cannot be used; the message says why."""


@dataclass(frozen=True)
class ResolvedImage:
    file: str | None  # local path (relative to the catalog's image root when possible), None if not local
    sha1: str | None


def is_url(ref: str) -> bool:
    return ref.startswith(_URL_PREFIXES)


def check_image_file(path: Path) -> str:
    """Decode the file fully (truncation only shows on decode) and return its sha1."""
    data = read_image_file(path)
    check_image_bytes(data, str(path))
    return hashlib.sha1(data).hexdigest()


def read_image_file(path: Path, max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; ImageProblem for anything else.

    A catalog row names any path, and ``read_bytes`` on ``/dev/zero`` never ends (it died of
    MemoryError at 2.9 GB) while a FIFO blocks forever. So: only regular files are opened, the
    open cannot block (O_NONBLOCK, then fstat on what was really opened, in case the path was
    swapped after the stat), and at most ``max_bytes`` + 1 bytes are read.
    """
    try:
        _require_regular(path, os.stat(path).st_mode)  # before open: opening some devices has effects
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ImageProblem(f"image file not found: {path}") from None
    except OSError as exc:
        raise ImageProblem(f"cannot read image file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        _require_regular(path, os.fstat(handle.fileno()).st_mode)
        try:
            return read_limited(handle, str(path), max_bytes)
        except UploadError as exc:  # the upload wording ("too large: more than ...") fits ingest too
            raise ImageProblem(str(exc)) from None
        except OSError as exc:
            raise ImageProblem(f"cannot read image file {path}: {exc.strerror}") from None


def _require_regular(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kinds = {stat.S_ISDIR: "a folder", stat.S_ISFIFO: "a FIFO, a named pipe", stat.S_ISCHR: "a character device",
             stat.S_ISBLK: "a block device", stat.S_ISSOCK: "a socket"}
    kind = next((name for test, name in kinds.items() if test(mode)), "something else")
    raise ImageProblem(f"{path}: not a regular file (it is {kind}); an image must be a file")


def check_image_bytes(data: bytes, name: str) -> tuple[int, int]:
    """Raise ImageProblem unless `data` is a whole, decodable, reasonably sized image; returns its size.

    Decoding goes through retrieval's `load_image`, the same gate every encoder and upload
    passes, so ingest accepts exactly what the models can read.
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageProblem(f"{name}: image is {len(data)} bytes, more than the limit of {MAX_IMAGE_BYTES}")
    try:
        return load_image(data, max_pixels=MAX_IMAGE_PIXELS).size
    except ImageLoadError as exc:
        raise ImageProblem(f"{name}: {str(exc).split(': ', 1)[-1]}") from None


class ImageFetcher:
    """Fetches image URLs into a content-addressed cache; a cached URL is never fetched again."""

    def __init__(self, cache_dir: Path, timeout_s: float = FETCH_TIMEOUT_S) -> None:
        self.cache_dir = cache_dir
        self.timeout_s = timeout_s

    def cached_path(self, url: str) -> Path:
        return self.cache_dir / (hashlib.sha1(url.encode()).hexdigest() + ".img")

    def fetch(self, url: str) -> Path:
        path = self.cached_path(url)
        if path.exists():
            return path
        request = urllib.request.Request(url, headers={"User-Agent": "crs-ingest/0.1"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                data = response.read(MAX_IMAGE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise ImageProblem(f"could not fetch image {url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ImageProblem(f"could not fetch image {url} (offline or unreachable?): {reason}") from None
        check_image_bytes(data, url)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a killed ingest never leaves a half-written cache file
        return path


def resolve_image(ref: str, root: Path, fetcher: ImageFetcher | None) -> ResolvedImage:
    """Check one image reference; fetch URLs when a fetcher is given, else keep them as references."""
    if not ref:
        return ResolvedImage(None, None)
    if is_url(ref):
        if fetcher is None:
            return ResolvedImage(None, None)
        path = fetcher.fetch(ref)
        return ResolvedImage(str(path), check_image_file(path))
    path = Path(ref).expanduser()
    full = path if path.is_absolute() else root / path
    sha1 = check_image_file(full)
    return ResolvedImage(ref if not path.is_absolute() else str(path), sha1)
