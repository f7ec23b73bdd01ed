"""The checks on a simulated customer's line: role breaks, accepts, picked options, repetition, trimming."""
from __future__ import annotations

import pytest

from simulators.line_checks import (MAX_LINE_CHARS, UNNAMED, accepted, false_accept, picked_options, repeats,
                                    role_break, trim, wrong_answer)


@pytest.mark.parametrize("line", [
    "Sure, I'm ready!", "Sure, I'd be happy to help! What would you like to see?", "How can I help you today?",
    "What are you looking for?", "Certainly! Here are some stars.", "I recommend the blue one.",
    "Great choice! Anything else you need?", "As an AI, I cannot see pictures.", "Assistant: here you go",
    "Do you want it in blue?", "Would you prefer a flat one?", "Which colour would you like?",
    "The customer wants a red star.", "Let me know what you want.", "Sure!", "Certainly! What else?",
    "Of course, I can show you more.", "I'm not sure what style you're looking for.", "Sorry for any inconvenience.",
])
def test_assistant_style_lines_are_role_breaks(line) -> None:
    assert role_break(line)


@pytest.mark.parametrize("line", [
    "a blue star please", "do you have it in blue?", "Could you show me flat ones?", "sure, blue is fine",
    "I'd like something green", "none of these", "like #2 but outline", "any is fine", "Have you got squares?",
    "I want a star, you know, the flat kind",
    "sure, I'd like it in blue",
])
def test_customer_lines_are_not(line) -> None:
    assert not role_break(line)


@pytest.mark.parametrize("line, shown, choice", [
    ("#2 is it", 3, 1), ("that's it, number 1!", 2, 0), ("found it: the third one", 3, 2), ("perfect, #1", 2, 0),
    ("yes! that's it", 2, UNNAMED), ("#9 is it", 3, UNNAMED),
    ("#2 is not it", 3, None), ("#2 is close but blue", 3, None), ("not the first one", 2, None),
    ("like #1 but outline", 2, None), ("none of these", 3, None), ("#2 is it", 0, None),
])
def test_accepts_are_read_with_the_item_named(line, shown, choice) -> None:
    assert accepted(line, shown) == choice


def test_a_false_accept_is_an_accept_of_anything_but_the_target() -> None:
    assert false_accept("#1 is it", [10, 11], target_id=11)
    assert not false_accept("#2 is it", [10, 11], target_id=11)
    assert false_accept("that's it!", [10, 12], target_id=11)  # which one is not said; the target is not shown
    assert not false_accept("that's it!", [10, 11], target_id=11)
    assert not false_accept("more like #1", [10, 12], target_id=11)


def test_picked_options_and_wrong_answers() -> None:
    options = ["red", "dark red", "blue", "line art"]
    assert picked_options("blue please, not red", options) == ["blue"]
    assert picked_options("Line-Art, in dark red", options) == ["red", "dark red", "line art"]
    assert not wrong_answer("dark red please", options, truth=["dark red"])  # "red" is part of the pick
    assert wrong_answer("red, I think", options, truth=["blue"])
    assert not wrong_answer("any is fine", options, truth=["blue"])
    assert wrong_answer("blue", options, truth=[])  # it has no colour at all: "any" was right


def test_repetition_ignores_case_punctuation_and_a_small_change() -> None:
    earlier = ["I want a blue star", "flat please"]
    assert repeats("i want a blue star!", earlier)
    assert repeats("I want a blue stars", earlier)
    assert not repeats("a green star", earlier)
    assert not repeats("anything", [""])
    assert repeats("I'm looking for a star and a star and a star and a star.", [])  # it repeats itself
    assert repeats("no, no, no, no, no, no, no", [])
    assert not repeats("I want a blue star, a flat one", [])


def test_trim_keeps_two_sentences_and_a_chat_lines_length() -> None:
    assert trim("A star. Blue. Flat, please.") == ("A star. Blue.", True)
    assert trim("a star please") == ("a star please", False)
    assert trim("A star. Blue! a star. Flat.") == ("A star. Blue!", True)  # a sentence said twice is kept once
    assert trim("Sorry. Sorry. Sorry.") == ("Sorry.", True)
    long, cut = trim("I want " + "a very " * 60 + "blue star")
    assert cut and len(long) <= MAX_LINE_CHARS and long.startswith("I want a very")
    assert trim("z" * 300) == ("z" * 300, False)  # no word boundary: left for the caller to refuse
