"""`crs eval` end to end on the shapes catalog, through crs.cli.main: the JSON fields DESIGN promises,
--compare, the plain table, the report folder, user errors, and the import boundary crs -> simulators."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from crs.cli import build_parser, main
from crs.policy import BASELINES

# DESIGN.md's `crs eval --json` fields, plus the SR@5/10/15 curve points and what identifies the run.
DESIGN_FIELDS = {"policy", "simulator", "n", "max_turns", "success_rate", "avg_turns", "hdcg", "recall_at_k",
                 "success_by_turn", "questions_per_conversation", "leak_rate", "conversations_per_second",
                 "turn_latency_ms"}
EXTRA_FIELDS = {"understanding_rate", "profile", "sr_at_5", "sr_at_10", "sr_at_15", "k", "seed", "run_id", "ci95",
                # the simulated user's lines (simulators.metrics.line_figures; rates None for the agenda user)
                "line_chars", "role_break_rate", "false_accept_rate", "wrong_answer_rate", "repetition_rate",
                "user_line_checks"}
# Each opening kind's figures in by_start (--compare, --by-start), beside its n, curve and ci95.
BY_START_FIELDS = {"success_rate", "sr_at_5", "sr_at_10", "sr_at_15", "avg_turns", "hdcg",
                   "questions_per_conversation", "understanding_rate"}


def crs_eval(capsys: pytest.CaptureFixture[str], store, *argv: str) -> tuple[int, str, str]:
    code = main(["eval", "--catalog", "shapes", "--db", store.url, "--embedder", "fake", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_parser_has_eval_with_its_defaults() -> None:
    args = build_parser().parse_args(["eval"])
    assert (args.policy, args.simulator, args.n, args.max_turns, args.seed, args.workers, args.k) == (
        "eig", "agenda", 100, 10, 0, 1, 5)
    assert (args.llm, args.noise, args.vision, args.run_id, args.compare, args.json, args.report) == (
        None, None, False, None, False, False, None)
    assert args.embedder == "aligned" and args.db is None and args.catalog is None


def test_json_has_exactly_the_design_fields(shapes_catalog, capsys) -> None:
    store, _ = shapes_catalog
    code, out, err = crs_eval(capsys, store, "--n", "4", "--max-turns", "4", "--seed", "3", "-k", "3",
                              "--run-id", "j", "--json")
    assert code == 0, err
    figures = json.loads(out)
    assert set(figures) == DESIGN_FIELDS | EXTRA_FIELDS
    assert (figures["policy"], figures["simulator"], figures["n"], figures["max_turns"]) == ("eig", "agenda", 4, 4)
    assert (figures["k"], figures["seed"], figures["run_id"]) == (3, 3, "j")
    assert set(figures["turn_latency_ms"]) == {"p50", "p95"}
    assert 0 < figures["turn_latency_ms"]["p50"] <= figures["turn_latency_ms"]["p95"]
    assert 0 <= figures["success_rate"] <= 1 and 1 <= figures["avg_turns"] <= 5
    curve = figures["success_by_turn"]
    assert len(curve) == 4 and curve == sorted(curve) and curve[-1] == pytest.approx(figures["success_rate"])
    assert figures["conversations_per_second"] > 0
    assert "run j" in err  # the notice names the run, so it can be resumed

    code, again, err = crs_eval(capsys, store, "--n", "4", "--max-turns", "4", "--seed", "3", "-k", "3",
                                "--run-id", "j", "--json")
    assert code == 0 and json.loads(again) == figures and "nothing was run" in err


def test_compare_json_report_and_table(shapes_catalog, capsys, tmp_path: Path) -> None:
    store, _ = shapes_catalog
    report = tmp_path / "report"
    code, out, err = crs_eval(capsys, store, "--n", "3", "--max-turns", "3", "--compare", "--json",
                              "--report", str(report), "--run-id", "cmp")
    assert code == 0, err
    figures = json.loads(out)
    assert isinstance(figures, list) and [f["policy"] for f in figures] == ["eig", *BASELINES]
    # --compare adds the per-opening figures and the understanding by kind of phrase; every other
    # field is the single run's.
    assert all(set(f) == DESIGN_FIELDS | EXTRA_FIELDS | {"by_start", "understanding_by_phrase"}
               and f["run_id"] == "cmp" for f in figures)
    phrases = figures[0]["understanding_by_phrase"]
    assert set(phrases) == {"by_kind", "by_form"} and phrases["by_kind"]
    recorded = sum(t["n"] for t in phrases["by_kind"].values())
    assert all(0.0 <= t["understood"] <= 1.0 for t in phrases["by_kind"].values()) and recorded >= 3
    for figure in figures:
        by_start = figure["by_start"]
        assert set(by_start) <= {"text", "similar-image", "other-style-image"}
        assert sum(entry["n"] for entry in by_start.values()) == 3
        for entry in by_start.values():
            assert set(entry) == BY_START_FIELDS | {"n", "success_by_turn", "ci95"}
            assert set(entry["ci95"]) == BY_START_FIELDS - {"n"}
            assert entry["sr_at_5"] is None and entry["ci95"]["sr_at_5"] is None  # T = 3 < 5
            lo, hi = entry["ci95"]["success_rate"]
            assert lo <= entry["success_rate"] <= hi

    text = (report / "report.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links == ["success_by_turn.png", "turns_histogram.png"]  # relative: the folder moves as a whole
    for link in links:
        with Image.open(report / link) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] >= 300
    for policy in ["eig", *BASELINES]:
        assert f"| {policy} |" in text
    used = {kind: entry["n"] for kind, entry in figures[0]["by_start"].items()}
    counts = ", ".join(f"{kind} {n}" for kind, n in used.items())
    assert (f"Openings: {counts} of {sum(used.values())} conversations "
            "(weights: other-style-image 0.4, similar-image 0.3, text 0.3)") in text
    assert "## Understanding by kind of phrase" in text and "| kind of phrase | turns | understood |" in text
    section = text.split("## By opening", 1)[1]
    kinds = list(figures[0]["by_start"])
    for policy in ["eig", *BASELINES]:
        assert all(f"| {policy} | {kind} |" in section for kind in kinds)

    # Without --json: the same run read back as a table, one row per policy.
    code, out, err = crs_eval(capsys, store, "--n", "3", "--max-turns", "3", "--compare", "--run-id", "cmp")
    assert code == 0, err
    lines = out.splitlines()
    assert "run cmp" in lines[0] and "SR@5" in lines[2] and "conv/s" in lines[2]
    policies_end = lines.index("", 4)
    assert [line.split()[0] for line in lines[4:policies_end]] == ["eig", *BASELINES]
    # Then the per-opening table: a row per policy and opening, in the JSON's order.
    assert lines[policies_end + 1].startswith("By opening.")
    table_end = lines.index("", policies_end + 3)
    header, rows = lines[policies_end + 3], lines[policies_end + 5:table_end]
    assert header.split()[:3] == ["policy", "opening", "n"] and "SR@10" in header and "understood" in header
    assert [row.split()[:3] for row in rows] == [[f["policy"], kind, str(entry["n"])]
                                                for f in figures for kind, entry in f["by_start"].items()]
    # Last, what the system understood of the default policy's users, worst first.
    assert lines[table_end + 1].startswith("What the system understood of the simulated user (eig)")
    assert lines[table_end + 2].split()[:3] == ["kind", "of", "phrase"]


def test_starts_choose_how_conversations_open(shapes_catalog, capsys) -> None:
    from sqlalchemy import select

    from crs.store.models import EvalConversation, EvalRun

    store, _ = shapes_catalog
    code, _, err = crs_eval(capsys, store, "--n", "6", "--max-turns", "2", "--starts", "text", "--run-id", "t")
    assert code == 0, err
    with store.session() as db:
        assert db.get(EvalRun, "t").config["starts"] == {"text": 1.0}
        assert set(db.scalars(select(EvalConversation.start).where(EvalConversation.run_id == "t"))) == {"text"}
    # The mix is part of the run's identity: resuming with another mix is refused.
    code, _, err = crs_eval(capsys, store, "--n", "6", "--max-turns", "2", "--run-id", "t")
    assert code == 1 and "starts.text: stored 1.0, now 0.3" in err


def test_a_catalog_without_pictures_opens_with_text_and_says_so(store, tmp_path: Path, capsys) -> None:
    """The films sample has no pictures: the default mix becomes text only, with a notice, and the
    run's identity and report name text openings alone; picture openings asked for are an error."""
    from crs.store.models import EvalRun
    from tests.text_catalogs import ingest_films

    ingest_films(store, tmp_path / "films", count=60)
    report = tmp_path / "report"
    films = ["--catalog", "films", "--n", "4", "--max-turns", "3"]
    code, out, err = crs_eval(capsys, store, *films, "--run-id", "f", "--report", str(report), "--by-start", "--json")
    assert code == 0, err
    assert "catalog 'films' has no pictures: every conversation opens with text" in err
    assert list(json.loads(out)["by_start"]) == ["text"]
    with store.session() as db:
        assert db.get(EvalRun, "f").config["starts"] == {"text": 1.0}
    text = (report / "report.md").read_text(encoding="utf-8")
    assert "Openings: text 4 of 4 conversations (weights: text 1)." in text
    assert "image" not in text.split("## Success rate by turn")[0].replace("![", "")
    # Resumed with the same options, the run is read back (its identity did not change).
    code, _, err = crs_eval(capsys, store, *films, "--run-id", "f")
    assert code == 0 and "is finished" in err

    code, out, err = crs_eval(capsys, store, *films, "--starts", "similar-image=1,text=1")
    assert code == 1 and out == "" and "Traceback" not in err
    assert "catalog 'films' has no pictures, so no conversation can open with similar-image" in err


@pytest.mark.parametrize("argv, message", [
    (["--simulator", "llm"], "the llm simulated user needs an LLM"),
    (["--policy", "clever"], "--policy clever: unknown policy"),
    (["--noise", "1.5"], "--noise is a probability"),
    (["--catalog", "nope"], "nope"),
    (["--starts", "video=1"], "--starts 'video=1': unknown start kind(s) video"),
    (["--starts", "text=lots"], "--starts 'text=lots': 'lots' is not a number"),
    (["--starts", "text=0"], "--starts 'text=0': start weights must be >= 0 and not all 0"),
])
def test_user_errors_are_one_line_and_status_1(shapes_catalog, capsys, argv: list[str], message: str) -> None:
    store, _ = shapes_catalog
    code, out, err = crs_eval(capsys, store, "--n", "2", *argv)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--n", "0"], "argument --n: must be between 1 and 100000, got 0"),
    (["--n", "1000000000"], "argument --n: must be between 1 and 100000, got 1000000000"),
    (["--max-turns", "100000"], "argument --max-turns: must be between 1 and 100, got 100000"),
    (["--workers", "0"], "argument --workers: must be between 1 and 64, got 0"),
    (["--workers", "5000"], "argument --workers: must be between 1 and 64, got 5000"),
    (["-k", "100000000"], "argument -k: must be between 1 and 1000, got 100000000"),
    (["-k", "ten"], "argument -k: must be a whole number, got 'ten'"),
])
def test_sizes_are_bounded_while_parsing(shapes_catalog, capsys, monkeypatch, argv: list[str], message: str) -> None:
    """A typo'd size is an argparse error (status 2) before the store is opened or a model loads."""
    store, _ = shapes_catalog
    monkeypatch.setattr("simulators.runner.evaluate", lambda *a, **k: pytest.fail("the run started"))
    with pytest.raises(SystemExit) as exited:
        main(["eval", "--catalog", "shapes", "--db", store.url, "--embedder", "fake", *argv])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and message in err and "Traceback" not in err


def test_crs_imports_no_simulator_until_eval_runs() -> None:
    """The layering (import-linter holds it statically, tests/test_layers.py): the core never imports
    the simulators; the command line reaches them only when `crs eval` runs (the profiles' names and
    descriptions, plain data, are its help text)."""
    code = ("import sys, crs.cli, crs.dialogue\n"
            "crs.cli.build_parser()\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('simulators'))\n"
            "assert loaded == ['simulators', 'simulators.profiles'], loaded\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_an_llm_user_run_is_deterministic_end_to_end_with_the_fake_backend(shapes_catalog, capsys,
                                                                          tmp_path: Path) -> None:
    """`--llm fake:SCRIPT.json` selects the scripted chat model like any backend, so the LLM user,
    the LLM parser and the LLM image reader run their real code paths with no model."""
    store, _ = shapes_catalog
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"by_prompt": ['{"require": {"shape": ["star"]}, "exclude": {}, "accept": false}',
                                                "I would like a red star, please.", "That one is it!"]}))
    figures = []
    for run in ("fake-llm-1", "fake-llm-2"):
        code, out, err = crs_eval(capsys, store, "--simulator", "llm", "--llm", f"fake:{script}", "--n", "3",
                                  "--max-turns", "3", "--policy", "always-recommend", "--json", "--run-id", run)
        assert code == 0, err
        assert err.count("LLM critique parser: llm:fake:") == 1  # the start-up check, said once
        result = json.loads(out)
        assert result["simulator"] == "llm" and result["n"] == 3
        figures.append({key: result[key] for key in ("success_rate", "avg_turns", "success_by_turn", "leak_rate")})
    assert figures[0] == figures[1]
    code, out, err = crs_eval(capsys, store, "--simulator", "llm", "--llm", f"fake:{script}", "--n", "3",
                              "--max-turns", "3", "--policy", "always-recommend", "--json", "--workers", "2")
    assert code == 0, err
    assert err.count("LLM critique parser: llm:fake:") == 1  # two worker processes, said once by the first
    assert {key: json.loads(out)[key] for key in figures[0]} == figures[0]
    code, _, err = crs_eval(capsys, store, "--simulator", "llm", "--llm", f"fake:{tmp_path / 'none.json'}", "--n", "1")
    assert code == 1 and "cannot read the script" in err


# -- how far the figures can be trusted: ci95 and --seeds (simulators/stats.py) ---------------------------

CI_FIELDS = ("success_rate", "avg_turns", "hdcg", "questions_per_conversation")
# random-ask with 2 turns fails some shapes conversations, so SR differs between seeds 0 and 1.
SMALL = ("--policy", "random-ask", "--n", "6", "--max-turns", "2")


def test_json_has_a_ci95_holding_each_figure_and_the_table_shows_it(shapes_catalog, capsys) -> None:
    store, _ = shapes_catalog
    code, out, err = crs_eval(capsys, store, *SMALL, "--seed", "1", "--run-id", "ci", "--json")
    assert code == 0, err
    figures = json.loads(out)
    assert set(figures["ci95"]) == set(CI_FIELDS)
    for name in CI_FIELDS:
        lo, hi = figures["ci95"][name]
        assert lo <= figures[name] <= hi, name
    assert figures["success_rate"] < 1 and figures["ci95"]["success_rate"][0] < figures["ci95"]["success_rate"][1]

    code, out, err = crs_eval(capsys, store, *SMALL, "--seed", "1", "--run-id", "ci")  # read back, as a table
    assert code == 0, err
    header, row = out.splitlines()[2], out.splitlines()[4]
    sr, (lo, hi) = figures["success_rate"], figures["ci95"]["success_rate"]
    turns, (tlo, thi) = figures["avg_turns"], figures["ci95"]["avg_turns"]
    assert "SR" in header and f"{sr:.3f} [{lo:.3f}, {hi:.3f}]" in row and f"{turns:.2f} [{tlo:.2f}, {thi:.2f}]" in row


def test_same_seed_same_figures_and_intervals(shapes_catalog, capsys) -> None:
    from simulators.runner import TIMING_FIELDS

    store, _ = shapes_catalog
    runs = []
    for run_id in ("same-1", "same-2"):
        code, out, err = crs_eval(capsys, store, *SMALL, "--seed", "1", "--run-id", run_id, "--json")
        assert code == 0, err
        runs.append({k: v for k, v in json.loads(out).items() if k not in (*TIMING_FIELDS, "run_id")})
    assert runs[0] == runs[1]


def test_seeds_run_once_per_seed_and_report_the_spread(shapes_catalog, capsys, tmp_path: Path) -> None:
    store, _ = shapes_catalog
    report = tmp_path / "seeds"
    code, out, err = crs_eval(capsys, store, *SMALL, "--seeds", "0,1", "--run-id", "s", "--json",
                              "--report", str(report))
    assert code == 0, err
    data = json.loads(out)
    assert set(data) == {"seeds", "runs", "seed_spread"} and data["seeds"] == [0, 1]
    assert [(r["seed"], r["run_id"]) for r in data["runs"]] == [(0, "s-seed0"), (1, "s-seed1")]
    assert all(set(r) == DESIGN_FIELDS | EXTRA_FIELDS for r in data["runs"])  # each seed: the single-run object
    spread = data["seed_spread"]
    assert (spread["policy"], spread["n_seeds"], spread["seeds"], spread["run_ids"]) == (
        "random-ask", 2, [0, 1], ["s-seed0", "s-seed1"])
    assert set(spread) == {"policy", "n_seeds", "seeds", "run_ids", "success_rate", "avg_turns", "hdcg"}

    # Each seed's figures equal a separate single-seed run's.
    singles = []
    for seed in (0, 1):
        code, out, err = crs_eval(capsys, store, *SMALL, "--seed", str(seed), "--run-id", f"one-{seed}", "--json")
        assert code == 0, err
        singles.append(json.loads(out))
    for name in ("success_rate", "avg_turns", "hdcg"):
        values = [single[name] for single in singles]
        assert [r[name] for r in data["runs"]] == values
        s = spread[name]
        assert s["values"] == values and s["n"] == 2
        assert s["mean"] == pytest.approx(sum(values) / 2) and (s["min"], s["max"]) == (min(values), max(values))
        assert s["sd"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
    assert singles[0]["success_rate"] != singles[1]["success_rate"]  # the seeds do differ here
    assert [r["ci95"] for r in data["runs"]] == [single["ci95"] for single in singles]

    # The report: the spread, each seed's table, and each seed's own report folder.
    text = (report / "report.md").read_text(encoding="utf-8")
    assert "SR mean ± sd" in text and "| random-ask | 2 |" in text and "(seed-1/report.md)" in text
    assert (report / "seed-0" / "report.md").is_file() and (report / "seed-1" / "success_by_turn.png").is_file()

    # The same line again reads both runs back; as a table: one per seed, then the spread.
    code, out, err = crs_eval(capsys, store, *SMALL, "--seeds", "0,1", "--run-id", "s")
    assert code == 0, err
    assert err.count("nothing was run") == 2
    assert "run s-seed0" in out and "run s-seed1" in out and "across 2 seeds (0, 1" in out
    last = out.splitlines()[-1].split()
    sr = spread["success_rate"]
    assert last[:2] == ["random-ask", "2"] and f"{sr['mean']:.3f}" == last[2] and f"{sr['sd']:.3f}" == last[4]


def test_seeds_with_compare_give_a_spread_per_policy(shapes_catalog, capsys) -> None:
    store, _ = shapes_catalog
    code, out, err = crs_eval(capsys, store, "--n", "2", "--max-turns", "2", "--compare", "--seeds", "3,4",
                              "--json")
    assert code == 0, err
    data = json.loads(out)
    assert [[f["policy"] for f in run] for run in data["runs"]] == [["eig", *BASELINES]] * 2
    assert [s["policy"] for s in data["seed_spread"]] == ["eig", *BASELINES]
    run_ids = data["seed_spread"][0]["run_ids"]
    assert run_ids[0].startswith("run-") and run_ids[0].endswith("-seed3")  # the default naming, per seed
    assert run_ids[1] == run_ids[0][:-1] + "4"


@pytest.mark.parametrize("seeds, message", [
    ("0,0", "a seed is repeated"),
    ("0,x", "must be whole numbers separated by commas"),
    (",", "must name at least one seed"),
])
def test_bad_seed_lists_are_argparse_errors(shapes_catalog, capsys, monkeypatch, seeds: str, message: str) -> None:
    store, _ = shapes_catalog
    monkeypatch.setattr("simulators.runner.evaluate", lambda *a, **k: pytest.fail("the run started"))
    with pytest.raises(SystemExit) as exited:
        main(["eval", "--catalog", "shapes", "--db", store.url, "--embedder", "fake", "--seeds", seeds])
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_seed_run_ids_too_long_fail_before_running(shapes_catalog, capsys) -> None:
    store, _ = shapes_catalog
    code, out, err = crs_eval(capsys, store, "--n", "1", "--seeds", "0,10", "--run-id", "r" * 94)
    assert code == 1 and out == "" and "pass 100 characters" in err and "running" not in err
