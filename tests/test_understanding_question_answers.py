"""Answers to a question as a person types them, read by the rule parser and folded into the
belief: "none of these" after a question means "my item has none of the offered values" (the
field's multi-round protocol answers so), not a rejection of the page shown before it."""
from __future__ import annotations

import pytest

from crs.belief import BeliefState
from crs.facts import CatalogFacts
from crs.turn import Question
from crs.understanding.parser import ParseContext, ShownItem
from crs.understanding.rule_parser import RuleCritiqueParser
from tests.test_rule_parser import facts, parser  # noqa: F401  (the shapes catalog's facts and rule parser)


def _shown(facts: CatalogFacts, n: int = 3) -> list[ShownItem]:
    values = facts.values_of(facts.ids[:n])
    return [ShownItem(int(i), "item", v) for i, v in zip(facts.ids[:n], values)]


@pytest.mark.parametrize("text", ["none of these", "Hmm, none of those really.", "neither of them", "nope, none"])
def test_none_of_these_answers_the_question_with_an_exclusion(parser, facts, text) -> None:
    question = Question("colour", ["red", "blue", "any"])
    # A page was shown before the question: the answer is about the options, not about the page.
    critique = parser.parse(text, ParseContext(facts, _shown(facts), question))
    assert critique.exclude == {"colour": ["red", "blue"]}
    assert not critique.reject_all and not critique.require and not critique.dont_care


def test_none_of_these_with_no_question_still_rejects_the_page(parser, facts) -> None:
    critique = parser.parse("none of these", ParseContext(facts, _shown(facts)))
    assert critique.reject_all and not critique.exclude


def test_the_exclusion_reaches_the_belief_and_keeps_the_page(parser, facts) -> None:
    belief = BeliefState(last_shown=[int(i) for i in facts.ids[:3]])
    question = Question("shape", ["circle", "star", "any"])
    belief.apply(parser.parse("none of them, sorry", ParseContext(facts, _shown(facts), question)), facts)
    assert belief.exclude == {"shape": ["circle", "star"]}
    assert belief.disliked == [] and "shape" not in belief.settled  # still open: it can be asked again
