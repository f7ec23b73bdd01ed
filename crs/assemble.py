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

from collections.abc import Callable

from .catalog.demo import open_catalog
from .dialogue import DialogueManager
from .errors import UserError
from .policy import Policy, load_policy_option
from .search import CatalogSearch
from .settings import Settings
from .store import Store, open_store
from .store.models import Catalog

__all__ = ["open_settings_store", "open_settings_catalog", "open_searcher", "build_policy",
           "build_dialogue_manager"]


def open_settings_store(settings: Settings) -> Store:
    return open_store(settings.db_url, busy_timeout_s=settings.db_busy_timeout_s)


def open_settings_catalog(store: Store, settings: Settings) -> Catalog:
    return open_catalog(store, settings.catalog)


def open_searcher(store: Store, catalog: Catalog, settings: Settings, *, rebuild: bool = False,
                  progress: Callable[[str], None] | None = None) -> CatalogSearch:
    """The catalog's search index with the settings' embedder and index kind (built on first use)."""
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
    """The dialogue manager for these settings.

    With an LLM setting the critique parser and the image reader are LLM-backed (each falls back
    to the offline stage for any turn the model fails); without one, everything is offline.
    ``share_with``: another dialogue manager over the same searcher whose catalog facts and
    model-backed stages are reused (loading them is the slow part), as evaluation runs do when
    they compare policies."""
    policy = policy or build_policy(settings)
    if share_with is not None:
        return DialogueManager(store, searcher, facts=share_with.facts, policy=policy, k=settings.k,
                               reader=share_with.model_reader, parser=share_with.model_parser)
    if not settings.llm:
        return DialogueManager(store, searcher, policy=policy, k=settings.k)
    from .llm.critique import LLMCritiqueParser  # imports LangChain: only when asked for
    from .llm.image_reader import LLMImageReader

    try:
        parser, reader = LLMCritiqueParser.from_spec(settings.llm), LLMImageReader.from_spec(settings.llm)
    except (ValueError, ImportError) as exc:
        raise UserError(f"--llm {settings.llm}: {exc}") from None
    return DialogueManager(store, searcher, parser=parser, reader=reader, policy=policy, k=settings.k)
