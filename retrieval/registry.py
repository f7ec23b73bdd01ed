"""The project's one way to choose a swappable part by name: a :class:`Registry` per kind of part.

A setting names a part with a spec, ``name`` or ``name:arg`` (``aligned``, ``fake:32``,
``ask-3``, ``llamacpp:/models/m.gguf``); the registry maps the name to a factory and calls
``factory(arg, **context)``, where ``context`` carries what a part may need from the rest of
the system (an LLM setting, a seed). Factories import heavy packages themselves, when called,
so importing a registry is cheap.

Every part has a ``fake`` entry (or a deterministic default that serves as one) for tests.
Third-party packages add entries without touching this project, through a Python entry point in
the registry's group, e.g. in the plugin's pyproject.toml::

    [project.entry-points."crs.policies"]
    my-policy = "my_package.policy:make_policy"    # make_policy(arg, **context) -> Policy

It lives in ``retrieval``, the bottom layer, so that every layer (retrieval's encoders and
indexes, crs's stages and policies, the simulators) uses the same class.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Factory = Callable[..., T]  # factory(arg: str | None, **context) -> T


@dataclass(frozen=True)
class Entry(Generic[T]):
    factory: Factory[T]
    usage: str  # how a spec is written, for messages: "clip:PATH_OR_NAME"
    pattern: re.Pattern[str] | None = None  # names such as "ask-3": group 1 is the argument
    # check_arg(arg) raises ValueError for an argument the factory would refuse, without building
    # anything (a URI's form, a missing one), so a setting fails before the models load.
    check_arg: Callable[[str | None], object] | None = None


class Registry(Generic[T]):
    """name -> factory for one kind of part (``part`` names it in messages)."""

    def __init__(self, part: str, entry_point_group: str | None = None) -> None:
        self.part = part
        self.group = entry_point_group
        self._entries: dict[str, Entry[T]] = {}
        self._plugins_loaded = entry_point_group is None

    def register(self, name: str, factory: Factory[T], usage: str | None = None, *,
                 pattern: str | None = None, check_arg: Callable[[str | None], object] | None = None) -> None:
        """Add ``name``; ``pattern`` (a regular expression with one group) also accepts names
        such as ``ask-3`` whose group is the argument; ``check_arg`` lets :meth:`check` refuse a
        bad argument as well as a bad name."""
        if not name or ":" in name or name != name.strip():
            raise ValueError(f"{self.part} name must be non-empty, without ':' or surrounding spaces: {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.part} {name!r} is already registered")
        self._entries[name] = Entry(factory, usage or name, re.compile(pattern) if pattern else None, check_arg)

    def create(self, spec: str, /, **context: Any) -> T:
        """The part ``spec`` names; ValueError (listing the valid ones) for an unknown name."""
        if not isinstance(spec, str):
            raise TypeError(f"{self.part} spec must be a str, got {type(spec).__name__}")
        entry, arg = self._find(spec.strip())
        return entry.factory(arg, **context)

    def check(self, spec: str) -> str:
        """``spec`` if it names a registered part with an argument it accepts (nothing is built);
        ValueError otherwise."""
        entry, arg = self._find(spec.strip())
        if entry.check_arg is not None:
            entry.check_arg(arg)
        return spec

    def names(self) -> list[str]:
        self._load_plugins()
        return list(self._entries)

    def usages(self) -> list[str]:
        self._load_plugins()
        return [entry.usage for entry in self._entries.values()]

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._entries

    def _find(self, spec: str) -> tuple[Entry[T], str | None]:
        self._load_plugins()
        name, sep, arg = spec.partition(":")
        entry = self._entries.get(name)
        if entry is not None:
            return entry, (arg if sep else None)
        for entry in self._entries.values():
            match = entry.pattern.fullmatch(spec) if entry.pattern else None
            if match:
                return entry, match.group(1)
        raise ValueError(f"unknown {self.part} {spec!r}; choose one of {', '.join(self.usages())}")

    def _load_plugins(self) -> None:
        """Entries from installed packages' entry points, once, on first use; a built-in name wins."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for point in entry_points(group=self.group or ""):
            if point.name not in self._entries:
                self.register(point.name, point.load(), f"{point.name} (plugin {point.value.split(':')[0]})")
