"""The films query benchmark (benchmarks/films_queries.py): its relevance predicates are sane on the
500-film sample, and it runs end to end through the dialogue manager."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from crs.cli import main
from crs.config import ASSETS_DIR
from tests.benchmark_support import load_benchmark

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "films_queries.py"
SAMPLE = ASSETS_DIR / "films-sample"


def load_script() -> ModuleType:
    return load_benchmark(SCRIPT)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script()


def test_ten_queries_of_the_issues_kinds(bench: ModuleType) -> None:
    assert len(bench.QUERIES) == 10
    kinds = [q.kind for q in bench.QUERIES]
    assert {k: kinds.count(k) for k in kinds} == {"genre + decade": 2, "director": 2, "actor": 2, "language": 2,
                                                   "rating": 2}


def test_every_query_has_at_least_five_relevant_films_in_the_sample(bench: ModuleType) -> None:
    films = bench.films_from_jsonl(SAMPLE / "items.jsonl")
    assert len(films) == 500
    for query in bench.QUERIES:
        relevant = [f for f in films if query.relevant(f)]
        assert len(relevant) >= 5, query.text
        assert len(relevant) < len(films) / 2, query.text  # a predicate that takes everything checks nothing


def test_predicates_on_films_everyone_knows(bench: ModuleType) -> None:
    films = {f.title: f for f in bench.films_from_jsonl(SAMPLE / "items.jsonl")}
    by_text = {q.text: q for q in bench.QUERIES}

    def relevant(text: str, title: str) -> bool:
        return by_text[text].relevant(films[title])

    assert relevant("a 90s crime drama", "Goodfellas") and not relevant("a 90s crime drama", "Taxi Driver")
    assert relevant("something directed by scorsese", "Taxi Driver")
    assert relevant("hitchcock thrillers", "Psycho") and not relevant("hitchcock thrillers", "Goodfellas")
    assert relevant("crime films with robert de niro", "Heat")
    assert not relevant("crime films with robert de niro", "The Deer Hunter")  # De Niro, but no crime
    assert relevant("an action movie starring harrison ford", "Raiders of the Lost Ark")
    assert relevant("a french film from the 60s", "Breathless")
    assert relevant("highly rated sci-fi from the 80s", "Aliens")
    assert not relevant("highly rated sci-fi from the 80s", "Star Wars: Episode IV – A New Hope")  # the 1970s


def test_the_store_and_the_file_give_the_same_films(bench: ModuleType, store) -> None:
    """The benchmark reads relevance from the store; the sample check above from items.jsonl."""
    from crs.catalog.demo import open_catalog

    assert main(["ingest", str(SAMPLE / "items.jsonl"), "--format", "jsonl", "--db", store.url]) == 0
    stored = bench.films_from_store(store, open_catalog(store, "films"))
    from_file = bench.films_from_jsonl(SAMPLE / "items.jsonl")
    for query in bench.QUERIES:
        assert bench.relevant_count(query, stored.values()) == bench.relevant_count(query, from_file), query.text


def test_answers_from_the_querys_intent(bench: ModuleType) -> None:
    crime = bench.QUERIES[0]  # a 90s crime drama
    assert bench.answer(crime, "decade", ["1980s", "1990s", "any"]) == "1990s"  # the offered option, clicked
    assert bench.answer(crime, "genres", ["drama", "crime", "war", "any"]) == "drama and crime"
    assert bench.answer(crime, "decade", ["1970s", "1980s", "any"]) == "1990s"  # not offered: typed
    assert bench.answer(crime, "country", ["united states", "france", "any"]) == "any"  # not named


@pytest.mark.slow
def test_runs_end_to_end_on_the_sample(bench: ModuleType, store, capsys) -> None:
    """Ingest + index the sample (text only), then three queries through DialogueManager.respond;
    ask-2 makes the system ask first, so the answering path runs too. No accuracy threshold."""
    assert main(["ingest", str(SAMPLE / "items.jsonl"), "--format", "jsonl", "--db", store.url]) == 0
    assert main(["index", "--db", store.url, "--catalog", "films"]) == 0
    capsys.readouterr()
    assert bench.main(["--db", store.url, "--only", "1,3,7", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["films"] == 500 and report["queries"] == 3
    assert [r["number"] for r in report["results"]] == [1, 3, 7]
    for result in report["results"]:
        assert result["recommended"] and len(result["shown"]) == 5
        assert result["relevant_in_top5"] == sum(s["relevant"] for s in result["shown"])
        assert result["passed"] == (result["relevant_in_top5"] >= 4)
        assert result["relevant_in_catalog"] >= 5
    assert report["passed"] == sum(r["passed"] for r in report["results"])

    report = bench.run("films", store.url, policy="ask-2", only=[7])
    (result,) = report["results"]
    assert len(result["questions"]) == 2 and result["recommended"]
    for question in result["questions"]:
        wanted = bench.QUERIES[6].wants.get(question["attribute"])
        assert question["answer"] == "any" if not wanted else question["answer"] != "any"
    assert "queries with >= 4/5 relevant: " in bench.format_report(report)
