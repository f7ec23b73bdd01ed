"""What the web app's parts share: settings, and the store, catalog, searcher and dialogue manager,
each opened once, on first use, whichever thread asks first.

The JSON API (:mod:`crs.web_api`) and the gradio chat page (``webui.chat``) both take one
:class:`Services` and talk to the conversation only through ``services.dm`` (the
:class:`~crs.dialogue.DialogueManager`), so the page, the API and the embeddable widget all run
the same system. Opening is lazy because importing the app must stay cheap (tests import it,
``uvicorn app:app`` imports it) and because the first open of a catalog may build its index;
:meth:`Services.start_warm_up` does it in the background when a server starts.

Public attributes: ``settings``; ``store``, ``catalog``, ``searcher``, ``dm`` (opened on first
access, thread-safe); ``ready`` (the dialogue manager is open); ``index_status``. Clients see the catalog's own ids;
``searcher.item_ids`` / ``searcher.external_ids`` translate.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar


from retrieval.embedder import DEFAULT_EMBEDDER

from .catalog.demo import open_catalog
from .catalog_index import IndexStatus
from .config import ASSETS_DIR, DEMO_CATALOG
from .dialogue import DialogueManager
from .errors import UserError
from .rate_limits import RateLimits
from .search import CatalogSearch
from .session_expiry import expire_sessions
from .store import Store, open_store
from .store.models import Catalog
from .uploads import UploadLimits

log = logging.getLogger(__name__)
T = TypeVar("T")

_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")


def parse_origins(values: list[str] | tuple[str, ...] | str | None) -> tuple[str, ...]:
    """CORS origins from repeated options and/or comma-separated text, checked and normalised.

    An origin is ``scheme://host[:port]`` exactly as a browser sends it in the Origin header; a
    path or a trailing slash would never match, so it is refused here rather than ignored later.
    ``*`` is refused too: the API is meant for the sites a shop names, not for every site."""
    if values is None:
        return ()
    items = [values] if isinstance(values, str) else list(values)
    out: list[str] = []
    for item in items:
        for origin in (part.strip() for part in item.split(",")):
            if not origin:
                continue
            if origin == "*":
                raise UserError("CORS origin '*' is not allowed: list the sites that may call the API, "
                                "e.g. --cors-origin https://shop.example")
            origin = origin.rstrip("/")
            if not _ORIGIN.match(origin):
                raise UserError(f"CORS origin {origin!r} is not an origin: use scheme://host[:port], "
                                "e.g. https://shop.example or http://localhost:8000 (no path)")
            if origin not in out:
                out.append(origin)
    return tuple(out)


@dataclass(frozen=True)
class Settings:
    """Everything the app is configured with; :meth:`from_env` reads the ``CRS_*`` variables."""

    db_url: str | None = None  # None: SQLite under $CRS_HOME
    catalog: str = DEMO_CATALOG
    embedder: str = DEFAULT_EMBEDDER
    llm: str | None = None  # e.g. ollama:qwen2.5:7b; None: every stage offline
    policy: str = "eig"
    k: int = 5  # items per recommendation
    cors_origins: tuple[str, ...] = ()  # besides same-origin, which needs no CORS
    uploads: UploadLimits = field(default_factory=UploadLimits)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    session_idle_hours: float = 24.0  # a web session nobody wrote to for this long is deleted
    page_upload_minutes: float = 60.0  # the chat page's uploaded files are deleted after this
    page_upload_disk_mb: int = 512  # the chat page's upload folder refuses new files above this
    db_busy_timeout_s: float = 10.0  # how long a write waits for another writer before 503
    widget_dir: Path = ASSETS_DIR / "widget"

    def __post_init__(self) -> None:
        if not 1 <= self.k <= 100:
            raise UserError(f"k (items per recommendation) must be between 1 and 100, got {self.k}")
        for name in ("session_idle_hours", "page_upload_minutes", "page_upload_disk_mb", "db_busy_timeout_s"):
            if not getattr(self, name) > 0:
                raise UserError(f"{name} must be more than 0, got {getattr(self, name)}")
        if not self.catalog.strip():
            raise UserError("the catalog name is empty")
        if not self.embedder.strip():
            raise UserError("the embedder name is empty")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "db_url": env.get("CRS_DB") or None,
            "catalog": env.get("CRS_CATALOG") or DEMO_CATALOG,
            "embedder": env.get("CRS_EMBEDDER") or DEFAULT_EMBEDDER,
            "llm": env.get("CRS_LLM") or None,
            "cors_origins": parse_origins(env.get("CRS_CORS_ORIGINS")),
            "uploads": UploadLimits(**_numbers(env, UPLOAD_ENV, UploadLimits)),
            "rate_limits": RateLimits.from_env(env),
            **_numbers(env, SETTINGS_ENV, cls),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    @property
    def session_idle(self) -> timedelta:
        return timedelta(hours=self.session_idle_hours)


# Environment variables for the limits (README, "Security and limits"): name -> field.
UPLOAD_ENV = {"CRS_MAX_IMAGE_BYTES": "max_bytes", "CRS_MAX_IMAGES": "max_images",
              "CRS_MAX_IMAGE_PIXELS": "max_pixels", "CRS_MAX_TEXT_CHARS": "max_text_chars",
              "CRS_MAX_MESSAGE_PIXELS": "max_message_pixels", "CRS_MAX_CONCURRENT_DECODES": "max_concurrent_decodes",
              "CRS_DECODE_SIDE": "decode_side"}
SETTINGS_ENV = {"CRS_SESSION_IDLE_HOURS": "session_idle_hours", "CRS_PAGE_UPLOAD_MINUTES": "page_upload_minutes",
                "CRS_PAGE_UPLOAD_DISK_MB": "page_upload_disk_mb", "CRS_DB_BUSY_TIMEOUT_S": "db_busy_timeout_s"}


def _numbers(env: Mapping[str, str], names: Mapping[str, str], target: type) -> dict[str, Any]:
    """The numeric settings among ``names`` that ``env`` sets, converted to their fields' types,
    with an error that names the variable when a value is not a number or is out of range."""
    types = {f.name: f.type for f in fields(target)}
    out: dict[str, Any] = {}
    for variable, name in names.items():
        raw = env.get(variable, "").strip()
        if not raw:
            continue
        kind = int if types[name] in (int, "int") else float
        try:
            out[name] = kind(raw.replace("_", ""))
        except ValueError:
            raise UserError(f"{variable}={raw!r} is not a {'whole ' if kind is int else ''}number") from None
    try:
        if target is UploadLimits:
            UploadLimits(**out)  # range checks, reported with the variable names below
    except ValueError as exc:
        raise UserError(f"{exc} (from {', '.join(v for v, n in names.items() if n in out)})") from None
    return out


class ServiceUnavailable(UserError):
    """The store, catalog, models or index could not be opened with these settings; the message
    says why (a missing catalog, a locked database, a bad embedder spec). Requests that need them
    fail with it until the cause is fixed; the API answers 503."""


class Services:
    """The shared, lazily opened objects of one app; safe to use from request threads."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self._opened: dict[str, Any] = {}
        self._locks = {name: threading.Lock() for name in ("store", "catalog", "searcher", "dm")}
        self._warm_up: threading.Thread | None = None
        self._warmed = threading.Event()
        self.warm_up_error: str | None = None
        self._janitor: threading.Thread | None = None
        self._stop = threading.Event()

    # -- the shared objects -------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self._once("store", lambda: open_store(self.settings.db_url,
                                                      busy_timeout_s=self.settings.db_busy_timeout_s))

    @property
    def catalog(self) -> Catalog:
        return self._once("catalog", lambda: open_catalog(self.store, self.settings.catalog))

    @property
    def searcher(self) -> CatalogSearch:
        return self._once("searcher", self._open_searcher)

    @property
    def dm(self) -> DialogueManager:
        return self._once("dm", self._open_dm)

    @property
    def ready(self) -> bool:
        """True once the dialogue manager is open (and the warm-up, if one runs, has finished):
        a chat turn will not wait for the models or the index."""
        return "dm" in self._opened and (self._warm_up is None or self._warmed.is_set())

    @property
    def index_status(self) -> IndexStatus | None:
        searcher = self._opened.get("searcher")
        return searcher.status if searcher is not None else None

    def _once(self, name: str, factory: Callable[[], T]) -> T:
        # Double-checked: after the first open, readers never touch a lock. One lock per object,
        # so a health check (catalog) does not queue behind an index build (searcher).
        value = self._opened.get(name)
        if value is None:
            with self._locks[name]:
                value = self._opened.get(name)
                if value is None:
                    try:
                        value = factory()
                    except ServiceUnavailable:
                        raise
                    except UserError as exc:
                        raise ServiceUnavailable(str(exc)) from exc
                    self._opened[name] = value
        return value

    def _open_searcher(self) -> CatalogSearch:
        try:
            searcher = CatalogSearch.open(self.store, self.catalog, self.settings.embedder,
                                          progress=lambda message: log.info("index: %s", message))
        except (ValueError, FileNotFoundError) as exc:  # a bad embedder spec or weights path
            raise UserError(f"embedder {self.settings.embedder!r}: {exc}") from None
        status = searcher.status
        log.info("index of %r: %s (%d items, %.1f s)", self.catalog.name,
                 "built" if status.built else "loaded from cache", status.items, status.seconds)
        return searcher

    def _open_dm(self) -> DialogueManager:
        from .chat_cli import build_dialogue_manager
        from .policy import load_policy

        try:
            policy = load_policy(self.settings.policy, llm=self.settings.llm)
        except (ValueError, ImportError) as exc:
            raise UserError(f"policy {self.settings.policy!r}: {exc}") from None
        options = argparse.Namespace(llm=self.settings.llm, k=self.settings.k)
        return build_dialogue_manager(self.store, self.searcher, options, policy)

    # -- warm-up ----------------------------------------------------------------------------------------

    def start_warm_up(self) -> threading.Thread:
        """Open everything in a background thread, so the first chat turn does not pay for loading
        the models and the index (or, on a first run, building it) while the server already answers."""
        if self._warm_up is None:
            self._warm_up = threading.Thread(target=self._warm, name="crs-warm-up", daemon=True)
            self._warm_up.start()
        return self._warm_up

    def _warm(self) -> None:
        try:
            # Measured without it: ~1 s for the first text turn, ~2-3 s for the first image turn.
            self.dm.warm_up()
        except Exception as exc:  # the first request that needs it raises it again, to its caller
            self.warm_up_error = str(exc)
            log.exception("warm-up failed; requests that need the dialogue manager will retry")
        finally:
            self._warmed.set()

    # -- the janitor: idle sessions and old page uploads --------------------------------------------

    def start_janitor(self, upload_folder: Path | None = None) -> threading.Thread:
        """Every few minutes, delete the web sessions idle for longer than ``session_idle_hours``
        and the page's uploaded files older than ``page_upload_minutes`` (in ``upload_folder``)."""
        if self._janitor is None:
            self._stop.clear()
            self._janitor = threading.Thread(target=self._sweep_forever, args=(upload_folder,), name="crs-janitor",
                                             daemon=True)
            self._janitor.start()
        return self._janitor

    def stop_janitor(self) -> None:
        self._stop.set()
        if self._janitor is not None:
            self._janitor.join(timeout=10)
            self._janitor = None

    def sweep(self, upload_folder: Path | None = None) -> tuple[int, int]:
        """One round of the janitor: ``(sessions deleted, files deleted)``."""
        expired = expire_sessions(self.store, self.settings.session_idle)
        if expired and "dm" in self._opened:
            self.dm.forget(expired)
        files = delete_old_files(upload_folder, self.settings.page_upload_minutes * 60) if upload_folder else 0
        if expired or files:
            log.info("janitor: %d idle sessions and %d old page uploads deleted", len(expired), files)
        return len(expired), files

    def _sweep_forever(self, upload_folder: Path | None) -> None:
        # Often enough that nothing outlives its limit by more than a tenth, at most every 5 min.
        period = min(300.0, self.settings.session_idle_hours * 360, self.settings.page_upload_minutes * 6)
        while not self._stop.wait(period):
            try:
                self.sweep(upload_folder)
            except UserError as exc:  # a busy or unreachable store: try again next round
                log.warning("janitor: %s", exc)


def delete_old_files(folder: Path, max_age_s: float) -> int:
    """Delete the files under ``folder`` last changed more than ``max_age_s`` ago, and the folders
    left empty; returns how many files went. Links are removed, never followed."""
    import time

    cutoff = time.time() - max_age_s
    deleted = 0
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        try:
            if path.is_symlink() or path.is_file():
                if path.lstat().st_mtime < cutoff:
                    path.unlink()
                    deleted += 1
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        except OSError:  # removed meanwhile, or not ours to remove
            continue
    return deleted
