"""The critique-understanding yardstick: its hand-written fixtures are valid against the catalogs'
data, its exact-intent comparison is right, and the benchmark runs end to end (no accuracy asserted)."""
from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from crs.catalog.formats import catalog_bytes
from crs.catalog.schema import normalise_value
from crs.config import ASSETS_DIR
from crs.turn import Critique, Reference, Relative
from tests.benchmark_support import load_benchmark

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "understanding.py"
DATA = {"demo": (ASSETS_DIR / "demo" / "catalog.jsonl.gz", ASSETS_DIR / "demo" / "schema.json"),
        "films": (ASSETS_DIR / "films-sample" / "items.jsonl", ASSETS_DIR / "films-sample" / "schema.json")}


def load_script() -> ModuleType:
    return load_benchmark(SCRIPT)


bench = load_script()


@cache
def vocabulary(catalog: str) -> tuple[dict[str, str], dict[str, set[str]], set[str]]:
    """(attribute -> kind, attribute -> values, item ids) read from the catalog's own files."""
    items_file, schema_file = DATA[catalog]
    schema = json.loads(schema_file.read_text())
    kinds = {a["name"]: a["kind"] for a in schema["attributes"]}
    values: dict[str, set[str]] = {a["name"]: set(a.get("values", [])) for a in schema["attributes"]}
    ids = set()
    for line in catalog_bytes(items_file).decode().splitlines():
        row = json.loads(line)
        ids.add(row["id"])
        for name, value in row["attributes"].items():
            if kinds.get(name) in ("categorical", "tags"):
                values[name] |= {normalise_value(v) for v in (value if isinstance(value, list) else [value])}
    return kinds, values, ids


def fixture_problems(case: Any) -> list[str]:
    kinds, values, ids = vocabulary(case.catalog)
    expect, problems = case.expect, []
    shown = len(case.shown)
    problems += [f"unknown item {i}" for i in case.shown if i not in ids]
    if case.group not in bench.GROUPS:
        problems.append(f"unknown group {case.group}")
    if set(expect) - bench.EXPECT_KEYS:
        problems.append(f"unknown expect keys {set(expect) - bench.EXPECT_KEYS}")
    for key in ("require", "exclude"):
        for attribute, wanted in expect.get(key, {}).items():
            if kinds.get(attribute) not in ("categorical", "tags"):
                problems.append(f"{key}: {attribute} is not a categorical or tags attribute")
            elif not wanted or set(wanted) - values[attribute]:
                problems.append(f"{key}: {attribute} has no value {set(wanted) - values[attribute] or wanted}")
    for attribute in expect.get("all_of", []):
        if kinds.get(attribute) != "tags" or len(expect.get("require", {}).get(attribute, [])) < 2:
            problems.append(f"all_of: {attribute} is not a tags attribute with two required values")
    for attribute, ends in expect.get("ranges", {}).items():
        if kinds.get(attribute) != "numeric" or len(ends) != 2 or ends == [None, None]:
            problems.append(f"ranges: bad {attribute} {ends}")
        elif None not in ends and ends[0] > ends[1]:
            problems.append(f"ranges: {attribute} low end above high end")
    for relative in expect.get("relative", []):
        if kinds.get(relative["attribute"]) != "numeric" or relative["direction"] not in (1, -1):
            problems.append(f"relative: bad {relative}")
        reference = relative.get("reference")
        if not shown or (reference is not None and not 0 <= reference < shown):
            problems.append(f"relative: reference {reference} with {shown} shown")
    indices = [r["index"] for r in expect.get("references", [])]
    if any(not 0 <= i < shown for i in indices) or len(set(indices)) != len(indices):
        problems.append(f"references {indices} with {shown} shown")
    if "accept" in expect and not 0 <= expect["accept"] < shown:
        problems.append(f"accept {expect['accept']} with {shown} shown")
    if expect.get("reject_all") and not shown:
        problems.append("reject_all without a page")
    question = case.question
    if question is not None:
        attribute = question["attribute"]
        if attribute not in values or set(question["options"]) - values[attribute] - {"any"}:
            problems.append(f"question: bad {question}")
    for attribute in expect.get("dont_care", []):
        if question is None or attribute != question["attribute"]:
            problems.append(f"dont_care: {attribute} was not asked")
    return problems


def test_fixtures_are_valid_against_the_catalogs() -> None:
    cases = bench.load_cases()
    problems = {c.id: p for c in cases if (p := fixture_problems(c))}
    assert not problems
    assert len(cases) >= 300
    assert len({c.id for c in cases}) == len(cases)
    assert all(c.id.startswith(f"{c.catalog}-{c.group}-") for c in cases)
    for catalog in bench.CATALOGS:
        assert sum(c.catalog == catalog for c in cases) >= 150
    groups = Counter(c.group for c in cases)
    assert set(groups) == set(bench.GROUPS) and min(groups.values()) >= 12, groups


def test_heldout_fixtures_are_valid_against_the_catalogs() -> None:
    # The held-out set (written independently, never tuned on): same validity rules, smaller size.
    cases = bench.load_cases("all", bench.FIXTURES / "heldout")
    problems = {c.id: p for c in cases if (p := fixture_problems(c))}
    assert not problems
    assert len({c.id for c in cases}) == len(cases)
    assert all(c.id.startswith(f"heldout-{c.catalog}-{c.group}-") for c in cases)
    for catalog in bench.CATALOGS:
        assert sum(c.catalog == catalog for c in cases) >= 60
    assert set(Counter(c.group for c in cases)) == set(bench.GROUPS)


# -- the comparison --------------------------------------------------------------------------------

def test_matching_critiques_have_no_differences() -> None:
    expect = {"require": {"genres": ["sci-fi", "comedy"]}, "all_of": ["genres"],
              "ranges": {"year": [2001, None]}, "relative": [{"attribute": "runtime_minutes", "direction": -1,
                                                             "reference": None}]}
    critique = Critique(require={"genres": ["comedy", "sci-fi"]}, all_of=["genres"], ranges={"year": [2000, None]},
                        relative=[Relative("runtime_minutes", -1)], text="something fun", source="llm")
    assert bench.differences(expect, critique) == []
    # Empty lists and all_of over a single value say nothing.
    assert bench.differences({"require": {"decade": ["1990s"]}},
                             Critique(require={"decade": ["1990s"], "genres": []}, all_of=["decade"])) == []
    assert bench.differences({}, Critique(text="something cuter")) == []


@pytest.mark.parametrize("critique, fields", [
    # one of two values (so all_of, which needs two, is lost as well)
    (Critique(require={"genres": ["comedy"]}, all_of=["genres"]), ["require", "all_of"]),
    (Critique(require={"genres": ["comedy", "sci-fi"]}), ["all_of"]),  # either, not both
    (Critique(require={"genres": ["comedy", "sci-fi"]}, all_of=["genres"], exclude={"genres": ["horror"]}),
     ["exclude"]),
    (Critique(require={"genres": ["comedy", "sci-fi"]}, all_of=["genres"], dont_care=["decade"]), ["dont_care"]),
])
def test_value_fields_must_match_as_sets(critique: Critique, fields: list[str]) -> None:
    diffs = bench.differences({"require": {"genres": ["sci-fi", "comedy"]}, "all_of": ["genres"]}, critique)
    assert [d.split(":")[0] for d in diffs] == fields


@pytest.mark.parametrize("got, ok", [
    ({"runtime_minutes": [None, 120]}, True), ({"runtime_minutes": [None, 119]}, True),
    ({"runtime_minutes": [None, 121]}, True), ({"runtime_minutes": [None, 122]}, False),
    ({"runtime_minutes": [0, 120]}, False),  # a closed end where the expectation has none
    ({"runtime_minutes": [None, 120], "year": [2000, None]}, False), ({}, False),
])
def test_range_ends_are_within_one(got: dict, ok: bool) -> None:
    assert (bench.differences({"ranges": {"runtime_minutes": [None, 120]}}, Critique(ranges=got)) == []) is ok


def test_references_are_checked_on_index_and_given_likes() -> None:
    expect = {"references": [{"index": 1}, {"index": 2, "liked": False}]}
    assert bench.differences(expect, Critique(references=[Reference(1, True), Reference(2, False)])) == []
    assert bench.differences(expect, Critique(references=[Reference(1, None), Reference(2, False)])) == []
    assert bench.differences(expect, Critique(references=[Reference(1), Reference(2, True)]))  # liked wrong
    assert bench.differences(expect, Critique(references=[Reference(2, False)]))  # one missing
    assert bench.differences(expect, Critique(references=[Reference(0), Reference(1), Reference(2, False)]))


def test_relative_accept_and_reject() -> None:
    expect = {"relative": [{"attribute": "year", "direction": 1, "reference": 3}]}
    assert bench.differences(expect, Critique(relative=[Relative("year", 1, 3)])) == []
    assert bench.differences(expect, Critique(relative=[Relative("year", 1)]))  # compared with the first instead
    assert bench.differences(expect, Critique(relative=[Relative("year", -1, 3)]))
    assert bench.differences({"accept": 1}, Critique(accept=1)) == []
    assert bench.differences({"accept": 1}, Critique(accept=0))
    assert bench.differences({}, Critique(accept=0))
    assert bench.differences({"reject_all": True}, Critique(reject_all=True)) == []
    assert bench.differences({}, Critique(reject_all=True))
    with pytest.raises(ValueError, match="unknown expect keys"):
        bench.differences({"requires": {}}, Critique())


# -- end to end -----------------------------------------------------------------------------------

def test_benchmark_runs_end_to_end_with_the_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--catalog", "films", "--group", "reference", "--misses", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    n = sum(c.group == "reference" for c in bench.load_cases("films"))
    assert report["overall"]["n"] == n and report["catalogs"]["films"]["n"] == n
    assert set(report["groups"]) == {"reference"} and report["parser"] == "rules"
    assert len(report["misses"]) == n - report["overall"]["hits"]
    summary = bench.summarise([bench.Result(c, []) for c in bench.load_cases()[:3]])
    assert "overall" in bench.format_table(summary)
