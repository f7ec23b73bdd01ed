"""What the web app's parts share: settings, and the store, catalog, searcher and dialogue manager,
each opened once (through :mod:`crs.assemble`, as every interface does), on first use, whichever
thread asks first; and the web app's background work (warm-up, the janitor).

The JSON API (:mod:`crs.web.api`) and the gradio chat page (``webui.chat``) both take one
:class:`Services` and talk to the conversation only through ``services.dm`` (the
:class:`~crs.dialogue.DialogueManager`), so the page, the API and the embeddable widget all run
the same system. Opening is lazy because importing the app must stay cheap (tests import it,
``uvicorn app:app`` imports it) and because the first open of a catalog may build its index;
:meth:`Services.start_warm_up` does it in the background when a server starts.

Public attributes: ``settings``; ``store``, ``catalog``, ``searcher``, ``dm`` (opened on first
access, thread-safe); ``ready`` (the dialogue manager is open); ``preparing`` (a warm-up is
running); ``progress`` (the latest build report); ``index_status``. Clients see the catalog's own
ids; ``searcher.item_ids`` / ``searcher.external_ids`` translate.

While a warm-up runs, no other thread waits for it: asking for an object it has not opened yet
raises :class:`NotReady` at once (the API answers 503 with ``Retry-After``, the page shows the
message). A first build of a large catalog takes tens of minutes; a request that queued behind
it used to hang for all of them (issue 16: ``POST /api/v1/sessions`` answered after 2,337 s).
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from crs import assemble
from crs.catalog_index import IndexStatus
from retrieval.progress import BuildProgress
from crs.dialogue import DialogueManager
from crs.errors import UserError
from crs.search import CatalogSearch
from crs.web.prepare_lock import preparing
from crs.web.session_expiry import expire_sessions
from crs.settings import Settings
from crs.store import Store
from crs.store.models import Catalog

log = logging.getLogger(__name__)
T = TypeVar("T")
LOG_EVERY_S = 15.0

WARM_UP_FAILED = ("the catalog, models or database could not be opened (the reason is in the server log); "
                  "sending a message tries again")


class ServiceUnavailable(UserError):
    """The store, catalog, models or index could not be opened with these settings; the message
    says why (a missing catalog, a locked database, a bad embedder spec). Requests that need them
    fail with it until the cause is fixed; the API answers 503."""


class NotReady(ServiceUnavailable):
    """The warm-up is still opening (or building) what this request needs. ``progress`` is the
    build's latest report, if any; ``retry_after`` the seconds a client should wait, from its ETA."""

    # A client polls at least every RETRY_MAX_S, so a finished build is noticed soon even when the
    # first ETA (taken over few items) was far too long; unknown ETAs poll every RETRY_UNKNOWN_S.
    RETRY_MIN_S, RETRY_MAX_S, RETRY_UNKNOWN_S = 1, 30, 5

    def __init__(self, catalog: str, progress: BuildProgress | None) -> None:
        self.catalog = catalog
        self.progress = progress
        eta = progress.eta_s if progress is not None else None
        self.retry_after = (self.RETRY_UNKNOWN_S if eta is None
                            else min(self.RETRY_MAX_S, max(self.RETRY_MIN_S, math.ceil(eta))))
        doing = f" ({progress})" if progress is not None else " (loading the models and the index)"
        super().__init__(f"the catalog {catalog!r} is still being prepared{doing}; "
                         f"try again in {self.retry_after} s")


class Services:
    """The shared, lazily opened objects of one app; safe to use from request threads."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self._opened: dict[str, Any] = {}
        self._locks = {name: threading.Lock() for name in ("store", "catalog", "searcher", "dm")}
        self._warm_up: threading.Thread | None = None
        self._warmed = threading.Event()
        self.warm_up_error: str | None = None
        # The latest report of a build in progress (None before any): the page's banner and
        # /api/v1/health show it while ``ready`` is False.
        self.progress: BuildProgress | None = None
        self._logged: tuple[str, float] = ("", 0.0)  # the stage last logged, and when
        self._janitor: threading.Thread | None = None
        self._stop = threading.Event()

    # -- the shared objects -------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self._once("store", lambda: assemble.open_settings_store(self.settings))

    @property
    def catalog(self) -> Catalog:
        return self._once("catalog", self._open_catalog)

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
    def preparing(self) -> bool:
        """A warm-up is running: what it has not opened yet, other threads get as NotReady."""
        return self._warm_up is not None and not self._warmed.is_set()

    @property
    def catalog_name(self) -> str:
        """The catalog's name without opening anything (the health check must never wait)."""
        catalog = self._opened.get("catalog")
        return catalog.name if catalog is not None else self.settings.catalog

    def require_ready(self) -> None:
        """NotReady while a warm-up runs. Chat endpoints call it first: a turn must neither wait
        for the build nor pay for the models' first use while the warm-up loads them."""
        if self.preparing:
            raise NotReady(self.catalog_name, self.progress)

    @property
    def index_status(self) -> IndexStatus | None:
        searcher = self._opened.get("searcher")
        return searcher.status if searcher is not None else None

    def _once(self, name: str, factory: Callable[[], T]) -> T:
        # Double-checked: after the first open, readers never touch a lock. One lock per object,
        # so a health check (catalog) does not queue behind an index build (searcher).
        value = self._opened.get(name)
        if value is None:
            if self.preparing and threading.current_thread() is not self._warm_up:
                raise NotReady(self.catalog_name, self.progress)  # never queue behind the build's lock
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

    def _open_catalog(self) -> Catalog:
        # Several workers warming up at once: one loads the demo into the store (crs.web.prepare_lock).
        with preparing(self.settings.catalog, self._report):
            return assemble.open_settings_catalog(self.store, self.settings, progress=self._report)

    def _open_searcher(self) -> CatalogSearch:
        catalog = self.catalog
        with preparing(catalog.name, self._report):  # one worker builds the index, the others then open it
            searcher = assemble.open_searcher(self.store, catalog, self.settings, progress=self._report)
        status = searcher.status
        log.info("index of %r: %s (%d items, %.1f s)", self.catalog.name,
                 "built" if status.built else "loaded from cache", status.items, status.seconds)
        return searcher

    def _report(self, progress: BuildProgress | str) -> None:
        # Builds may still report plain sentences; those go to the log only.
        if not isinstance(progress, BuildProgress):
            log.info("index: %s", progress)
            return
        self.progress = progress
        # A build reports after every chunk (thousands of times): the log gets a line when a stage
        # starts or ends and at most every LOG_EVERY_S between.
        stage, last = self._logged
        now = time.monotonic()
        ended = progress.total > 0 and progress.done >= progress.total  # a total of 0: not known yet
        if progress.stage != stage or ended or now - last >= LOG_EVERY_S:
            self._logged = (progress.stage, now)
            log.info("index: %s", progress)

    def _open_dm(self) -> DialogueManager:
        searcher = self.searcher  # opens (or builds) the index, reporting as it goes
        # What follows until ready reports nothing of its own (~10-20 s on 2 cores: the stages,
        # the query encoder, the reader's value prototypes): said as a stage of one step, so the
        # banner and /health do not sit on "writing the index: 12330/12330" meanwhile.
        self._report(BuildProgress("loading the models", 0, 1, unit="step"))
        dm = assemble.build_dialogue_manager(self.store, searcher, self.settings)
        if self.settings.llm:  # which stages the model serves, logged once (a text-only model: no LLM reader)
            from crs.llm.startup import check_llm_stages  # imports LangChain: only with an LLM

            for line in check_llm_stages(dm):
                log.info("LLM %s", line)
        return dm

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
            # One line per server process (benchmarks/api_load.py counts them for --workers N).
            log.info("ready: catalog %r open, models and index loaded (process %d)", self.catalog.name, os.getpid())
        except Exception as exc:  # the first request that needs it raises it again, to its caller
            # Shown on the page: one sentence, never the exception's text (it may name files,
            # hosts or a database URL); the full reason goes to the server log below.
            self.warm_up_error = WARM_UP_FAILED
            self.progress = None  # the build stopped: its last report would read as still going
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
