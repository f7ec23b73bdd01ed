"""The one place the system is put together: :class:`~crs.settings.Settings` -> store, catalog,
searcher and dialogue manager.

Every interface assembles through here and nowhere else: ``crs chat`` and ``crs search`` (the
command line), the web app (:class:`crs.web.services.Services`, which opens these lazily and shares
them between requests) and the evaluation workers (``simulators.sharding.ShardWorker``). So a
new stage, a new option or a new default is wired once.

Each function turns the errors a setting can cause (an unknown catalog, a bad embedder spec, a
missing LLM extra) into a :class:`~crs.errors.UserError` that names the setting.
"""
from __future__ import annotations

from typing import Any, TypeVar

from retrieval.progress import ProgressFn
from retrieval.registry import Registry

from .catalog.demo import open_catalog
from .dialogue import DialogueManager
from .facts import CatalogFacts
from .replies import REPLY_WRITERS
from .errors import UserError
from .policy import Policy, load_policy_option
from .search import CatalogSearch
from .settings import Settings
from .store import Store, open_store
from .store.models import Catalog
from .understanding import PARSERS, READERS

T = TypeVar("T")

__all__ = ["open_settings_store", "open_settings_catalog", "open_searcher", "build_policy",
           "build_dialogue_manager"]


def open_settings_store(settings: Settings) -> Store:
    return open_store(settings.db_url, busy_timeout_s=settings.db_busy_timeout_s)


def open_settings_catalog(store: Store, settings: Settings, progress: ProgressFn | None = None) -> Catalog:
    """The settings' catalog; loading the demo on first use reports to ``progress``."""
    return open_catalog(store, settings.catalog, progress=progress)


def open_searcher(store: Store, catalog: Catalog, settings: Settings, *, rebuild: bool = False,
                  progress: ProgressFn | None = None) -> CatalogSearch:
    """The catalog's search index with the settings' embedder and index kind (built on first use);
    each build step reports a :class:`~retrieval.progress.BuildProgress` to ``progress``."""
    try:
        return CatalogSearch.open(store, catalog, settings.embedder, rebuild=rebuild, kind=settings.index_kind,
                                  progress=progress)
    except (ValueError, FileNotFoundError) as exc:  # a bad embedder spec or weights path
        raise UserError(f"embedder {settings.embedder!r}: {exc}") from None


def build_policy(settings: Settings, name: str | None = None, *, seed: int = 0) -> Policy:
    """The ask-or-recommend policy ``name`` (default: the settings'); ``seed`` for random ones."""
    return load_policy_option(name or settings.policy, llm=settings.llm, seed=seed)


def build_dialogue_manager(store: Store, searcher: CatalogSearch, settings: Settings, *,
                           policy: Policy | None = None, share_with: DialogueManager | None = None) -> DialogueManager:
    """The dialogue manager for these settings: its policy, critique parser, image reader and
    reply writer chosen by name from their registries (an LLM setting makes the parser and the
    reader LLM-backed unless they are named; each falls back to the offline stage for any turn
    it fails). ``share_with``: another dialogue manager over the same searcher whose catalog facts
    and model-backed stages are reused (loading them is the slow part), as evaluation runs do when
    they compare policies."""
    policy = policy or build_policy(settings)
    writer = _part(REPLY_WRITERS, settings.writer, "--reply-writer")
    if share_with is not None:
        return DialogueManager(store, searcher, facts=share_with.facts, policy=policy, k=settings.k, writer=writer,
                               reader=share_with.model_reader, parser=share_with.model_parser)
    facts = CatalogFacts.load(store, searcher.catalog)
    context = {"facts": facts, "searcher": searcher, "llm": settings.llm}
    # The offline stages are the dialogue manager's own defaults (and every turn's fallback).
    parser = None if settings.parser_spec == "offline" else _part(PARSERS, settings.parser_spec, "--parser", **context)
    reader = None if settings.reader_spec == "offline" else _part(READERS, settings.reader_spec, "--image-reader",
                                                                   **context)
    return DialogueManager(store, searcher, facts=facts, parser=parser, reader=reader, policy=policy, writer=writer,
                           k=settings.k)


def _part(registry: Registry[T], spec: str, option: str, **context: Any) -> T:
    try:
        return registry.create(spec, **context)
    except (ValueError, ImportError) as exc:  # a bad spec or file, a missing LLM or extra
        raise UserError(f"{option} {spec}: {exc}") from None
