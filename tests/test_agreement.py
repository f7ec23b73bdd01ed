"""Agreement between simulated users (simulators.agreement): Cohen's kappa on a worked textbook example
and its edge cases, success agreement on hand-made runs, and `crs eval --agreement` end to end on the
shapes catalog with the scripted fake LLM."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crs.cli import build_parser, main
from simulators.agreement import cohen_kappa, paired, success_agreement
from simulators.results import ConversationResult, TurnResult

# -- Cohen's kappa --------------------------------------------------------------------------------------


def labels(table: dict[tuple[str, str], int]) -> tuple[list[str], list[str]]:
    """Two raters' labels from a contingency table {(rater A's label, rater B's label): count}."""
    a, b = [], []
    for (x, y), count in table.items():
        a += [x] * count
        b += [y] * count
    return a, b


def test_the_textbook_example() -> None:
    """50 applications read by two readers (Wikipedia, "Cohen's kappa", first example): both yes 20,
    A yes B no 5, A no B yes 10, both no 15. p_o = 35/50 = 0.7; A says yes 25/50, B 30/50, so
    p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5 and kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4."""
    a, b = labels({("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15})
    assert cohen_kappa(a, b) == pytest.approx(0.4, abs=1e-12)
    assert cohen_kappa(b, a) == pytest.approx(0.4, abs=1e-12)  # symmetric


def test_a_second_textbook_example_with_low_kappa_despite_high_agreement() -> None:
    """Wikipedia's paradox example: both yes 45, A yes B no 15, A no B yes 25, both no 15 (n = 100):
    p_o = 0.60, p_e = 0.6 * 0.7 + 0.4 * 0.3 = 0.54, kappa = 0.06 / 0.46 = 0.1304."""
    a, b = labels({("yes", "yes"): 45, ("yes", "no"): 15, ("no", "yes"): 25, ("no", "no"): 15})
    assert cohen_kappa(a, b) == pytest.approx(0.06 / 0.46, abs=1e-12)


@pytest.mark.parametrize("a, b, kappa", [
    ([True] * 5, [True] * 5, 1.0),  # p_e = 1: both constant and agreeing -> defined as 1
    ([False] * 4, [False] * 4, 1.0),
    ([True] * 4, [False] * 4, 0.0),  # both constant, never agree: p_o = p_e = 0
    ([True, True, True, True], [True, False, True, False], 0.0),  # one constant: no better than chance
    ([True, False, True, False], [True, False, True, False], 1.0),  # perfect agreement with variation
    ([True, False, True, False], [False, True, False, True], -1.0),  # perfect disagreement, balanced
    ([True, True, False], [True, False, False], 0.4),  # p_o 2/3, p_e (2*1 + 1*2)/9 = 4/9 -> (2/9)/(5/9)
])
def test_edge_cases(a: list[bool], b: list[bool], kappa: float) -> None:
    assert cohen_kappa(a, b) == pytest.approx(kappa, abs=1e-12)


def test_empty_and_unequal_inputs() -> None:
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError, match="different numbers of items"):
        cohen_kappa([True], [True, False])


def test_it_matches_scikit_learn_where_scikit_learn_is_defined() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for size, kinds in ((30, 2), (200, 3), (7, 4)):
        a = rng.integers(0, kinds, size=size).tolist()
        b = [x if rng.random() < 0.6 else int(rng.integers(0, kinds)) for x in a]
        assert cohen_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b), abs=1e-12)


# -- success agreement of two runs ----------------------------------------------------------------------


def result(index: int, success_turn: int | None, *, target: int = 0, start: str = "text") -> ConversationResult:
    target = target or 100 + index
    turns = [TurnResult(t, "m", 0, "recommend", [target] if t == success_turn else [1])
             for t in range(1, (success_turn or 3) + 1)]
    return ConversationResult(index, target, start, success_turn is not None, success_turn, 0, turns)


def test_agreement_counts_and_kappa_of_two_runs() -> None:
    """6 plans; agenda succeeds on 0-3, the LLM user on 0, 1, 4 and on 2 only at turn 4, past T = 3:
    both 0, 1; agenda only 2, 3; llm only 4; neither 5."""
    agenda = [result(0, 1), result(1, 2), result(2, 3), result(3, 1), result(4, None), result(5, None)]
    llm = [result(5, None), result(4, 2), result(3, None), result(2, 4), result(1, 1), result(0, 3)]  # any order
    data = success_agreement(agenda, llm, max_turns=3)
    assert data["n"] == 6 and data["max_turns"] == 3
    assert data["success_rate"] == {"agenda": pytest.approx(4 / 6), "llm": pytest.approx(3 / 6)}
    assert data["table"] == {"both": 2, "agenda only": 2, "llm only": 1, "neither": 1}
    assert data["agreement"] == pytest.approx(3 / 6)
    # p_e = (4*3 + 2*3) / 36 = 0.5 -> kappa = (0.5 - 0.5) / 0.5 = 0
    assert data["kappa"] == pytest.approx(0.0, abs=1e-12)
    lo, hi = data["ci95"]["agreement"]
    assert 0 <= lo < 0.5 < hi <= 1
    for name, rate in data["success_rate"].items():
        assert data["ci95"]["success_rate"][name][0] <= rate <= data["ci95"]["success_rate"][name][1]
    # With T = 4 the LLM user's late success counts: both 0, 1, 2.
    assert success_agreement(agenda, llm, max_turns=4)["table"] == {"both": 3, "agenda only": 1, "llm only": 1,
                                                                    "neither": 1}


def test_runs_on_other_plans_are_refused() -> None:
    with pytest.raises(ValueError, match="not the same plans"):
        paired([result(0, 1, target=5)], [result(0, 1, target=6)])
    with pytest.raises(ValueError, match="not the same plans"):
        paired([result(0, 1, start="text")], [result(0, 1, start="similar-image")])
    with pytest.raises(ValueError, match="different conversations"):
        paired([result(0, 1), result(1, 1)], [result(0, 1)])
    with pytest.raises(ValueError, match="different names"):
        success_agreement([result(0, 1)], [result(0, 1)], max_turns=3, names=("a", "a"))
    empty = success_agreement([], [], max_turns=3)
    assert empty["n"] == 0 and empty["kappa"] is None and empty["agreement"] is None


# -- crs eval --agreement, end to end ------------------------------------------------------------------------

AGREEMENT_FIELDS = {"policy", "n", "max_turns", "k", "seed", "profile", "llm", "run_ids", "success_rate",
                    "agreement", "kappa", "table", "ci95", "runs"}


def crs_eval(capsys: pytest.CaptureFixture[str], store, *argv: str) -> tuple[int, str, str]:
    code = main(["eval", "--catalog", "shapes", "--db", store.url, "--embedder", "fake", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def script(tmp_path: Path) -> Path:
    """The scripted chat model of tests/test_eval_cli.py: by prompt, so every run is reproducible."""
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"by_prompt": ['{"require": {"shape": ["star"]}, "exclude": {}, "accept": false}',
                                              "I would like a red star, please.", "That one is it!"]}))
    return path


def test_agreement_runs_both_users_on_the_same_plans(shapes_catalog, capsys, script: Path, tmp_path: Path) -> None:
    from sqlalchemy import select

    from crs.store.models import EvalConversation, EvalRun

    store, _ = shapes_catalog
    argv = ("--agreement", "--llm", f"fake:{script}", "--policy", "random-ask", "--n", "8", "--max-turns", "3",
            "--seed", "2", "--run-id", "agr")
    code, out, err = crs_eval(capsys, store, *argv, "--json", "--report", str(tmp_path / "report"))
    assert code == 0, err
    data = json.loads(out)
    assert set(data) == AGREEMENT_FIELDS
    assert (data["policy"], data["n"], data["max_turns"], data["seed"], data["profile"]) == (
        "random-ask", 8, 3, 2, "realistic")
    assert data["run_ids"] == {"agenda": "agr-realistic", "llm": "agr-llm"}
    assert "run agr-realistic" in err and "run agr-llm" in err  # each side says how to resume it

    # Two ordinary stored runs, differing in the simulated user only, on the same plans.
    with store.session() as db:
        agenda, llm = db.get(EvalRun, "agr-realistic").config, db.get(EvalRun, "agr-llm").config
        plans = {run: [row.plan for row in db.scalars(select(EvalConversation).where(EvalConversation.run_id == run)
                                                      .order_by(EvalConversation.conversation_index))]
                 for run in ("agr-realistic", "agr-llm")}
    assert (agenda["simulator"]["kind"], agenda["simulator"]["profile"]) == ("agenda", "realistic")
    assert (llm["simulator"]["kind"], llm["simulator"]["profile"]) == ("llm", "llm")
    assert {k: v for k, v in agenda.items() if k != "simulator"} == {k: v for k, v in llm.items() if k != "simulator"}
    assert len(plans["agr-realistic"]) == 8 and plans["agr-realistic"] == plans["agr-llm"]

    # The figures agree with each run's own figures, and with each other.
    runs = data["runs"]
    assert runs["agenda"]["simulator"] == "agenda" and runs["llm"]["simulator"] == "llm"
    assert data["success_rate"] == {"agenda": runs["agenda"]["success_rate"], "llm": runs["llm"]["success_rate"]}
    table = data["table"]
    assert sum(table.values()) == 8
    assert data["agreement"] == pytest.approx((table["both"] + table["neither"]) / 8)
    assert data["success_rate"]["agenda"] == pytest.approx((table["both"] + table["agenda only"]) / 8)
    assert data["success_rate"]["llm"] == pytest.approx((table["both"] + table["llm only"]) / 8)
    assert data["kappa"] is not None and -1 <= data["kappa"] <= 1
    lo, hi = data["ci95"]["agreement"]
    assert lo <= data["agreement"] <= hi
    text = (tmp_path / "report" / "agreement.md").read_text(encoding="utf-8")
    assert "Cohen's kappa" in text and "agr-realistic" in text
    assert (tmp_path / "report" / "llm" / "report.md").is_file()

    # The same line again reads both runs back, and prints the same figures; as a table without --json.
    code, again, err = crs_eval(capsys, store, *argv, "--json")
    assert code == 0 and err.count("nothing was run") == 2
    assert {k: v for k, v in json.loads(again).items() if k != "runs"} == {k: v for k, v in data.items()
                                                                          if k != "runs"}
    code, out, err = crs_eval(capsys, store, *argv)
    assert code == 0, err
    assert "success agreement" in out and f"{data['agreement']:.3f} [{lo:.3f}, {hi:.3f}]" in out
    assert "Cohen's kappa" in out and f"{data['kappa']:.3f}" in out


def test_each_side_is_an_ordinary_run_that_resumes_on_its_own(shapes_catalog, capsys, script: Path) -> None:
    """The agenda side run earlier with plain `crs eval` under its id is read back, not run again; only the
    LLM side runs. Its figures equal a separate `crs eval --simulator llm` run's."""
    from simulators.runner import TIMING_FIELDS

    store, _ = shapes_catalog
    common = ("--llm", f"fake:{script}", "--policy", "random-ask", "--n", "5", "--max-turns", "3", "--json")
    code, out, err = crs_eval(capsys, store, *common, "--profile", "mcr", "--run-id", "pre-mcr")
    assert code == 0, err
    agenda_alone = json.loads(out)
    code, out, err = crs_eval(capsys, store, *common, "--simulator", "llm", "--run-id", "llm-alone")
    assert code == 0, err
    llm_alone = json.loads(out)

    code, out, err = crs_eval(capsys, store, "--agreement", "--profile", "mcr", *common, "--run-id", "pre")
    assert code == 0, err
    assert "run pre-mcr is finished" in err and "run pre-llm: running 5" in err
    data = json.loads(out)
    assert data["profile"] == "mcr" and data["run_ids"] == {"agenda": "pre-mcr", "llm": "pre-llm"}
    assert data["runs"]["agenda"] == agenda_alone

    def comparable(figures: dict) -> dict:
        return {k: v for k, v in figures.items() if k not in (*TIMING_FIELDS, "run_id")}

    assert comparable(data["runs"]["llm"]) == comparable(llm_alone)


@pytest.mark.parametrize("argv, message", [
    (["--agreement"], "--agreement needs the LLM user's model: give --llm"),
    (["--agreement", "--llm", "fake:x.json", "--compare"], "leave out --compare and --seeds"),
    (["--agreement", "--llm", "fake:x.json", "--seeds", "0,1"], "leave out --compare and --seeds"),
    (["--agreement", "--llm", "fake:x.json", "--profile", "llm"], "leave out --simulator llm and --profile llm"),
    (["--agreement", "--llm", "fake:x.json", "--simulator", "llm"], "leave out --simulator llm and --profile llm"),
    (["--agreement", "--llm", "fake:x.json", "--run-id", "r" * 96], "pass 100 characters"),
])
def test_agreement_user_errors(shapes_catalog, capsys, monkeypatch, argv: list[str], message: str) -> None:
    store, _ = shapes_catalog
    monkeypatch.setattr("simulators.runner.evaluate", lambda *a, **k: pytest.fail("a run started"))
    code, out, err = crs_eval(capsys, store, "--n", "2", *argv)
    assert code == 1 and out == "" and message in err and "Traceback" not in err


def test_help_documents_the_new_options(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--agreement" in text and "Cohen's kappa" in text and "ID-PROFILE and ID-llm" in text
    assert "--by-start" in text and "SR@5/10/15" in text and "on with --compare" in text
    args = build_parser().parse_args(["eval"])
    assert (args.agreement, args.by_start) == (False, False)


def test_by_start_gives_a_single_policy_run_its_per_opening_figures(shapes_catalog, capsys) -> None:
    store, _ = shapes_catalog
    code, out, err = crs_eval(capsys, store, "--n", "4", "--max-turns", "2", "--by-start", "--json")
    assert code == 0, err
    figures = json.loads(out)
    assert sum(entry["n"] for entry in figures["by_start"].values()) == 4
    code, out, err = crs_eval(capsys, store, "--n", "4", "--max-turns", "2", "--json")
    assert code == 0 and "by_start" not in json.loads(out)  # a plain run's fields are unchanged
