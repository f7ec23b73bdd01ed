"""Items that can be told apart (issue 16): where titles repeat within a reply, each carries what
tells it from its namesakes ("kissing cat · 3D"), read from the catalog's own attributes. Every
client (API, page, widget, terminal) shows ReplyItem.title, so the reply's titles are checked."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from crs.facts import AttributeInfo, CatalogFacts
from crs.replies import TITLE_SEPARATOR, distinct_titles
from crs.search import SearchHit
from crs.turn import Message

STYLE = AttributeInfo("style", "categorical", True, ("flat", "3d", "cartoon"), None, label="Style",
                      display=(("3d", "3D"), ("cartoon", "Cartoon"), ("flat", "Flat")))
SET = AttributeInfo("set", "categorical", True, ("twemoji", "google-noto"), None, label="Artwork set",
                    display=(("google-noto", "Google Noto"), ("twemoji", "Twemoji")))
CONCEPT = AttributeInfo("concept", "categorical", False, ("1f63d", "1f62a"), None)  # never asked: not shown
YEAR = AttributeInfo("year", "numeric", True, (), None, label="Year")


def facts_of(*infos: AttributeInfo) -> CatalogFacts:
    return CatalogFacts("t", np.arange(1, 2, dtype=np.int64), {i.name: i for i in infos},
                        {i.name: np.zeros(1, dtype=np.int32) for i in infos if i.kind == "categorical"},
                        {i.name: np.zeros((1, len(i.values)), dtype=bool) for i in infos if i.kind == "tags"}, {})


def hit(n: int, title: str, **attributes: object) -> SearchHit:
    return SearchHit(f"item-{n}", n, title, 1.0, dict(attributes), "")


def test_namesakes_carry_the_attribute_that_tells_them_apart_by_its_display_name() -> None:
    facts = facts_of(STYLE, CONCEPT, SET)
    hits = [hit(1, "kissing cat", style="flat", set="twemoji", concept="1f63d"),
            hit(2, "sleepy face", style="cartoon", set="google-noto", concept="1f62a"),
            hit(3, "kissing cat", style="3d", set="twemoji", concept="1f63d")]
    assert distinct_titles(hits, facts) == [f"kissing cat{TITLE_SEPARATOR}Flat", "sleepy face",
                                            f"kissing cat{TITLE_SEPARATOR}3D"]


def test_the_attribute_that_separates_most_namesakes_is_the_one_shown() -> None:
    facts = facts_of(STYLE, SET)
    hits = [hit(1, "sleepy face", style="flat", set="twemoji"), hit(2, "sleepy face", style="flat", set="google-noto"),
            hit(3, "sleepy face", style="3d", set="twemoji")]
    titles = distinct_titles(hits, facts)
    assert len(set(titles)) == 3, titles
    for title, item in zip(titles, hits):  # each suffix is true of its item
        suffix = title.split(TITLE_SEPARATOR, 1)[1]
        assert suffix.split(",")[0] in {STYLE.display_value(item.attributes["style"]),
                                        SET.display_value(item.attributes["set"])}


def test_namesakes_nothing_tells_apart_are_numbered() -> None:
    facts = facts_of(STYLE)
    titles = distinct_titles([hit(1, "sleeping cat", style="line-art"), hit(2, "sleeping cat", style="line-art")], facts)
    assert titles == [f"sleeping cat{TITLE_SEPARATOR}version 1", f"sleeping cat{TITLE_SEPARATOR}version 2"]


def test_films_of_one_title_are_told_apart_by_year() -> None:
    facts = facts_of(YEAR)
    titles = distinct_titles([hit(1, "Hamlet", year=1948.0), hit(2, "Hamlet", year=1990.0)], facts)
    assert titles == [f"Hamlet{TITLE_SEPARATOR}year 1948", f"Hamlet{TITLE_SEPARATOR}year 1990"]


def test_unique_titles_are_left_as_they_are() -> None:
    facts = facts_of(STYLE)
    hits = [hit(1, "red heart", style="flat"), hit(2, "blue heart", style="flat")]
    assert distinct_titles(hits, facts) == ["red heart", "blue heart"]


def test_a_conversation_never_shows_two_items_under_one_title(tmp_path: Path, store) -> None:
    """The shapes catalog with titles that name only the shape ("Star"): a page of stars shows each
    with the value of its own colour or style, checked against the catalog."""
    from crs.catalog.demo import open_catalog
    from crs.catalog.ingest import IngestOptions, ingest
    from crs.dialogue import DialogueManager
    from crs.policy import load_policy
    from crs.search import CatalogSearch
    from tests.shapes import write_shapes_catalog

    path = write_shapes_catalog(tmp_path / "shapes")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row["title"] = row["attributes"]["shape"].title()
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ingest(store, path, IngestOptions(format="jsonl", catalog="shapes"))
    catalog = open_catalog(store, "shapes")
    dm = DialogueManager(store, CatalogSearch.open(store, catalog, "fake"), k=5, policy=load_policy("always-recommend"))
    reply = dm.respond(dm.start(), Message("a star"))
    titles = [item.title for item in reply.items]
    assert len(reply.items) == 5 and len(set(titles)) == 5, titles
    for item in reply.items:
        values = dm.facts.values_of([item.item_id])[0]
        base, _, suffix = item.title.partition(TITLE_SEPARATOR)
        assert base == values["shape"].title() and suffix
        told = {values["style"], *values["colour"], f"price {values['price']:g}"}
        assert set(suffix.replace(" and ", ",").replace(", ", ",").split(",")) - {""} <= told | {
            f"version {n}" for n in range(1, 6)}, (item.title, values)


def test_two_attributes_before_a_number() -> None:
    """Stars in two colours and two styles: colour and style together tell all four apart."""
    colour = AttributeInfo("colour", "tags", True, ("red", "blue"), None, label="Colour")
    price = AttributeInfo("price", "numeric", True, (), None, label="Price")
    facts = facts_of(STYLE, colour, price)
    hits = [hit(n, "Star", style=s, colour=[c], price=float(n)) for n, (s, c) in
            enumerate([("flat", "red"), ("flat", "blue"), ("3d", "red"), ("3d", "blue")], start=1)]
    assert distinct_titles(hits, facts) == [f"Star{TITLE_SEPARATOR}{t}" for t in
                                            ("Flat, red", "Flat, blue", "3D, red", "3D, blue")]
