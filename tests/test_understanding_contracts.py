"""What every critique parser and image reader promises, whatever reads (implicit's
RecommenderBaseTestMixin style): a subclass gives ``make_parser`` / ``make_reader`` and inherits
the suite. Run against every registered entry on the shapes catalog (fake embedder), the LLM ones
over the scripted chat model; and the registries' own selection and errors."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from crs.facts import CatalogFacts
from crs.search import CatalogSearch
from crs.turn import Critique, ImageReading
from crs.understanding import PARSERS, READERS
from crs.understanding.parser import CritiqueParser, ParseContext, ShownItem
from crs.understanding.reader import ImageReader, ReadContext

TEXTS = ["a red star", "not blue", "the second one", "none of these", "", "zzzz qqqq"]


@pytest.fixture
def world(shapes_catalog, tmp_path: Path) -> dict[str, Any]:
    store, catalog = shapes_catalog
    searcher = CatalogSearch.open(store, catalog, "fake")
    return {"facts": CatalogFacts.load(store, catalog), "searcher": searcher, "tmp": tmp_path}


def vocabulary_ok(facts: CatalogFacts, values: dict[str, list[str]]) -> bool:
    """Every attribute is the catalog's, and a closed attribute's values are its own."""
    for attribute, given in values.items():
        info = facts.attributes.get(attribute)
        if info is None or (info.values and not set(given) <= set(info.values)):
            return False
    return True


class ParserContract:
    def make_parser(self, world: dict[str, Any]) -> CritiqueParser:
        raise NotImplementedError

    @pytest.mark.parametrize("text", TEXTS)
    def test_a_critique_in_the_catalogs_vocabulary(self, world: dict[str, Any], text: str) -> None:
        shown = [ShownItem(i, f"item {i}", {}) for i in (1, 2, 3)]
        critique = self.make_parser(world).parse(text, ParseContext(world["facts"], shown))
        assert isinstance(critique, Critique)
        assert vocabulary_ok(world["facts"], critique.require) and vocabulary_ok(world["facts"], critique.exclude)
        assert critique.accept is None or 0 <= critique.accept < len(shown)

    def test_the_same_message_is_read_the_same_way(self, world: dict[str, Any]) -> None:
        context = ParseContext(world["facts"], [])
        assert self.make_parser(world).parse("a red star", context) == self.make_parser(world).parse("a red star",
                                                                                                     context)


class ReaderContract:
    def make_reader(self, world: dict[str, Any]) -> ImageReader:
        raise NotImplementedError

    @pytest.mark.parametrize("colour", ["red", "blue"])
    def test_a_reading_in_the_catalogs_vocabulary(self, world: dict[str, Any], colour: str) -> None:
        picture = Image.new("RGB", (96, 96), colour)
        reading = self.make_reader(world).read(picture, ReadContext(world["facts"]))
        assert isinstance(reading, ImageReading) and isinstance(reading.caption, str) and reading.source
        assert vocabulary_ok(world["facts"], reading.attributes)


def _script(world: dict[str, Any], name: str, data: Any) -> str:
    path = world["tmp"] / name
    path.write_text(json.dumps(data))
    return str(path)


class TestRules(ParserContract):
    def make_parser(self, world: dict[str, Any]) -> CritiqueParser:
        return PARSERS.create("rules", facts=world["facts"])


class TestOfflineParser(ParserContract):
    def make_parser(self, world: dict[str, Any]) -> CritiqueParser:
        return PARSERS.create("offline", facts=world["facts"], searcher=world["searcher"])


class TestFakeParser(ParserContract):
    def make_parser(self, world: dict[str, Any]) -> CritiqueParser:
        script = [{"require": {"shape": ["star"]}, "source": "fake"}]
        return PARSERS.create(f"fake:{_script(world, 'parser.json', script)}")


class TestLLMParser(ParserContract):
    def make_parser(self, world: dict[str, Any]) -> CritiqueParser:
        reply = json.dumps({"require": {"colour": ["red"]}, "exclude": {}})
        return PARSERS.create("llm", llm=f"fake:{_script(world, 'llm.json', {'by_prompt': [reply]})}")


class TestOffline(ReaderContract):
    def make_reader(self, world: dict[str, Any]) -> ImageReader:
        return READERS.create("offline", searcher=world["searcher"])


class TestFakeReader(ReaderContract):
    def make_reader(self, world: dict[str, Any]) -> ImageReader:
        reading = {"attributes": {"shape": ["star"]}, "caption": "a star"}
        return READERS.create(f"fake:{_script(world, 'reading.json', reading)}")


class TestLLMReader(ReaderContract):
    def make_reader(self, world: dict[str, Any]) -> ImageReader:
        reply = json.dumps({"attributes": {"shape": ["circle"]}, "caption": "a circle"})
        return READERS.create("llm", llm=f"fake:{_script(world, 'llm.json', {'by_prompt': [reply]})}")


def test_every_registered_stage_has_a_contract_suite() -> None:
    covered = {"offline", "rules", "fake", "llm"}
    assert set(PARSERS.names()) == covered
    assert set(READERS.names()) == {"offline", "fake", "llm", "hf"}  # hf: tests/test_hf_reader.py


@pytest.mark.parametrize("registry, spec, message", [
    (PARSERS, "llm", "needs an LLM"), (PARSERS, "fake", "needs a script"), (PARSERS, "regex", "unknown critique parser"),
    (READERS, "hf", "needs a model folder"), (READERS, "fake:/no/such.json", "cannot read it"),
])
def test_bad_stage_settings_say_what_is_wrong(registry, spec: str, message: str) -> None:  # type: ignore
    with pytest.raises(ValueError, match=message):
        registry.create(spec, facts=None, searcher=None, llm=None)
