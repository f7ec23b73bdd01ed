"""The rule/lexicon critique parser, one test per critique kind, on the shapes catalog."""
from __future__ import annotations

import pytest

from crs.understanding.parser import ParseContext, ShownItem
from crs.understanding.rule_parser import RuleCritiqueParser
from crs.facts import CatalogFacts
from crs.turn import Question, Reference, Relative


@pytest.fixture
def facts(shapes_catalog) -> CatalogFacts:
    return CatalogFacts.load(*shapes_catalog)


@pytest.fixture
def parser(facts) -> RuleCritiqueParser:
    return RuleCritiqueParser(facts)


@pytest.fixture
def shown(facts) -> list[ShownItem]:
    """Three shown items: a red flat circle, a blue outline square, a green flat star."""
    wanted = [("circle", "red", "flat"), ("square", "blue", "outline"), ("star", "green", "flat")]
    values = facts.values_of(facts.ids)
    items = []
    for shape, colour, style in wanted:
        row = next(i for i, v in enumerate(values) if v["shape"] == shape and v["colour"] == [colour]
                   and v["style"] == style)
        items.append(ShownItem(int(facts.ids[row]), f"{colour} {shape}", values[row]))
    return items


def parse(parser, facts, text, shown=(), question=None):
    return parser.parse(text, ParseContext(facts, list(shown), question))


def test_positive_and_negative_values(parser, facts) -> None:
    c = parse(parser, facts, "blue, not outlined")
    assert c.require == {"colour": ["blue"]} and c.exclude == {"style": ["outline"]}
    c = parse(parser, facts, "a green star without red")
    assert c.require == {"colour": ["green"], "shape": ["star"]} and c.exclude == {"colour": ["red"]}
    c = parse(parser, facts, "no circles please")
    assert c.exclude == {"shape": ["circle"]} and not c.require


def test_synonyms_and_word_forms(parser, facts) -> None:
    assert parse(parser, facts, "something bluish").require == {"colour": ["blue"]}
    assert parse(parser, facts, "Squares!").require == {"shape": ["square"]}
    assert parse(parser, facts, "a red outline").require == {"colour": ["red"], "style": ["outline"]}


def test_relative_critiques_on_ordered_and_numeric_attributes(parser, facts, shown) -> None:
    c = parse(parser, facts, "cheaper", shown)
    assert c.relative == [Relative("price", -1, None)]
    c = parse(parser, facts, "something simpler than the third", shown)
    assert c.relative == [Relative("style", -1, 2)]
    c = parse(parser, facts, "newer")  # the shapes catalog has no date: kept as text, not invented
    assert not c.relative and c.text == "newer"


def test_style_change(parser, facts) -> None:
    c = parse(parser, facts, "in outline style")
    assert c.require == {"style": ["outline"]}


@pytest.mark.parametrize("text, reference", [
    ("the second one", Reference(1, None)),
    ("#3", Reference(2, None)),
    ("number 1", Reference(0, None)),
    ("the last one", Reference(2, None)),
    ("I like the first", Reference(0, True)),
    ("not the second", Reference(1, False)),
    ("the blue one", Reference(1, None)),
    ("more like the green one", Reference(2, True)),
])
def test_references_to_shown_items(parser, facts, shown, text, reference) -> None:
    c = parse(parser, facts, text, shown)
    assert c.references == [reference]
    assert not c.require  # "the blue one" points at an item; it does not ask for blue


def test_like_the_first_but_green(parser, facts, shown) -> None:
    c = parse(parser, facts, "like the first but green", shown)
    assert c.references == [Reference(0, True)] and c.require == {"colour": ["green"]}


@pytest.mark.parametrize("text, index", [("that's it", 0), ("#2 is perfect", 1), ("I'll take the third one", 2),
                                         ("Perfect!", 0)])
def test_accept(parser, facts, shown, text, index) -> None:
    assert parse(parser, facts, text, shown).accept == index


def test_reject_all(parser, facts, shown) -> None:
    assert parse(parser, facts, "none of these", shown).reject_all
    assert parse(parser, facts, "Nope, something else", shown).reject_all
    c = parse(parser, facts, "none of these")  # nothing shown: nothing to reject, nothing kept as text
    assert not c.reject_all and c.is_empty()


def test_dont_care(parser, facts) -> None:
    question = Question("colour", ["red", "blue", "any"])
    assert parse(parser, facts, "doesn't matter", question=question).dont_care == ["colour"]
    assert parse(parser, facts, "any", question=question).dont_care == ["colour"]
    assert parse(parser, facts, "I don't care about the colour").dont_care == ["colour"]


def test_option_answers_take_the_questions_attribute(parser, facts) -> None:
    question = Question("shape", ["circle", "star", "any"])
    assert parse(parser, facts, "star", question=question).require == {"shape": ["star"]}
    assert parse(parser, facts, "a blue one I think", question=question).require == {"colour": ["blue"]}


def test_free_text_is_kept_not_dropped(parser, facts) -> None:
    c = parse(parser, facts, "something for my grandmother's birthday card")
    assert c.text == "something grandmother's birthday card".replace("something ", "")
    c = parse(parser, facts, "red, not anything spiky")
    assert c.require == {"colour": ["red"]} and c.text == ""  # negated words never become a wish
