"""The offline understanding layer's stages, each on its own: numbers and ranges, names and
typos (rapidfuzz), grounding by meaning (the bundled MiniLM, calibration pairs), all-of vs any-of,
comparatives found by an attribute's description, references carried across clauses, and
many-valued attributes (a film's cast) held sparsely by the catalog facts.

Phrasings are written as people type them; expectations come from the films sample's own
attributes (assets/films-sample), not from the parser."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from crs.cli import main
from crs.facts import CatalogFacts
from crs.store.db import open_store
from crs.store.models import Catalog
from crs.turn import Question
from crs.understanding.grounding import MARGIN, THRESHOLD, GroundingSpotter
from crs.understanding.offline_parser import OfflineCritiqueParser
from crs.understanding.parser import ParseContext, ShownItem
from crs.understanding.rule_parser import RuleCritiqueParser

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "films-sample"
PAIRS = Path(__file__).parent / "fixtures" / "grounding_pairs.jsonl"


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> CatalogFacts:
    url = f"sqlite:///{tmp_path_factory.mktemp('films')}/crs.db"
    assert main(["ingest", str(SAMPLE / "items.jsonl"), "--format", "jsonl", "--db", url, "--catalog", "films"]) == 0
    store = open_store(url)
    with store.session() as session:
        catalog = session.scalars(select(Catalog).where(Catalog.name == "films")).one()
    return CatalogFacts.load(store, catalog)


@pytest.fixture(scope="module")
def parser(films: CatalogFacts) -> OfflineCritiqueParser:
    return OfflineCritiqueParser(films)  # no encoder: grounding is tested on its own below


def read(parser: RuleCritiqueParser, facts: CatalogFacts, text: str, shown: int = 0,
         question: Question | None = None) -> dict:
    ids = facts.ids[:shown]
    items = [ShownItem(int(i), f"film {i}", v) for i, v in zip(ids, facts.values_of(ids))]
    found = parser.parse(text, ParseContext(facts, items, question)).to_json()
    return {k: v for k, v in found.items() if k not in ("source", "text") and v not in ({}, [], None, False)}


def film_values(attribute: str) -> set[str]:
    values: set[str] = set()
    for line in (SAMPLE / "items.jsonl").read_text().splitlines():
        value = json.loads(line)["attributes"].get(attribute)
        values.update(v.lower() for v in (value if isinstance(value, list) else [value] if value else []))
    return values


# -- numbers and ranges ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("something from the 90s", {"require": {"decade": ["1990s"]}}),
    ("eighties movies pls", {"require": {"decade": ["1980s"]}}),
    ("made after 2000", {"ranges": {"year": [2001, None]}}),
    ("anything since 2005", {"ranges": {"year": [2005, None]}}),
    ("before 1960", {"ranges": {"year": [None, 1959]}}),
    ("between 1985 and 1995", {"ranges": {"year": [1985, 1995]}}),
    ("late 70s", {"ranges": {"year": [1976, 1979]}}),
    ("after the 90s", {"ranges": {"year": [2000, None]}}),
    ("under 2 hours", {"ranges": {"runtime_minutes": [None, 119]}}),
    ("at most 90 mins", {"ranges": {"runtime_minutes": [None, 90]}}),
    ("2h or less", {"ranges": {"runtime_minutes": [None, 120]}}),
    ("rated above 80%", {"ranges": {"rotten_tomatoes": [81, None]}}),
    ("metacritic over 70", {"ranges": {"metacritic": [71, None]}}),
    ("at least 2 oscars", {"ranges": {"oscars_won": [2, None]}}),
    ("oscar-winning", {"ranges": {"oscars_won": [1, None]}}),
])
def test_numbers_and_ranges(films: CatalogFacts, parser: OfflineCritiqueParser, text: str, expected: dict) -> None:
    assert read(parser, films, text) == expected


def test_a_bare_small_number_is_not_a_range(films: CatalogFacts, parser: OfflineCritiqueParser) -> None:
    assert "ranges" not in read(parser, films, "the 2 on the left", shown=5)


# -- names and typos ------------------------------------------------------------------------------------

def test_names_full_misspelt_and_surnames(films: CatalogFacts, parser: OfflineCritiqueParser) -> None:
    assert {"tom hanks", "martin scorsese", "steven spielberg", "brad pitt"} <= film_values("cast") | film_values("director")
    assert read(parser, films, "anything with tom hanks") == {"require": {"cast": ["tom hanks"]}}
    assert read(parser, films, "tom hanx") == {"require": {"cast": ["tom hanks"]}}
    assert read(parser, films, "crime drama directed by scorsese") == {
        "require": {"genres": ["crime", "drama"], "director": ["martin scorsese"]}, "all_of": ["genres"]}
    # "spielberg" is a common word of the encoder's vocabulary: a name only with a cue
    assert read(parser, films, "spielberg movies") == {"require": {"director": ["steven spielberg"]}}
    assert read(parser, films, "comdey") == {"require": {"genres": ["comedy"]}}


def test_common_words_are_not_surnames(films: CatalogFacts, parser: OfflineCritiqueParser) -> None:
    assert read(parser, films, "a young couple in love") == {}


# -- all of, any of; negation ----------------------------------------------------------------------------

def test_a_sci_fi_comedy_is_both_and_or_is_either(films: CatalogFacts, parser: OfflineCritiqueParser) -> None:
    assert read(parser, films, "a sci-fi comedy") == {"require": {"genres": ["sci-fi", "comedy"]}, "all_of": ["genres"]}
    assert read(parser, films, "comedy or drama") == {"require": {"genres": ["comedy", "drama"]}}
    assert read(parser, films, "no horror") == {"exclude": {"genres": ["horror"]}}


# -- comparatives and references ---------------------------------------------------------------------------

def test_comparatives_find_the_attribute_by_name_or_description(films: CatalogFacts,
                                                                parser: OfflineCritiqueParser) -> None:
    assert read(parser, films, "shorter", shown=5) == {"relative": [{"attribute": "runtime_minutes", "direction": -1,
                                                                    "reference": None}]}
    assert read(parser, films, "better rated ones", shown=5)["relative"][0]["direction"] == 1


def test_a_comparison_is_with_the_item_the_message_named(films: CatalogFacts, parser: OfflineCritiqueParser) -> None:
    found = read(parser, films, "the second one but older", shown=5)
    assert found["relative"] == [{"attribute": "year", "direction": -1, "reference": 1}]


def test_one_letter_ratings_are_read_with_their_word(films: CatalogFacts, parser: OfflineCritiqueParser) -> None:
    assert read(parser, films, "rated r") == {"require": {"mpaa_rating": ["r"]}}
    assert read(parser, films, "r") == {}


# -- many-valued attributes in the facts ------------------------------------------------------------------------

def test_cast_constraints_hold_without_a_dense_matrix(films: CatalogFacts) -> None:
    cast = films.attributes["cast"]
    assert len(cast.values) > 300 and "cast" not in {a.name for a in films.askable()}
    has = films.has_value("cast", ["tom hanks"], films.ids)
    assert 0 < has.sum() == films.value_counts("cast")["tom hanks"]
    with_hanks = films.ids[has]
    assert all("tom hanks" in v["cast"] for v in films.values_of(with_hanks))


# -- grounding by meaning -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def minilm():
    from sentence_transformers import SentenceTransformer

    from retrieval.encoders.minilm import default_minilm_path

    model = SentenceTransformer(str(default_minilm_path()), device="cpu")
    return lambda texts: model.encode(list(texts), normalize_embeddings=True)


class _Facts:
    """Just the vocabularies grounding reads: the demo's colours and styles, films' genres."""

    def __init__(self) -> None:
        from crs.facts import AttributeInfo

        demo = json.loads((ROOT / "assets" / "demo" / "schema.json").read_text())
        film = json.loads((SAMPLE / "schema.json").read_text())
        wanted = {"colour", "style", "genres"}
        self.attributes = {a["name"]: AttributeInfo(a["name"], a["kind"], True, tuple(a["values"]), None)
                           for a in demo["attributes"] + film["attributes"] if a["name"] in wanted}


def test_grounding_is_calibrated_on_the_pairs(minilm) -> None:
    facts = _Facts()
    spotter = GroundingSpotter(facts, ["colour", "style", "genres"], minilm)  # type: ignore[arg-type]
    pairs = [json.loads(line) for line in PAIRS.read_text().splitlines()]
    assert len(pairs) >= 15 and THRESHOLD > 0.5 and MARGIN > 0
    wrong = []
    for pair in pairs:
        spans = spotter.spot([pair["phrase"]], [True], None)  # type: ignore[arg-type]
        got = (spans[0].attribute, spans[0].values[0]) if spans else (None, None)
        if got != (pair["attribute"], pair["value"]):
            wrong.append((pair["phrase"], got))
    assert not wrong


def test_the_offline_parser_grounds_what_the_vocabulary_misses(films: CatalogFacts, minilm) -> None:
    parser = OfflineCritiqueParser(films, minilm)
    assert read(parser, films, "something scary from the seventies") == {
        "require": {"genres": ["horror"], "decade": ["1970s"]}}
    assert read(parser, films, "an animated family film") == {
        "require": {"genres": ["animation", "family"]}, "all_of": ["genres"]}
    # the plain rules do not reach these
    assert "horror" not in str(read(RuleCritiqueParser(films), films, "something scary"))
    assert np.isfinite(THRESHOLD)


# -- references by what an item is called ------------------------------------------------------------

def _shown_titles(films: CatalogFacts, parser: OfflineCritiqueParser, text: str, titles: list[str]) -> dict:
    ids = films.ids[:len(titles)]  # real films' attributes under the titles the test names
    items = [ShownItem(int(i), title, v) for i, title, v in zip(ids, titles, films.values_of(ids))]
    found = parser.parse(text, ParseContext(films, items)).to_json()
    return {k: v for k, v in found.items() if k not in ("source", "text") and v not in ({}, [], None, False)}


def test_items_named_by_title_or_position_in_any_clause(films: CatalogFacts, parser: OfflineCritiqueParser) -> None:
    titles = ["Groundhog Day", "The Godfather", "Jaws", "Casablanca"]
    assert _shown_titles(films, parser, "more like groundhog day", titles)["references"] == [
        {"index": 0, "liked": True}]
    assert _shown_titles(films, parser, "newer than casablanca", titles)["relative"][0]["reference"] == 3
    assert _shown_titles(films, parser, "great, the godfather", titles).get("accept") in (None, 1)
    assert _shown_titles(films, parser, "lovely. i'll take the fourth", titles)["accept"] == 3
    both = _shown_titles(films, parser, "not the last two", titles)["references"]
    assert {(r["index"], r["liked"]) for r in both} == {(2, False), (3, False)}


def test_a_word_for_a_broad_group_is_the_broader_value(tmp_path: Path) -> None:
    """Two attributes where one's values nest in the other's (a source group inside a category):
    the word names the category, unless the pending question is about the group."""
    from crs.facts import AttributeInfo

    ids = np.arange(1, 7, dtype=np.int64)
    attributes = {"category": AttributeInfo("category", "categorical", True, ("food & drink", "animals"), None),
                  "group": AttributeInfo("group", "categorical", True, ("food", "fruit", "mammals"), None)}
    codes = {"category": np.array([0, 0, 0, 1, 1, 1], dtype=np.int32),
             "group": np.array([0, 0, 1, 2, 2, 2], dtype=np.int32)}
    facts = CatalogFacts("toy", ids, attributes, codes, {}, {})
    parser = OfflineCritiqueParser(facts)
    assert read(parser, facts, "some food please") == {"require": {"category": ["food & drink"]}}
    question = Question("group", ["food", "fruit", "any"])
    assert read(parser, facts, "food i guess", question=question) == {"require": {"group": ["food"]}}


def test_praise_is_the_top_quarter_of_the_rating(films: CatalogFacts, parser: OfflineCritiqueParser) -> None:
    found = read(parser, films, "top rated comedies")
    values = films.numbers("rotten_tomatoes", films.ids)
    assert found["require"] == {"genres": ["comedy"]}
    low = found["ranges"]["rotten_tomatoes"][0]
    assert low == pytest.approx(np.nanpercentile(values, 75))
