"""Figures per opening kind (simulators.metrics.by_start) on hand-made conversations whose answers are
worked out by hand, the weighted (ratio-of-sums) bootstrap behind the understanding rate's interval,
and the per-opening table (simulators.report)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulators.metrics import BY_START_FIELDS, by_start, confidence_intervals, start_kinds, summarize
from simulators.report import format_by_start_table, format_table, markdown_by_start_table, write_report
from simulators.results import ConversationResult, TurnResult
from simulators.stats import bootstrap_ci, outward

K = 2
T = 5


def turn(number: int, action: str, shown: list[int] = (), understood: bool | None = None) -> TurnResult:
    return TurnResult(number, f"message {number}", 0, action, list(shown), list(shown), False, [], 5.0, understood)


def conversation(index: int, target: int, start: str, turns: list[TurnResult], *,
                 gave_up: bool = False) -> ConversationResult:
    success_turn = next((t.number for t in turns if target in t.shown), None)
    return ConversationResult(index, target, start, success_turn is not None, success_turn,
                              sum(t.action == "ask" for t in turns), turns, gave_up)


@pytest.fixture
def six() -> list[ConversationResult]:
    """K = 2, T = 5. Openings, in an order unlike the report's:

    * other-style-image (1): success at turn 6, past T: a failure once truncated; no turn records
      its meaning.
    * text (3): success at turn 1, position 1; success at turn 3, position 2 after one question;
      a failure over 5 turns. Understood turns: 1/1, 1/2, 2/3 -> 4 of 6.
    * similar-image (2): success at turn 2, position 1 after a question; gave up after 2 turns.
      Understood turns: 2/2, 0/1 -> 2 of 3.
    """
    return [
        conversation(0, 90, "other-style-image", [turn(t, "recommend", [1, 2] if t < 6 else [90, 1])
                                                  for t in range(1, 7)]),
        conversation(1, 10, "text", [turn(1, "recommend", [10, 1], True)]),
        conversation(2, 11, "text", [turn(1, "ask", understood=True), turn(2, "recommend", [1, 2], False),
                                     turn(3, "recommend", [1, 11])]),
        conversation(3, 12, "text", [turn(1, "recommend", [1, 2], True), turn(2, "recommend", [3, 4], True),
                                     turn(3, "recommend", [5, 6]), turn(4, "recommend", [7, 8]),
                                     turn(5, "recommend", [1, 3], False)]),
        conversation(4, 13, "similar-image", [turn(1, "ask", understood=True), turn(2, "recommend", [13, 1], True)]),
        conversation(5, 14, "similar-image", [turn(1, "recommend", [1, 2], False), turn(2, "recommend", [3, 4])],
                     gave_up=True),
    ]


def test_each_opening_has_its_figures_worked_out_by_hand(six) -> None:
    figures = by_start(six, max_turns=T, k=K)
    assert list(figures) == ["text", "similar-image", "other-style-image"]  # the report's order, not the run's

    text = figures["text"]
    assert text["n"] == 3
    assert text["success_rate"] == pytest.approx(2 / 3) and text["sr_at_5"] == pytest.approx(2 / 3)
    assert text["sr_at_10"] is None and text["sr_at_15"] is None  # T = 5: no such figure
    assert text["success_by_turn"] == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3])
    assert text["avg_turns"] == pytest.approx((1 + 3 + 6) / 3)  # the failure counts T + 1
    assert text["hdcg"] == pytest.approx((1.0 + 1 / math.log2((3 - 1) * K + 2 + 1)) / 3)
    assert text["questions_per_conversation"] == pytest.approx(1 / 3)
    assert text["understanding_rate"] == pytest.approx(4 / 6)  # understood turns / turns with a recorded meaning

    similar = figures["similar-image"]
    assert similar["n"] == 2 and similar["success_rate"] == 0.5 and similar["sr_at_5"] == 0.5
    assert similar["avg_turns"] == pytest.approx((2 + 6) / 2)
    assert similar["hdcg"] == pytest.approx(1 / math.log2((2 - 1) * K + 1 + 1) / 2)
    assert similar["questions_per_conversation"] == 0.5
    assert similar["understanding_rate"] == pytest.approx(2 / 3)

    other = figures["other-style-image"]  # its success at turn 6 lies past T = 5
    assert other["n"] == 1 and other["success_rate"] == 0.0 and other["sr_at_5"] == 0.0
    assert other["avg_turns"] == T + 1 and other["hdcg"] == 0.0
    assert other["understanding_rate"] is None and other["ci95"]["understanding_rate"] is None


def test_sr_at_t_reads_the_curve_and_a_longer_run_shows_all_three(six) -> None:
    long = by_start(six, max_turns=15, k=K)
    assert long["other-style-image"]["sr_at_5"] == 0.0 and long["other-style-image"]["sr_at_10"] == 1.0
    assert long["other-style-image"]["sr_at_15"] == 1.0
    assert long["text"]["sr_at_10"] == pytest.approx(2 / 3) and long["text"]["avg_turns"] == pytest.approx(20 / 3)
    short = by_start(six, max_turns=2, k=K)
    assert short["text"]["sr_at_5"] is None and short["text"]["success_rate"] == pytest.approx(1 / 3)


def test_each_opening_is_what_summarize_gives_for_it_alone(six) -> None:
    for kind, entry in by_start(six, max_turns=T, k=K).items():
        alone = summarize([r for r in six if r.start == kind], max_turns=T, k=K)
        assert {name: entry[name] for name in BY_START_FIELDS} == {name: alone[name] for name in BY_START_FIELDS}
        assert entry["success_by_turn"] == alone["success_by_turn"] and entry["n"] == alone["n"]


def test_every_interval_holds_its_figure_and_known_intervals_are_exact(six) -> None:
    figures = by_start(six, max_turns=T, k=K, seed=3)
    for kind, entry in figures.items():
        assert set(entry["ci95"]) == set(BY_START_FIELDS)
        for name in BY_START_FIELDS:
            interval = entry["ci95"][name]
            if entry[name] is None:
                assert interval is None, (kind, name)
            else:
                assert interval[0] <= entry[name] <= interval[1], (kind, name)
    # The text openings' SR is the bootstrap of their three 0/1 successes, as the overall ci95 is.
    assert figures["text"]["ci95"]["success_rate"] == outward(bootstrap_ci([1.0, 1.0, 0.0], seed=3))
    assert figures["text"]["ci95"]["success_rate"][0] < figures["text"]["ci95"]["success_rate"][1]
    # One conversation: nothing varies, a zero-width interval at the figure.
    assert figures["other-style-image"]["ci95"]["avg_turns"] == [6.0, 6.0]
    assert by_start(six, max_turns=T, k=K, seed=3) == figures  # reproducible


def test_the_overall_intervals_are_unchanged_and_more_fields_are_on_request(six) -> None:
    assert set(confidence_intervals(six, max_turns=T, k=K)) == {"success_rate", "avg_turns", "hdcg",
                                                                "questions_per_conversation"}
    more = confidence_intervals(six, max_turns=T, k=K, fields=("sr_at_5", "sr_at_10", "understanding_rate"))
    assert more["sr_at_10"] is None and more["sr_at_5"][0] <= 3 / 6 <= more["sr_at_5"][1]
    assert more["understanding_rate"][0] <= 6 / 9 <= more["understanding_rate"][1]
    with pytest.raises(ValueError, match="no interval for leak_rate"):
        confidence_intervals(six, max_turns=T, k=K, fields=("leak_rate",))


def test_kinds_come_in_the_report_order_with_unknown_kinds_last(six) -> None:
    odd = conversation(9, 1, "video", [turn(1, "recommend", [1])])
    assert start_kinds([odd, *six]) == ["text", "similar-image", "other-style-image", "video"]
    assert start_kinds([r for r in six if r.start != "text"]) == ["similar-image", "other-style-image"]
    assert by_start([], max_turns=T, k=K) == {}


# -- the weighted bootstrap behind the understanding rate's interval ---------------------------------------


def test_weights_of_one_give_exactly_the_unweighted_interval() -> None:
    data = np.random.default_rng(4).integers(0, 5, size=200).astype(float)
    weighted = bootstrap_ci(data, weights=np.ones_like(data), seed=9)
    assert weighted == pytest.approx(bootstrap_ci(data, seed=9), abs=1e-12)


def test_the_weighted_interval_is_the_cluster_bootstrap_of_a_ratio_of_sums() -> None:
    """Against plain index resampling of (numerator, denominator) pairs: the same distribution."""
    rng = np.random.default_rng(1)
    turns = rng.integers(0, 6, size=80).astype(float)  # some conversations record no turn at all
    understood = np.array([rng.binomial(int(n), 0.7) for n in turns], dtype=float)
    rates = np.divide(understood, turns, out=np.zeros_like(turns), where=turns > 0)
    lo, hi = bootstrap_ci(rates, weights=turns, resamples=20_000, seed=2)
    index = rng.integers(0, turns.size, size=(20_000, turns.size))
    mass = turns[index].sum(axis=1)
    ratios = understood[index].sum(axis=1)[mass > 0] / mass[mass > 0]
    plain_lo, plain_hi = np.percentile(ratios, [2.5, 97.5])
    assert lo == pytest.approx(plain_lo, abs=0.01) and hi == pytest.approx(plain_hi, abs=0.01)
    assert lo <= understood.sum() / turns.sum() <= hi


def test_weighted_edge_cases() -> None:
    assert bootstrap_ci([0.5, 0.2], weights=[0, 0]) is None  # no weight: no mean
    assert bootstrap_ci([0.25, 0.0, 0.25], weights=[4, 0, 8], seed=1) == (0.25, 0.25)  # weighted values agree
    with pytest.raises(ValueError, match="one value per value"):
        bootstrap_ci([1.0, 0.0], weights=[1.0])
    with pytest.raises(ValueError, match=">= 0"):
        bootstrap_ci([1.0, 0.0], weights=[1.0, -1.0])


# -- the per-opening table ----------------------------------------------------------------------------------


def figures_of(results: list[ConversationResult], policy: str = "eig") -> dict:
    summary = summarize(results, max_turns=T, k=K)
    return {"policy": policy, "simulator": "agenda", "profile": "realistic", **summary, "k": K, "seed": 0,
            "run_id": "hand", "ci95": confidence_intervals(results, max_turns=T, k=K, estimates=summary),
            "by_start": by_start(results, max_turns=T, k=K)}


def test_the_printed_table_has_a_row_per_policy_and_opening_with_intervals(six) -> None:
    figures = [figures_of(six), figures_of(six[1:4], "ask-3")]
    table = format_by_start_table(figures)
    lines = table.splitlines()
    assert lines[0].startswith("By opening.") and "bootstrap 95% interval" in lines[0]
    assert lines[2].split() == ["policy", "opening", "n", "SR", "SR@5", "SR@10", "SR@15", "avg", "turns", "hDCG",
                                "questions", "understood"]
    rows = [line.split() for line in lines[4:]]
    assert [row[:3] for row in rows] == [["eig", "text", "3"], ["eig", "similar-image", "2"],
                                         ["eig", "other-style-image", "1"], ["ask-3", "text", "3"]]
    text = figures[0]["by_start"]["text"]
    lo, hi = text["ci95"]["sr_at_5"]
    assert f"0.667 [{lo:.3f}, {hi:.3f}]" in lines[4]
    assert f"3.33 [{text['ci95']['avg_turns'][0]:.2f}, {text['ci95']['avg_turns'][1]:.2f}]" in lines[4]
    assert lines[4].count("n/a") == 2  # SR@10 and SR@15 with T = 5
    assert lines[6].split()[-1] == "n/a"  # other-style-image: no understanding recorded
    # format_table appends it after the policies' table; without by_start there is none.
    assert format_table(figures).endswith(table) and "By opening" not in format_table(
        [{k: v for k, v in f.items() if k != "by_start"} for f in figures])


def test_the_report_has_a_by_opening_section(six, tmp_path) -> None:
    figures = [figures_of(six)]
    path = write_report(tmp_path / "r", figures, {"eig": six}, {"catalog": "hand", "embedder": "fake"})
    text = path.read_text(encoding="utf-8")
    section = text.split("## By opening", 1)[1].split("## Success rate by turn", 1)[0]
    assert markdown_by_start_table(figures) in section
    assert "| policy | opening | n | SR |" in section and "|---|---|---:|" in section
    assert "| eig | text | 3 | 0.667 [" in section
    assert "| eig | other-style-image | 1 | 0.000 [0.000, 0.000] |" in section
