"""Exact-intent accuracy of a critique parser on the hand-written paraphrase set.

    python benchmarks/understanding.py [--parser rules] [--llm SPEC] [--catalog demo|films|all]
                                       [--group NAME] [--misses] [--json]

The cases are ``tests/fixtures/understanding/{demo,films}.jsonl`` (format and annotation rules in
that folder's README). Each catalog is loaded into a throwaway SQLite store (the demo from
``assets/demo``, the films by ingesting ``assets/films-sample``), the parser named in the
``PARSERS`` registry is built once per catalog over its :class:`~crs.facts.CatalogFacts`, and
every message is parsed with the page it was written against (``shown``) and the question it
answers. A case counts only if every expected field equals the parser's Critique
(:func:`differences`); accuracy is printed per group and catalog, and overall.

No search index is built unless the parser factory actually touches the searcher it is given.
"""
from __future__ import annotations

import functools

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from crs.turn import Critique  # noqa: E402  (after the path is set, for `python benchmarks/...`)

FIXTURES = ROOT / "tests" / "fixtures" / "understanding"
CATALOGS = ("demo", "films")
GROUPS = ("colour", "style", "category", "genre", "negation", "numbers", "names", "and-or", "comparative",
          "reference", "vague", "typo", "answer", "accept", "reject")
EXPECT_KEYS = {"require", "all_of", "exclude", "ranges", "relative", "references", "accept", "reject_all",
               "dont_care"}
RANGE_TOLERANCE = 1.0  # "after 2000" may fairly be 2000 or 2001; "under 2 hours" 119 or 120


@dataclass(frozen=True)
class Case:
    id: str
    catalog: str
    group: str
    text: str
    expect: dict[str, Any]
    shown: tuple[str, ...] = ()
    question: dict[str, Any] | None = None


@dataclass
class Result:
    case: Case
    diffs: list[str]  # empty = exact intent
    critique: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.diffs


def load_cases(catalog: str = "all", folder: Path = FIXTURES) -> list[Case]:
    names = CATALOGS if catalog == "all" else (catalog,)
    cases = []
    for name in names:
        for line in (folder / f"{name}.jsonl").read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                cases.append(Case(row["id"], row["catalog"], row["group"], row["text"], row.get("expect", {}),
                                  tuple(row.get("shown", ())), row.get("question")))
    return cases


# -- the comparison --------------------------------------------------------------------------------

def _value_sets(values: Mapping[str, Iterable[str]] | None) -> dict[str, set[str]]:
    # An attribute with an empty list says nothing: the same as leaving it out.
    return {attribute: set(v) for attribute, v in (values or {}).items() if list(v)}


def _all_of(attributes: Iterable[str], require: dict[str, set[str]]) -> set[str]:
    # all_of only changes anything where two or more values are required.
    return {a for a in attributes if len(require.get(a, ())) >= 2}


def _ends_match(want: Sequence[float | None], got: Sequence[float | None]) -> bool:
    if len(want) != 2 or len(got) != 2:
        return False
    for w, g in zip(want, got):
        if (w is None) != (g is None):
            return False
        if w is not None and g is not None and abs(float(w) - float(g)) > RANGE_TOLERANCE:
            return False
    return True


def _sign(direction: float) -> int:
    return 1 if direction > 0 else -1 if direction < 0 else 0


def differences(expect: Mapping[str, Any], critique: Critique) -> list[str]:
    """What ``critique`` gets wrong against the annotated ``expect`` (empty list: exact intent).

    Value lists compare as sets; range ends within ±1; relatives as a set of (attribute,
    direction, reference); references on the set of indices, and on ``liked`` only where the
    expectation gives it; ``text`` and ``source`` are ignored. A key missing from ``expect``
    means empty / none / false."""
    unknown = set(expect) - EXPECT_KEYS
    if unknown:
        raise ValueError(f"unknown expect keys: {sorted(unknown)}")
    diffs = []
    want_require, got_require = _value_sets(expect.get("require")), _value_sets(critique.require)
    for key, want, got in (("require", want_require, got_require),
                           ("exclude", _value_sets(expect.get("exclude")), _value_sets(critique.exclude))):
        if want != got:
            diffs.append(f"{key}: expected {_show(want)}, got {_show(got)}")
    want_all, got_all = _all_of(expect.get("all_of", ()), want_require), _all_of(critique.all_of, got_require)
    if want_all != got_all:
        diffs.append(f"all_of: expected {sorted(want_all)}, got {sorted(got_all)}")
    want_ranges, got_ranges = expect.get("ranges") or {}, critique.ranges or {}
    if set(want_ranges) != set(got_ranges) or not all(_ends_match(want_ranges[a], got_ranges[a]) for a in want_ranges):
        diffs.append(f"ranges: expected {want_ranges}, got {got_ranges}")
    want_rel = {(r["attribute"], _sign(r["direction"]), r.get("reference")) for r in expect.get("relative", ())}
    got_rel = {(r.attribute, _sign(r.direction), r.reference) for r in critique.relative}
    if want_rel != got_rel:
        diffs.append(f"relative: expected {sorted(want_rel, key=str)}, got {sorted(got_rel, key=str)}")
    got_refs = {r.index: r.liked for r in critique.references}
    want_refs = expect.get("references", ())
    if {r["index"] for r in want_refs} != set(got_refs) or any(
            "liked" in r and got_refs.get(r["index"]) != r["liked"] for r in want_refs):
        diffs.append(f"references: expected {list(want_refs)}, "
                     f"got {[{'index': i, 'liked': liked} for i, liked in got_refs.items()]}")
    if expect.get("accept") != critique.accept:
        diffs.append(f"accept: expected {expect.get('accept')}, got {critique.accept}")
    if bool(expect.get("reject_all", False)) != bool(critique.reject_all):
        diffs.append(f"reject_all: expected {bool(expect.get('reject_all', False))}, got {critique.reject_all}")
    if set(expect.get("dont_care", ())) != set(critique.dont_care):
        diffs.append(f"dont_care: expected {sorted(expect.get('dont_care', ()))}, got {sorted(critique.dont_care)}")
    return diffs


def _show(values: dict[str, set[str]]) -> str:
    return json.dumps({a: sorted(v) for a, v in sorted(values.items())}, ensure_ascii=False)


# -- running a parser -----------------------------------------------------------------------------

class _LazySearcher:
    """Opens the catalog's search index only if the parser factory uses it (building one takes
    minutes on the demo, and the offline parsers never need it)."""

    def __init__(self, store: Any, catalog: Any) -> None:
        self._store, self._catalog, self._searcher = store, catalog, None

    @property
    def embedder(self) -> Any:
        """The catalog's encoders without its index: all a parser reads of the searcher (the
        offline parser grounds words with the text encoder)."""
        from retrieval.embedder import DEFAULT_EMBEDDER, load_embedder

        if self._searcher is not None:
            return self._searcher.embedder
        return _embedder(DEFAULT_EMBEDDER, load_embedder)

    def __getattr__(self, name: str) -> Any:
        if self._searcher is None:
            from crs.search import CatalogSearch

            self._searcher = CatalogSearch.open(self._store, self._catalog)
        return getattr(self._searcher, name)


@functools.cache
def _embedder(spec: str, load: Any) -> Any:
    return load(spec)


def open_catalog(store: Any, name: str) -> Any:
    """The named catalog loaded into ``store``: the bundled demo, or the committed films sample."""
    from crs.catalog.demo import open_catalog as open_named
    from crs.catalog.ingest import IngestOptions, ingest
    from crs.config import ASSETS_DIR

    if name == "films":
        ingest(store, ASSETS_DIR / "films-sample" / "items.jsonl", IngestOptions(format="jsonl", fetch_images=False))
    elif name != "demo":  # the demo is loaded by open_named on first use
        raise ValueError(f"unknown benchmark catalog {name!r}; choose one of {', '.join(CATALOGS)}")
    return open_named(store, name)


def store_items(store: Any, catalog: Any) -> dict[str, tuple[int, str]]:
    """The catalog's external id -> (store id, title)."""
    from sqlalchemy import select

    from crs.store.models import Item

    with store.session() as session:
        rows = session.execute(select(Item.external_id, Item.id, Item.title).where(Item.catalog_id == catalog.id))
        return {external: (item_id, title) for external, item_id, title in rows}


def run_catalog(cases: Sequence[Case], catalog_name: str, store: Any, *, parser_spec: str = "rules",
                llm: str | None = None) -> list[Result]:
    from crs.facts import CatalogFacts
    from crs.turn import Question
    from crs.understanding import PARSERS
    from crs.understanding.parser import ParseContext, ShownItem

    catalog = open_catalog(store, catalog_name)
    facts = CatalogFacts.load(store, catalog)
    items = store_items(store, catalog)
    parser = PARSERS.create(parser_spec, facts=facts, searcher=_LazySearcher(store, catalog), llm=llm)
    results = []
    for case in cases:
        page = [items[external] for external in case.shown]  # KeyError: a fixture names a missing item
        values = facts.values_of([item_id for item_id, _ in page])
        shown = [ShownItem(item_id, title, v) for (item_id, title), v in zip(page, values)]
        question = Question(case.question["attribute"], list(case.question["options"])) if case.question else None
        critique = parser.parse(case.text, ParseContext(facts=facts, shown=shown, question=question))
        results.append(Result(case, differences(case.expect, critique), critique.to_json()))
    return results


def run(cases: Sequence[Case], *, parser_spec: str = "rules", llm: str | None = None,
        workdir: Path | None = None) -> list[Result]:
    """Parse every case with the named parser, each catalog in its own throwaway store."""
    from crs.store import open_store

    results: list[Result] = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for name in CATALOGS:
            mine = [c for c in cases if c.catalog == name]
            if mine:
                store = open_store(f"sqlite:///{Path(tmp) / f'{name}.db'}")
                results += run_catalog(mine, name, store, parser_spec=parser_spec, llm=llm)
    return results


# -- reporting ------------------------------------------------------------------------------------

def summarise(results: Sequence[Result]) -> dict[str, Any]:
    """{"overall": {hits, n, accuracy}, "catalogs": {name: ...}, "groups": {group: {catalog|all: ...}}}."""
    def score(rows: Sequence[Result]) -> dict[str, Any]:
        hits = sum(r.ok for r in rows)
        return {"hits": hits, "n": len(rows), "accuracy": round(hits / len(rows), 4) if rows else None}

    catalogs = sorted({r.case.catalog for r in results}, key=CATALOGS.index)
    groups = [g for g in GROUPS if any(r.case.group == g for r in results)]
    return {
        "overall": score(results),
        "catalogs": {c: score([r for r in results if r.case.catalog == c]) for c in catalogs},
        "groups": {g: {**{c: score([r for r in results if r.case.group == g and r.case.catalog == c])
                          for c in catalogs},
                       "all": score([r for r in results if r.case.group == g])} for g in groups},
    }


def format_table(summary: dict[str, Any]) -> str:
    catalogs = list(summary["catalogs"])
    columns = [*catalogs, "all"]

    def cell(s: dict[str, Any]) -> str:
        return f"{s['hits']:>3}/{s['n']:<3} {s['accuracy']:6.1%}" if s["n"] else f"{'-':>15}"

    lines = [f"{'group':<12} " + " ".join(f"{c:>15}" for c in columns)]
    for group, row in summary["groups"].items():
        lines.append(f"{group:<12} " + " ".join(cell(row[c]) for c in columns))
    totals = {**summary["catalogs"], "all": summary["overall"]}
    lines.append(f"{'overall':<12} " + " ".join(cell(totals[c]) for c in columns))
    return "\n".join(lines)


def format_misses(results: Sequence[Result]) -> str:
    lines = []
    for r in results:
        if not r.ok:
            lines.append(f"{r.case.id}: {r.case.text!r}")
            lines += [f"    {d}" for d in r.diffs]
    return "\n".join(lines) or "no misses"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parser", default="rules", help="a PARSERS spec (default: rules)")
    parser.add_argument("--llm", default=None, help="LLM spec for LLM-backed parsers (e.g. ollama:qwen2.5:7b)")
    parser.add_argument("--catalog", default="all", choices=[*CATALOGS, "all"])
    parser.add_argument("--group", default=None, choices=GROUPS, help="only this group")
    parser.add_argument("--misses", action="store_true", help="list every miss with what differed")
    parser.add_argument("--json", action="store_true", help="print the summary (and misses) as JSON")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES,
                        help="folder holding demo.jsonl and films.jsonl (default: the paraphrase set)")
    args = parser.parse_args(argv)
    cases = [c for c in load_cases(args.catalog, args.fixtures) if args.group is None or c.group == args.group]
    started = time.perf_counter()
    results = run(cases, parser_spec=args.parser, llm=args.llm)
    summary = summarise(results)
    summary.update(parser=args.parser, llm=args.llm, seconds=round(time.perf_counter() - started, 1))
    if args.json:
        if args.misses:
            summary["misses"] = [{"id": r.case.id, "text": r.case.text, "diffs": r.diffs, "critique": r.critique}
                                 for r in results if not r.ok]
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return 0
    print(f"parser {args.parser}" + (f" (llm {args.llm})" if args.llm else "") + f", {len(results)} messages, "
          f"{summary['seconds']} s")
    print(format_table(summary))
    if args.misses:
        print()
        print(format_misses(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
