"""Ten film requests as people type them, checked against the films catalog's own attributes (issue 15).

    CRS_HOME=/tmp/films-home python benchmarks/films_queries.py [--catalog films] [--db URL]
        [--policy eig] [--only 1,3] [--max-turns 6] [--json]

Each query ("a 90s crime drama", "something directed by scorsese", ...) goes to the real dialogue
manager (``DialogueManager.respond``, offline stages, the settings' policy) in a new session. The
first recommendation is the first reply whose action is "recommend". When the system asks a
question first, the person answers it from the query's own intent if the question's attribute is
one the query names (the offered options that fit, as a click sends them; the wanted values typed
when none is offered), and with "any" otherwise. Each question is counted.

A query passes when at least 4 of the first 5 films shown are relevant. Relevance is a predicate
on the catalog's own attribute values as stored (genres, decade, director, cast, language,
country, rotten_tomatoes, all lower case), written from what the words mean and never from the
parser: a "crime drama" is a film tagged both crime and drama, "a french film" one in French or
from France, "highly rated" 80% or more on Rotten Tomatoes.

The store: ``--db URL``, else SQLite under ``$CRS_HOME``; the catalog must be ingested and indexed
there (``crs ingest ... && crs index --catalog films``). The sessions stay in that store, as a
chat's do.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PASS_AT = 4  # relevant films among the first 5 shown
PAGE = 5
ANY = "any"


# -- the catalog's own attributes --------------------------------------------------------------------

@dataclass(frozen=True)
class Film:
    """One film as the catalog stores it: tag and categorical values (lower case) and numbers."""

    item_id: int  # store id (0 for rows read from a file)
    title: str
    values: dict[str, frozenset[str]]
    numbers: dict[str, float]

    def has(self, attribute: str, *wanted: str) -> bool:
        return bool(self.values.get(attribute, frozenset()) & set(wanted))

    def number(self, attribute: str) -> float | None:
        return self.numbers.get(attribute)


def _norm(value: str) -> str:
    return " ".join(str(value).split()).lower()


def film_from_attributes(item_id: int, title: str, attributes: dict[str, Any]) -> Film:
    """A film from an item's ``attributes`` as written in items.jsonl (the sample's file)."""
    values: dict[str, frozenset[str]] = {}
    numbers: dict[str, float] = {}
    for name, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers[name] = float(value)
        else:
            values[name] = frozenset(_norm(v) for v in (value if isinstance(value, list) else [value]))
    return Film(item_id, title, values, numbers)


def films_from_jsonl(path: Path) -> list[Film]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [film_from_attributes(0, row["title"], row.get("attributes") or {}) for row in rows]


def films_from_store(store: Any, catalog: Any) -> dict[int, Film]:
    """Every film of ``catalog`` with its values as stored, by store id (one query, no parser)."""
    from sqlalchemy import select

    from crs.store.models import Attribute, Item, ItemValue

    values: dict[int, dict[str, set[str]]] = {}
    numbers: dict[int, dict[str, float]] = {}
    with store.session() as db:
        titles = dict(db.execute(select(Item.id, Item.title).where(Item.catalog_id == catalog.id)).all())
        rows = db.execute(select(ItemValue.item_id, Attribute.name, ItemValue.value, ItemValue.number)
                          .join(Attribute, Attribute.id == ItemValue.attribute_id)
                          .where(Attribute.catalog_id == catalog.id))
        for item_id, name, value, number in rows:
            if number is not None:
                numbers.setdefault(item_id, {})[name] = float(number)
            elif value is not None:
                values.setdefault(item_id, {}).setdefault(name, set()).add(_norm(value))
    return {i: Film(i, title, {a: frozenset(v) for a, v in values.get(i, {}).items()}, numbers.get(i, {}))
            for i, title in titles.items()}


# -- the queries ---------------------------------------------------------------------------------------

Predicate = Callable[[Film], bool]


def tagged(attribute: str, *values: str) -> Predicate:
    """Has any of ``values`` for ``attribute``."""
    return lambda film: film.has(attribute, *values)


def at_least(attribute: str, low: float) -> Predicate:
    return lambda film: (film.number(attribute) or float("-inf")) >= low


def all_of(*predicates: Predicate) -> Predicate:
    return lambda film: all(p(film) for p in predicates)


def any_of(*predicates: Predicate) -> Predicate:
    return lambda film: any(p(film) for p in predicates)


@dataclass(frozen=True)
class FilmQuery:
    text: str  # as a person types it
    kind: str  # which of the kinds: genre + decade, director, actor, language, rating
    relevant: Predicate
    # What the person wants, by attribute, to answer a question on it: catalog values (clicked when
    # offered) or words typed when none is (a number).
    wants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    meaning: str = ""  # the predicate in words, for the report


QUERIES: tuple[FilmQuery, ...] = (
    FilmQuery("a 90s crime drama", "genre + decade",
              all_of(tagged("genres", "crime"), tagged("genres", "drama"), tagged("decade", "1990s")),
              {"genres": ("crime", "drama"), "decade": ("1990s",)}, "genres crime and drama, decade 1990s"),
    FilmQuery("a horror movie from the 70s", "genre + decade",
              all_of(tagged("genres", "horror"), tagged("decade", "1970s")),
              {"genres": ("horror",), "decade": ("1970s",)}, "genres horror, decade 1970s"),
    FilmQuery("something directed by scorsese", "director",
              tagged("director", "martin scorsese"),
              {"director": ("martin scorsese",)}, "director Martin Scorsese"),
    FilmQuery("hitchcock thrillers", "director",
              all_of(tagged("director", "alfred hitchcock"), tagged("genres", "thriller")),
              {"director": ("alfred hitchcock",), "genres": ("thriller",)},
              "director Alfred Hitchcock, genres thriller"),
    FilmQuery("crime films with robert de niro", "actor",
              all_of(tagged("cast", "robert de niro"), tagged("genres", "crime")),
              {"cast": ("robert de niro",), "genres": ("crime",)}, "cast Robert De Niro, genres crime"),
    FilmQuery("an action movie starring harrison ford", "actor",
              all_of(tagged("cast", "harrison ford"), tagged("genres", "action")),
              {"cast": ("harrison ford",), "genres": ("action",)}, "cast Harrison Ford, genres action"),
    FilmQuery("a french film from the 60s", "language",
              all_of(any_of(tagged("language", "french"), tagged("country", "france")), tagged("decade", "1960s")),
              {"language": ("french",), "country": ("france",), "decade": ("1960s",)},
              "language French or country France, decade 1960s"),
    FilmQuery("japanese movies", "language",
              any_of(tagged("language", "japanese"), tagged("country", "japan")),
              {"language": ("japanese",), "country": ("japan",)}, "language Japanese or country Japan"),
    FilmQuery("highly rated sci-fi from the 80s", "rating",
              all_of(tagged("genres", "sci-fi"), tagged("decade", "1980s"), at_least("rotten_tomatoes", 80)),
              {"genres": ("sci-fi",), "decade": ("1980s",), "rotten_tomatoes": ("80% or more",)},
              "genres sci-fi, decade 1980s, Rotten Tomatoes >= 80"),
    FilmQuery("comedies with over 90% on rotten tomatoes", "rating",
              all_of(tagged("genres", "comedy"), at_least("rotten_tomatoes", 90)),
              {"genres": ("comedy",), "rotten_tomatoes": ("over 90%",)}, "genres comedy, Rotten Tomatoes >= 90"),
)


def relevant_count(query: FilmQuery, films: Iterable[Film]) -> int:
    return sum(1 for film in films if query.relevant(film))


def answer(query: FilmQuery, attribute: str, options: Sequence[str]) -> str:
    """What the person says to a question on ``attribute``: the offered options they want (as a
    click sends them), else the values they want in words, else "any" (an attribute the query
    does not name)."""
    wanted = query.wants.get(attribute)
    if not wanted:
        return ANY
    offered = [o for o in options if o != ANY and _norm(o) in wanted]
    return " and ".join(offered or wanted)


# -- running them ----------------------------------------------------------------------------------------

@dataclass
class QueryResult:
    number: int  # 1-based, as --only takes it
    text: str
    kind: str
    meaning: str
    relevant_in_catalog: int
    relevant_in_top5: int
    passed: bool
    questions: list[dict[str, Any]]  # {attribute, options, answer}
    recommended: bool
    shown: list[dict[str, Any]]  # {title, relevant}
    understood: dict[str, Any]  # the first turn's critique, as stored (diagnosis only)
    seconds: float


def run_query(dm: Any, films: dict[int, Film], query: FilmQuery, number: int, *, max_turns: int = 6,
              relevant_in_catalog: int = 0) -> QueryResult:
    from crs.turn import Message

    started = time.perf_counter()
    session = dm.start({"client": "benchmarks/films_queries.py"})
    reply = dm.respond(session, Message(text=query.text))
    questions: list[dict[str, Any]] = []
    turns = 1
    while reply.action == "ask" and reply.question is not None and turns < max_turns:
        said = answer(query, reply.question.attribute, reply.question.options)
        questions.append({"attribute": reply.question.attribute, "options": list(reply.question.options),
                          "answer": said})
        reply = dm.respond(session, Message(text=said))
        turns += 1
    recommended = reply.action == "recommend"
    shown = [{"title": item.title, "relevant": item.item_id in films and query.relevant(films[item.item_id])}
             for item in (reply.items[:PAGE] if recommended else [])]
    hits = sum(s["relevant"] for s in shown)
    history = dm.history(session)
    understood = (history[0].get("understanding") or {}).get("critique") or {} if history else {}
    understood = {k: v for k, v in understood.items() if v not in ({}, [], "", None, False)}
    return QueryResult(number, query.text, query.kind, query.meaning, relevant_in_catalog, hits, hits >= PASS_AT,
                       questions, recommended, shown, understood, time.perf_counter() - started)


def open_system(catalog: str, db_url: str | None, policy: str) -> tuple[Any, dict[int, Film]]:
    """The dialogue manager over ``catalog`` with offline stages, and the catalog's films."""
    from crs import assemble
    from crs.settings import Settings

    settings = Settings(db_url=db_url, catalog=catalog, policy=policy, llm=None, parser="offline", reader="offline")
    store = assemble.open_settings_store(settings)
    cat = assemble.open_settings_catalog(store, settings)
    searcher = assemble.open_searcher(store, cat, settings)
    dm = assemble.build_dialogue_manager(store, searcher, settings)
    return dm, films_from_store(store, cat)


def run(catalog: str = "films", db_url: str | None = None, *, policy: str = "eig", only: Sequence[int] = (),
        max_turns: int = 6, queries: Sequence[FilmQuery] = QUERIES) -> dict[str, Any]:
    started = time.perf_counter()
    dm, films = open_system(catalog, db_url, policy)
    loaded = time.perf_counter() - started
    chosen = [(n, q) for n, q in enumerate(queries, 1) if not only or n in only]
    results = [run_query(dm, films, q, n, max_turns=max_turns, relevant_in_catalog=relevant_count(q, films.values()))
               for n, q in chosen]
    return {"catalog": catalog, "films": len(films), "policy": policy, "queries": len(results),
            "passed": sum(r.passed for r in results), "pass_at": PASS_AT,
            "questions": sum(len(r.questions) for r in results), "load_seconds": round(loaded, 1),
            "results": [asdict(r) for r in results]}


def format_report(report: dict[str, Any]) -> str:
    lines = [f"catalog {report['catalog']!r} ({report['films']} films), policy {report['policy']}",
             f"{'#':>2}  {'query':44} {'top 5':>5}  {'asked':>5}  {'in catalog':>10}  pass"]
    for r in report["results"]:
        top = f"{r['relevant_in_top5']}/5" if r["recommended"] else "none"
        lines.append(f"{r['number']:>2}  {r['text']:44} {top:>5}  {len(r['questions']):>5}  "
                     f"{r['relevant_in_catalog']:>10}  {'yes' if r['passed'] else 'NO'}")
    lines.append(f"queries with >= {report['pass_at']}/5 relevant: {report['passed']} of {report['queries']}; "
                 f"questions asked: {report['questions']}")
    for r in report["results"]:
        if r["passed"]:
            continue
        asked = "; ".join(f"{q['attribute']} -> {q['answer']!r}" for q in r["questions"]) or "none"
        lines.append(f"\n#{r['number']} {r['text']!r} (relevant: {r['meaning']})")
        lines.append(f"  understood: {json.dumps(r['understood'])}")
        lines.append(f"  questions: {asked}")
        lines.extend(f"  {'+' if s['relevant'] else '-'} {s['title']}" for s in r["shown"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", default="films", help="catalog name (default films)")
    parser.add_argument("--db", default=None, help="SQLAlchemy database URL (default: SQLite under $CRS_HOME)")
    parser.add_argument("--policy", default="eig", help="the dialogue policy (default eig)")
    parser.add_argument("--only", default="", help="comma-separated query numbers (1-based) to run, e.g. 1,3")
    parser.add_argument("--max-turns", type=int, default=6,
                        help="turns before giving up on a first recommendation (default 6)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    only = [int(n) for n in args.only.split(",") if n.strip()]
    if any(not 1 <= n <= len(QUERIES) for n in only):
        parser.error(f"--only: query numbers are 1..{len(QUERIES)}")
    from crs.errors import UserError

    try:
        report = run(args.catalog, args.db, policy=args.policy, only=only, max_turns=args.max_turns)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
