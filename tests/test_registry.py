"""The one registry style (retrieval/registry.py): names, arguments, patterns, clear errors, and
parts added by installed packages through entry points, shown with a policy plugin that runs in
a real conversation."""
from __future__ import annotations

import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import retrieval.registry as registry_module
from retrieval.registry import Registry

PLUGIN_DIR = Path(__file__).parent / "fixtures" / "plugin"


def test_names_arguments_and_patterns() -> None:
    parts: Registry[str] = Registry("widget")
    parts.register("plain", lambda arg, **context: f"plain {arg} {context}")
    parts.register("many", lambda arg, **_: f"many {arg}", "many-N", pattern=r"many-(\d+)")
    assert parts.create("plain") == "plain None {}"
    assert parts.create("plain:x:y", seed=3) == "plain x:y {'seed': 3}"
    assert parts.create("many-12") == "many 12" and parts.create("many:7") == "many 7"
    assert parts.usages() == ["plain", "many-N"]
    with pytest.raises(ValueError, match=r"unknown widget 'nope'; choose one of plain, many-N"):
        parts.create("nope")
    with pytest.raises(ValueError, match="already registered"):
        parts.register("plain", lambda arg: "again")
    with pytest.raises(ValueError, match="without ':'"):
        parts.register("a:b", lambda arg: "x")


@pytest.fixture
def policy_plugin(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The plugin package installed: importable, and declaring its entry point."""
    from crs.policy import POLICIES

    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    point = EntryPoint(name="ask-colour-first", value="crs_plugin_example:make_policy", group="crs.policies")
    monkeypatch.setattr(registry_module, "entry_points",
                        lambda group: [point] if group == "crs.policies" else [])
    monkeypatch.setattr(POLICIES, "_plugins_loaded", False)
    monkeypatch.setattr(POLICIES, "_entries", dict(POLICIES._entries))
    yield POLICIES
    sys.modules.pop("crs_plugin_example", None)


def test_a_plugin_package_adds_a_policy_that_runs_in_a_conversation(policy_plugin, shapes_catalog) -> None:  # type: ignore
    from crs import assemble
    from crs.settings import Settings
    from crs.turn import Message

    assert "ask-colour-first" in policy_plugin.names()
    assert "plugin crs_plugin_example" in ", ".join(policy_plugin.usages())
    store, _ = shapes_catalog
    settings = Settings(db_url=store.url, catalog="shapes", embedder="fake", policy="ask-colour-first:style")
    searcher = assemble.open_searcher(store, assemble.open_settings_catalog(store, settings), settings)
    dm = assemble.build_dialogue_manager(store, searcher, settings)
    session = dm.start()
    first = dm.respond(session, Message("a star"))
    assert first.action == "ask" and first.question is not None and first.question.attribute == "style"
    assert dm.respond(session, Message("flat")).action == "recommend"


def test_built_in_names_win_over_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    parts: Registry[str] = Registry("widget", "crs.widgets")
    parts.register("fake", lambda arg, **_: "built-in")
    point = EntryPoint(name="fake", value="os:getcwd", group="crs.widgets")
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [point])
    assert parts.create("fake") == "built-in"
