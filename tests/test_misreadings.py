"""The understanding rate by kind of phrase, on hand-made conversations, and the labels the loop records."""
from __future__ import annotations

from simulators.base import Intent
from simulators.conversation import phrase_of
from simulators.misreadings import format_misreadings, markdown_misreadings, understanding_by_phrase
from simulators.results import ConversationResult, TurnResult


def turn(number: int, phrase: str | None, understood: bool | None) -> TurnResult:
    return TurnResult(number, "text", 0, "recommend", understood=understood, phrase=phrase)


def test_turns_are_grouped_by_kind_and_by_each_form() -> None:
    results = [
        ConversationResult(0, 1, "text", False, None, 0, [
            turn(1, "opening-text: synonym, filler", False), turn(2, "reject-all", True), turn(3, "reject-all", False)]),
        ConversationResult(1, 2, "text", True, 3, 0, [
            turn(1, "opening-text: exact", True), turn(2, "like-but: synonym, typo", False),
            turn(3, None, None),  # a picture alone: no intent, not counted
            turn(4, "click", None)]),  # no stored turn to compare with: not counted
    ]
    figures = understanding_by_phrase(results)
    assert figures["by_kind"] == {"opening-text": {"n": 2, "understood": 0.5}, "reject-all": {"n": 2, "understood": 0.5},
                                  "like-but": {"n": 1, "understood": 0.0}}
    assert figures["by_form"] == {"exact": {"n": 3, "understood": 0.6667}, "synonym": {"n": 2, "understood": 0.0},
                                  "filler": {"n": 1, "understood": 0.0}, "typo": {"n": 1, "understood": 0.0}}
    table = format_misreadings(figures)
    assert table.splitlines()[0].split() == ["kind", "of", "phrase", "turns", "understood"]
    assert table.splitlines()[1].startswith("like-but")  # worst understood first
    markdown = markdown_misreadings(figures)
    assert "| like-but | 1 | 0.0% |" in markdown and "| exact | 3 | 66.7% |" in markdown


def test_the_loop_labels_a_turn_with_its_kind_and_forms() -> None:
    assert phrase_of(Intent(kind="like-but", forms=("synonym", "typo"))) == "like-but: synonym, typo"
    assert phrase_of(Intent(kind="click")) == "click"
    assert phrase_of(Intent()) is None and phrase_of(None) is None
