"""The one settings object of the system: what every interface (``crs`` commands, the web app,
the evaluation workers) is configured with, from command-line flags and ``CRS_*`` environment
variables alike.

:meth:`Settings.from_env` reads the environment; flags override it (``Settings.from_env(**flags)``,
where a flag left at ``None`` keeps the environment's value or the default). Everything is checked
here, once, with an error that names the setting: an interface never receives a half-valid
configuration. :mod:`crs.assemble` builds the system from it.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from limits import parse_many

from retrieval.embedder import DEFAULT_EMBEDDER
from retrieval.index_kinds import check_kind

from .config import ASSETS_DIR, DEMO_CATALOG
from .errors import UserError
from .search import MAX_K
from .replies import REPLY_WRITERS
from .understanding import PARSERS, READERS
from .uploads import UploadLimits


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


RATE_LIMITS_OFF = ("off", "none", "0", "false")


@dataclass(frozen=True)
class RateLimits:
    """Per-client rate limits of the web app (counted by crs.web.rate_limits): ``limits`` strings
    per bucket; ``enabled=False`` turns them all off (load benchmarks)."""

    messages: str = "60/minute"
    sessions: str = "20/minute"
    requests: str = "600/minute"
    enabled: bool = True

    def __post_init__(self) -> None:
        for name in ("messages", "sessions", "requests"):
            value = getattr(self, name)
            try:
                parse_many(value)
            except ValueError:
                raise UserError(f"rate limit {name}={value!r} is not a limit: write e.g. '30/minute' or "
                                "'5/second;100/hour'") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RateLimits:
        """``CRS_RATE_LIMIT_MESSAGES``, ``_SESSIONS``, ``_REQUESTS``; ``CRS_RATE_LIMITS=off`` disables."""
        env = os.environ if environ is None else environ
        values = {name: env[f"CRS_RATE_LIMIT_{name.upper()}"] for name in ("messages", "sessions", "requests")
                  if env.get(f"CRS_RATE_LIMIT_{name.upper()}")}
        return cls(**values, enabled=env.get("CRS_RATE_LIMITS", "on").strip().lower() not in RATE_LIMITS_OFF)



@dataclass(frozen=True)
class Settings:
    """Everything the app is configured with; :meth:`from_env` reads the ``CRS_*`` variables."""

    db_url: str | None = None  # None: SQLite under $CRS_HOME
    catalog: str = DEMO_CATALOG
    embedder: str = DEFAULT_EMBEDDER
    llm: str | None = None  # e.g. ollama:qwen2.5:7b; None: every stage offline
    policy: str = "eig"
    k: int = 5  # items per recommendation
    index_kind: str = "auto"  # the vector index: auto (flat, HNSW above 200k items), flat, hnsw, ivf, exact, milvus:URI
    parser: str = ""  # critique parser: rules, llm, fake:SCRIPT.json; "" = llm with an LLM setting, else rules
    reader: str = ""  # image reader: offline, llm, hf:DIR, fake:READING.json; "" = llm with an LLM, else offline
    writer: str = "templates"  # reply writer: templates, fake[:TEXT]
    cors_origins: tuple[str, ...] = ()  # besides same-origin, which needs no CORS
    uploads: UploadLimits = field(default_factory=UploadLimits)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    session_idle_hours: float = 24.0  # a web session nobody wrote to for this long is deleted
    page_upload_minutes: float = 60.0  # the chat page's uploaded files are deleted after this
    page_upload_disk_mb: int = 512  # the chat page's upload folder refuses new files above this
    db_busy_timeout_s: float = 10.0  # how long a write waits for another writer before 503
    widget_dir: Path = ASSETS_DIR / "widget"

    def __post_init__(self) -> None:
        if not 1 <= self.k <= MAX_K:
            raise UserError(f"k (items per recommendation) must be between 1 and {MAX_K}, got {self.k}")
        try:
            check_kind(self.index_kind)
            PARSERS.check(self.parser_spec)
            READERS.check(self.reader_spec)
            REPLY_WRITERS.check(self.writer)
        except ValueError as exc:
            raise UserError(str(exc)) from None
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
            "policy": env.get("CRS_POLICY") or "eig",
            "parser": env.get("CRS_PARSER") or "",
            "reader": env.get("CRS_IMAGE_READER") or "",
            "writer": env.get("CRS_REPLY_WRITER") or "templates",
            "cors_origins": parse_origins(env.get("CRS_CORS_ORIGINS")),
            "uploads": UploadLimits(**_numbers(env, UPLOAD_ENV, UploadLimits)),
            "rate_limits": RateLimits.from_env(env),
            **_numbers(env, SETTINGS_ENV, cls),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    @property
    def parser_spec(self) -> str:
        return self.parser or ("llm" if self.llm else "offline")

    @property
    def reader_spec(self) -> str:
        return self.reader or ("llm" if self.llm else "offline")

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
