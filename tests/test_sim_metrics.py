"""Evaluation metrics on hand-made conversations whose figures are worked out by hand."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest

from simulators.metrics import summarize, truncate
from simulators.results import ConversationResult, TurnResult

FIELDS = {"n", "max_turns", "success_rate", "avg_turns", "hdcg", "recall_at_k", "success_by_turn",
          "questions_per_conversation", "leak_rate", "conversations_per_second", "turn_latency_ms",
          "sr_at_5", "sr_at_10", "sr_at_15", "understanding_rate",
          "line_chars", "role_break_rate", "false_accept_rate", "wrong_answer_rate", "repetition_rate",
          "user_line_checks"}


def turn(number: int, action: str, shown: list[int] = (), ranking: list[int] = (), *, leaked: bool = False,
         latency: float = 10.0) -> TurnResult:
    return TurnResult(number, f"message {number}", 0, action, list(shown), list(ranking), leaked, [], latency)


def conversation(index: int, target: int, turns: list[TurnResult], *, gave_up: bool = False) -> ConversationResult:
    success_turn = next((t.number for t in turns if target in t.shown), None)
    return ConversationResult(index, target, "text", success_turn is not None, success_turn,
                              sum(t.action == "ask" for t in turns), turns, gave_up)


@pytest.fixture
def four() -> list[ConversationResult]:
    """T = 3, K = 2: two successes (turn 2 at position 2; turn 1 at position 1), one failure that
    ran out of turns, one that gave up after a leaked turn."""
    return [
        conversation(0, 7, [turn(1, "ask", ranking=[7, 1], latency=10),
                            turn(2, "recommend", [3, 7], [3, 7], latency=20)]),
        conversation(1, 8, [turn(1, "recommend", [8, 2], [8, 2], latency=30)]),
        conversation(2, 9, [turn(1, "ask", ranking=[1, 2], latency=40),
                            turn(2, "recommend", [1, 2], [1, 2], latency=50),
                            turn(3, "recommend", [3, 4], [9, 3], latency=60)]),
        conversation(3, 5, [turn(1, "recommend", [50, 6], [50, 6], leaked=True, latency=70)], gave_up=True),
    ]


def test_every_figure_of_a_small_run(four) -> None:
    m = summarize(four, max_turns=3, k=2, elapsed_s=2.0)
    assert set(m) == FIELDS
    assert m["n"] == 4 and m["max_turns"] == 3
    assert m["success_rate"] == 0.5
    assert m["avg_turns"] == pytest.approx((2 + 1 + 4 + 4) / 4)  # failures count T + 1
    assert m["hdcg"] == pytest.approx((1 / math.log2((2 - 1) * 2 + 2 + 1) + 1.0) / 4)
    assert m["recall_at_k"] == pytest.approx((2 / 2 + 1 / 1 + 1 / 3 + 0) / 4)
    assert m["success_by_turn"] == [0.25, 0.5, 0.5]
    assert m["questions_per_conversation"] == 0.5
    assert m["leak_rate"] == pytest.approx(1 / 7)
    assert m["conversations_per_second"] == 2.0
    assert m["turn_latency_ms"] == {"p50": 40.0, "p95": pytest.approx(67.0)}
    assert m["sr_at_5"] is None and m["sr_at_10"] is None and m["sr_at_15"] is None
    assert m["line_chars"] == {"mean": 9.0, "max": 9}  # "message N"
    assert m["role_break_rate"] is None and m["user_line_checks"] is None  # nothing checked these lines


def test_the_line_figures_of_checked_turns() -> None:
    checked = [replace(turn(1, "ask"), user_text="Sure, I'm ready!", user_checks=["role-break", "regenerated",
                                                                                    "replaced"]),
               replace(turn(2, "recommend", [1, 2]), user_text="#1 is it", user_checks=["false-accept", "regenerated"]),
               replace(turn(3, "recommend", [3, 4]), user_text="", user_checks=[]),  # a picture alone: no line
               replace(turn(4, "ask"), user_text="blue", user_checks=["trimmed"])]
    m = summarize([conversation(0, 9, checked)], max_turns=5, k=2)
    assert m["line_chars"] == {"mean": pytest.approx((16 + 8 + 4) / 3), "max": 16}
    assert (m["role_break_rate"], m["false_accept_rate"], m["wrong_answer_rate"], m["repetition_rate"]) == (
        0.25, 0.25, 0.0, 0.0)
    assert m["user_line_checks"] == {"turns": 4, "role_break": 1, "false_accept": 1, "wrong_answer": 0,
                                     "repetition": 0, "trimmed": 1, "regenerated": 2, "replaced": 1}


def test_hdcg_discounts_by_turn_and_position() -> None:
    late = conversation(0, 1, [turn(t, "recommend", [9, 9, 9, 1 if t == 3 else 9, 9]) for t in (1, 2, 3)])
    assert summarize([late], max_turns=10, k=5)["hdcg"] == pytest.approx(1 / math.log2(2 * 5 + 4 + 1))
    first = conversation(0, 1, [turn(1, "recommend", [1, 2, 3])])
    assert summarize([first], max_turns=10, k=5)["hdcg"] == 1.0
    # Shown beyond the K positions the metric counts: a success, but no hDCG.
    wide = conversation(0, 1, [turn(1, "recommend", [2, 3, 1])])
    assert summarize([wide], max_turns=10, k=2)["hdcg"] == 0.0


def test_recall_reads_only_the_top_k_of_the_ranking() -> None:
    result = conversation(0, 4, [turn(1, "ask", ranking=[1, 2, 4]), turn(2, "ask", ranking=[4, 1, 2])])
    assert summarize([result], max_turns=5, k=2)["recall_at_k"] == 0.5
    assert summarize([result], max_turns=5, k=3)["recall_at_k"] == 1.0


def test_a_long_run_truncated_reads_as_a_short_run() -> None:
    """SR@10 from a T = 15 run equals a T = 10 run's: a success at turn 12 is a failure at T = 10."""
    slow = conversation(0, 1, [turn(t, "ask" if t <= 11 else "recommend", [1] if t == 12 else [], [2], latency=t)
                               for t in range(1, 13)])
    quick = conversation(1, 2, [turn(1, "ask", ranking=[2]), turn(2, "ask"), turn(3, "recommend", [2], [2])])
    long = summarize([slow, quick], max_turns=15, k=5)
    assert (long["sr_at_5"], long["sr_at_10"], long["sr_at_15"]) == (0.5, 0.5, 1.0)
    assert long["success_by_turn"][11] == 1.0 and len(long["success_by_turn"]) == 15
    short = summarize([slow, quick], max_turns=10, k=5)
    assert short["success_rate"] == 0.5 and short["sr_at_10"] == 0.5 and short["sr_at_15"] is None
    assert short["avg_turns"] == (11 + 3) / 2
    assert short["questions_per_conversation"] == (10 + 2) / 2  # asks after turn 10 are not counted
    assert short["turn_latency_ms"]["p95"] <= 10.0  # nor their latencies
    cut = truncate(slow, 10)
    assert not cut.success and cut.success_turn is None and len(cut.turns) == 10 and not cut.gave_up
    assert truncate(quick, 10) is quick


def test_empty_and_untimed_runs() -> None:
    m = summarize([], max_turns=3, k=5)
    assert m["n"] == 0 and m["success_rate"] is None and m["success_by_turn"] == [None, None, None]
    assert m["turn_latency_ms"] == {"p50": None, "p95": None} and m["leak_rate"] is None
    one = conversation(0, 1, [turn(1, "recommend", [1], [1])])
    assert summarize([one], max_turns=3, k=5)["conversations_per_second"] is None
    with pytest.raises(ValueError):
        summarize([one], max_turns=0, k=5)


def test_results_round_trip_through_json_without_changing_a_figure(four) -> None:
    import json

    again = [ConversationResult.from_json(json.loads(json.dumps(r.to_json()))) for r in four]
    assert again == four
    assert summarize(again, max_turns=3, k=2) == summarize(four, max_turns=3, k=2)


def test_per_conversation_values_are_what_the_figures_average(four) -> None:
    import numpy as np

    from simulators.metrics import PER_CONVERSATION, per_conversation

    values = per_conversation(four, max_turns=3, k=2)
    assert tuple(values) == PER_CONVERSATION
    assert values["success_rate"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert values["avg_turns"].tolist() == [2.0, 1.0, 4.0, 4.0]  # failures count T + 1
    assert values["hdcg"].tolist() == pytest.approx([1 / math.log2(2 + 2 + 1), 1.0, 0.0, 0.0])
    assert values["recall_at_k"].tolist() == pytest.approx([1.0, 1.0, 1 / 3, 0.0])
    assert values["questions_per_conversation"].tolist() == [1.0, 0.0, 1.0, 0.0]
    m = summarize(four, max_turns=3, k=2)
    for name, column in values.items():
        assert column.dtype == np.float64 and len(column) == 4
        assert float(np.mean(column)) == pytest.approx(m[name], abs=1e-15)
    # Truncated like the figures: at T = 1, the turn-2 success is a failure counting 2 turns.
    short = per_conversation(four, max_turns=1, k=2)
    assert short["success_rate"].tolist() == [0.0, 1.0, 0.0, 0.0] and short["avg_turns"].tolist() == [2, 1, 2, 2]
    assert per_conversation([], max_turns=3, k=2)["hdcg"].size == 0
    with pytest.raises(ValueError):
        per_conversation(four, max_turns=3, k=0)


def test_confidence_intervals_hold_each_figure_and_are_reproducible(four) -> None:
    from simulators.metrics import CI_FIELDS, confidence_intervals

    m = summarize(four, max_turns=3, k=2)
    ci = confidence_intervals(four, max_turns=3, k=2, seed=3, estimates=m)
    assert tuple(ci) == CI_FIELDS == ("success_rate", "avg_turns", "hdcg", "questions_per_conversation")
    for name, (lo, hi) in ci.items():
        assert lo <= m[name] <= hi and lo < hi  # four mixed conversations: some width
    assert 0.0 <= ci["success_rate"][0] and ci["success_rate"][1] <= 1.0 and 1.0 <= ci["avg_turns"][0]
    assert confidence_intervals(four, max_turns=3, k=2, seed=3, estimates=m) == ci
    same = [conversation(i, 1, [turn(1, "recommend", [1], [1])]) for i in range(5)]
    assert confidence_intervals(same, max_turns=3, k=2)["success_rate"] == [1.0, 1.0]
    assert confidence_intervals([], max_turns=3, k=2) == dict.fromkeys(CI_FIELDS)



def test_the_understanding_rate_on_a_hand_made_conversation() -> None:
    """Turns with a recorded intent count; each is understood or not; turns without one do not count."""
    from dataclasses import replace

    turns = [replace(turn(1, "ask"), understood=True), replace(turn(2, "recommend", [5]), understood=False),
             replace(turn(3, "recommend", [6]), understood=True), turn(4, "recommend", [7])]  # 4: no intent
    result = ConversationResult(0, 7, "text", True, 4, 1, turns)
    assert summarize([result], max_turns=10, k=5)["understanding_rate"] == pytest.approx(2 / 3)
    assert summarize([ConversationResult(0, 7, "text", False, None, 0, [turn(1, "ask")])], max_turns=10,
                     k=5)["understanding_rate"] is None
