"""The films catalog: `crs catalog build-movies`, its schema (labels, display names) and the committed sample.

The builder runs on a tiny movies database made here with the same two tables as
`bokeh_sampledata`'s movies.db, so these tests need no optional package.
"""
from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from crs.catalog.schema import CatalogSchema, SchemaError, load_schema, parse_schema
from crs.cli import main
from crs.config import ASSETS_DIR, DEMO_DIR
from demo_build import movies

SAMPLE = ASSETS_DIR / "films-sample"

_OMDB = ('CREATE TABLE "omdb" ("ID" INTEGER, "imdbID" TEXT, "Title" TEXT, "Year" INTEGER, "Rating" TEXT, '
         '"Runtime" REAL, "Genre" TEXT, "Released" TEXT, "Director" TEXT, "Writer" TEXT, "Cast" TEXT, '
         '"Metacritic" INTEGER, "imdbRating" REAL, "imdbVotes" INTEGER, "Language" TEXT, "Country" TEXT, '
         '"Awards" TEXT, "lastUpdated" TEXT, "Oscars" INTEGER)')
_TOMATOES = ('CREATE TABLE "tomatoes" ("ID" INTEGER, "Image" TEXT, "Rating" REAL, "Meter" INTEGER, '
             '"Reviews" INTEGER, "Fresh" INTEGER, "Rotten" INTEGER, "Consensus" TEXT, "userMeter" INTEGER, '
             '"userRating" REAL, "userReviews" INTEGER, "DVD" TEXT, "BoxOffice" REAL, "Production" TEXT, '
             '"Website" TEXT, "lastUpdated" TEXT)')
# (ID, Title, Year, MPAA, Runtime, Genre, Director, Cast, Metacritic, Language, Country, Awards, Oscars,
#  tomato Rating, Meter, Reviews)
FILMS = [
    (1, "Pulp Fiction", 1994, "R", 154.0, "Crime, Drama", "Quentin Tarantino",
     "Bruce Willis, John Travolta, Samuel L. Jackson, Uma Thurman", 94, "English", "United States",
     "Won 1 Oscar. Nominated for 7 Oscars.", 1, 8.9, 92, 104),
    (2, "Sleepless in Seattle", 1993, None, 105.0, "Romance, Comedy", "Nora Ephron",
     "Meg Ryan, Samuel L. Jackson, Tom Hanks", 72, "English", "United States", "Nominated for 2 Oscars.", 0,
     6.8, 74, 70),
    (3, "Machuca", 2004, None, 1.0, "Drama", "Andrés Wood", "Matías Quer", None, "Spanish",
     "Chile, Spain, United Kingdom", None, 0, 7.4, 95, 40),
    (4, "Kiss Kiss Bang Bang", 2005, None, 103.0, "Comedy, Crime, Mystery", "Shane Black",
     "Robert Downey, Jr., Val Kilmer, Samuel L. Jackson", 72, "English", "United States", None, 0, 6.9, 86, 180),
    (5, "La Jetée", 1962, None, 28.0, "Sci-Fi", "Chris Marker", "Hélène Chatelain", None, "French", "France",
     None, 0, 8.8, 94, 30),
    (6, "Shoah", 1985, None, 540.0, "Documentary, History", "Claude Lanzmann", "", 99, "English, French",
     "France", None, 0, 9.5, 100, 45),
    (7, "Untitled Western", 1951, None, None, "", "Jane Doe, John Roe", "Tom Hanks", None, "", "", None, 0,
     None, 50, 12),
    (8, "Pulp Fiction", 2010, None, 90.0, "Crime", "Someone Else", "Meg Ryan", None, "English",
     "United Kingdom", None, 0, 5.0, 40, 20),
]


def make_movies_db(path: Path, films: list[tuple] = FILMS) -> Path:
    connection = sqlite3.connect(path)
    connection.execute(_OMDB)
    connection.execute(_TOMATOES)
    for (film_id, title, year, mpaa, runtime, genre, director, cast, metacritic, language, country, awards,
         oscars, rating, meter, reviews) in films:
        connection.execute('INSERT INTO omdb VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)',
                           (film_id, f"tt{film_id:07d}", title, year, mpaa, runtime, genre, f"{year}-01-01", director,
                            "", cast, metacritic, None, None, language, country, awards, "2026-10-18", oscars))
        connection.execute('INSERT INTO tomatoes VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)',
                           (film_id, None, rating, meter, reviews, None, None, None, None, None, None, None, None,
                            None, None, "2026-10-18"))
    connection.commit()
    connection.close()
    return path


@pytest.fixture
def movies_db(tmp_path: Path) -> Path:
    return make_movies_db(tmp_path / "movies.db")


def read_items(folder: Path) -> dict[str, dict]:
    return {row["id"]: row for row in map(json.loads, (folder / "items.jsonl").read_text().splitlines())}


def test_builder_writes_items_schema_and_licence(movies_db: Path, tmp_path: Path) -> None:
    summary = movies.build_movies(tmp_path / "out", movies_db)
    assert summary["films"] == summary["of"] == len(FILMS)
    items = read_items(tmp_path / "out")
    assert sorted(items) == sorted(f"film-{f[0]}" for f in FILMS)
    pulp = items["film-1"]
    assert pulp["title"] == "Pulp Fiction"  # titles as in the data, not lower-cased
    assert pulp["license"] == "CC0-1.0" and pulp["extra"]["imdb_id"] == "tt0000001"
    assert pulp["attributes"] == {
        "genres": ["crime", "drama"], "year": 1994, "decade": "1990s", "runtime_minutes": 154, "length": "long",
        "director": ["Quentin Tarantino"], "cast": ["Bruce Willis", "John Travolta", "Samuel L. Jackson", "Uma Thurman"],
        "country": ["United States"], "language": ["English"], "mpaa_rating": "R", "rotten_tomatoes": 92,
        "critic_rating": 8.9, "review_count": 104, "metacritic": 94, "oscars_won": 1, "oscar_nominations": 7}
    licence = (tmp_path / "out" / "LICENSE.md").read_text()
    assert "CC0" in licence and "Wikidata" in licence
    schema = load_schema(tmp_path / "out" / "schema.json")
    assert schema.name == "films"


def test_descriptions_are_written_from_the_metadata(movies_db: Path, tmp_path: Path) -> None:
    movies.build_movies(tmp_path, movies_db)
    items = read_items(tmp_path)
    pulp = items["film-1"]["description"]
    # Samuel L. Jackson has the most films in the database, so he leads the (alphabetical) cast.
    assert pulp.startswith("A 1994 crime drama (1990s) from the United States, directed by Quentin Tarantino, "
                           "with Samuel L. Jackson, Bruce Willis and John Travolta.")
    assert "In English, 154 minutes, rated R." in pulp
    assert "Rotten Tomatoes 92% from 104 reviews; Metacritic 94." in pulp and "Won 1 Oscar of 7 nominations." in pulp
    assert items["film-2"]["description"].startswith("A 1993 romantic comedy (1990s)")
    assert "Nominated for 2 Oscars." in items["film-2"]["description"]
    assert "from Chile, Spain and the United Kingdom" in items["film-3"]["description"]
    assert items["film-6"]["description"].startswith("A 1985 historical documentary (1980s) from France")
    assert items["film-7"]["description"].startswith("A 1951 film (1950s), directed by Jane Doe and John Roe, with Tom Hanks.")


def test_names_lengths_and_odd_values(movies_db: Path, tmp_path: Path) -> None:
    movies.build_movies(tmp_path, movies_db)
    items = read_items(tmp_path)
    # "Robert Downey, Jr." is one name, not "Robert Downey" and "Jr."
    assert items["film-4"]["attributes"]["cast"] == ["Robert Downey Jr.", "Val Kilmer", "Samuel L. Jackson"]
    # A 1-minute runtime (Machuca's, in the real data) is treated as missing, so it gets no length.
    assert "runtime_minutes" not in items["film-3"]["attributes"] and "length" not in items["film-3"]["attributes"]
    assert items["film-5"]["attributes"]["length"] == "short"  # 28 minutes
    assert items["film-6"]["attributes"]["length"] == "long" and "cast" not in items["film-6"]["attributes"]
    assert items["film-2"]["attributes"]["length"] == "feature"
    assert items["film-7"]["attributes"]["director"] == ["Jane Doe", "John Roe"]
    assert "genres" not in items["film-7"]["attributes"] and "country" not in items["film-7"]["attributes"]
    assert items["film-8"]["title"] == items["film-1"]["title"]  # same title, another film: ids tell them apart


def test_schema_kinds_labels_and_askable(movies_db: Path, tmp_path: Path) -> None:
    movies.build_movies(tmp_path, movies_db)
    schema = load_schema(tmp_path / "schema.json")
    kinds = {a.name: a.kind for a in schema.attributes}
    assert kinds == {
        "genres": "tags", "year": "numeric", "decade": "categorical", "runtime_minutes": "numeric",
        "length": "categorical", "director": "tags", "cast": "tags", "country": "tags", "language": "tags",
        "mpaa_rating": "categorical", "rotten_tomatoes": "numeric", "critic_rating": "numeric",
        "review_count": "numeric", "metacritic": "numeric", "oscars_won": "numeric", "oscar_nominations": "numeric"}
    spec = {a.name: a for a in schema.attributes}
    assert spec["decade"].order == ("1950s", "1960s", "1980s", "1990s", "2000s", "2010s")
    assert spec["length"].order == ("short", "feature", "long")
    assert not spec["director"].askable and not spec["cast"].askable
    assert not spec["mpaa_rating"].askable  # 1 film of 8 has one
    assert spec["genres"].askable and spec["decade"].askable and spec["country"].askable
    assert spec["mpaa_rating"].display_label == "MPAA rating"
    assert spec["country"].display_value("united states") == "United States"
    assert spec["genres"].display_value("sci-fi") == "Sci-Fi"
    assert spec["language"].display_value("klingon") == "klingon"  # no display name: as stored
    assert all(a.label for a in schema.attributes)


def test_limit_keeps_a_spread_over_decades(movies_db: Path, tmp_path: Path) -> None:
    movies.build_movies(tmp_path / "a", movies_db, limit=4)
    movies.build_movies(tmp_path / "b", movies_db, limit=4)
    assert (tmp_path / "a" / "items.jsonl").read_bytes() == (tmp_path / "b" / "items.jsonl").read_bytes()
    items = read_items(tmp_path / "a")
    decades = Counter(i["attributes"]["decade"] for i in items.values())
    assert len(items) == 4 and max(decades.values()) == 1  # six decades: no decade twice
    assert "4 of its 8 films" in (tmp_path / "a" / "LICENSE.md").read_text()


def test_cli_build_then_ingest(movies_db: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "films"
    assert main(["catalog", "build-movies", "--source", str(movies_db), "--out", str(out)]) == 0
    db = f"sqlite:///{tmp_path / 'crs.db'}"
    assert main(["ingest", str(out / "items.jsonl"), "--format", "jsonl", "--db", db, "--json"]) == 0
    capsys.readouterr()
    assert main(["catalog", "info", "--db", db, "--catalog", "films", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["items"] == len(FILMS)


def test_missing_package_is_one_clear_line(monkeypatch, tmp_path: Path, capsys) -> None:
    real = movies.importlib.import_module

    def no_package(name: str, *args, **kwargs):
        if name.startswith("bokeh_sampledata"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(movies.importlib, "import_module", no_package)
    assert main(["catalog", "build-movies", "--out", str(tmp_path / "films")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: the films catalog needs the bokeh_sampledata package: pip install -e '.[films]'"
    assert not (tmp_path / "films").exists()


def test_a_file_that_is_not_a_movies_database_is_refused(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.db"
    sqlite3.connect(bad).execute("CREATE TABLE other (x)").connection.commit()
    assert main(["catalog", "build-movies", "--source", str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "not a movies database with the omdb and tomatoes tables" in capsys.readouterr().err
    assert main(["catalog", "build-movies", "--source", str(tmp_path / "none.db"), "--out", str(tmp_path / "o")]) == 1
    assert "no such movies database" in capsys.readouterr().err


# --- schema: labels and display names ---------------------------------------------------------

def test_labels_and_display_names_parse() -> None:
    schema = parse_schema({"name": "x", "attributes": [
        {"name": "country", "kind": "tags", "label": " Country  of origin ",
         "display": {"United States": "United States", "uk": "United Kingdom"}},
        {"name": "rating", "kind": "categorical", "values": ["pg", "r"], "display": {"PG": "PG", "r": "R"}},
        {"name": "year", "kind": "numeric"}]}, "s.json")
    country, rating, year = schema.attributes
    assert country.label == "Country of origin" and country.display_label == "Country of origin"
    assert country.display == (("uk", "United Kingdom"), ("united states", "United States"))
    assert rating.display_value("pg") == "PG" and rating.display_value("r") == "R"
    assert year.label is None and year.display_label == "year" and year.display_value("1999") == "1999"
    assert hash(country)  # specs stay hashable
    out = schema.to_json()["attributes"]
    assert out[0]["display"] == {"uk": "United Kingdom", "united states": "United States"}
    assert "label" not in out[2] and "display" not in out[2]
    assert parse_schema(json.loads(json.dumps(schema.to_json())), "again").attributes == schema.attributes


@pytest.mark.parametrize("spec, message", [
    ({"label": ""}, "'label' must be a non-empty string"),
    ({"label": 3}, "'label' must be a non-empty string"),
    ({"display": ["pg"]}, "must be an object of value -> display name"),
    ({"display": {"pg": ""}}, "must be an object of value -> display name"),
    ({"display": {"PG": "PG", "pg": "Pg"}}, "two keys name the same value"),
    ({"values": ["pg"], "display": {"r": "R"}}, "names values not in 'values': ['r']"),
    ({"lable": "Rating"}, "unknown key(s) ['lable']; allowed: ['askable', 'description', 'display', 'kind', 'label'"),
])
def test_bad_label_and_display_keys_fail_clearly(spec: dict, message: str) -> None:
    with pytest.raises(SchemaError) as error:
        parse_schema({"attributes": [{"name": "rating", "kind": "categorical", **spec}]}, "s.json")
    assert message in str(error.value) and "s.json: attributes[0]" in str(error.value)


def test_old_schemas_serialise_as_before(tmp_path: Path) -> None:
    # The schema's JSON salts every row hash: a schema without labels must give the same JSON as
    # before labels existed, and labels added later must not change the salt, or every demo row
    # would be rewritten (and its index voided) on the next load.
    from crs.catalog.ingest import _schema_salt

    data = json.loads((DEMO_DIR / "schema.json").read_text())
    for spec in data["attributes"]:
        spec.pop("label", None)
        spec.pop("display", None)
    (tmp_path / "schema.json").write_text(json.dumps(data))
    plain = load_schema(tmp_path / "schema.json")
    for attribute in plain.to_json()["attributes"]:
        assert "label" not in attribute and "display" not in attribute
    assert set(plain.to_json()["attributes"][0]) == {"name", "kind", "description", "askable", "values"}
    assert _schema_salt(plain) == _schema_salt(load_schema(DEMO_DIR / "schema.json"))


# --- the committed 500-film sample -----------------------------------------------------------

def test_sample_ingests_with_the_declared_kinds(store, capsys) -> None:
    assert main(["ingest", str(SAMPLE / "items.jsonl"), "--format", "jsonl", "--db", store.url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 500
    assert main(["catalog", "info", "--db", store.url, "--catalog", "films", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    declared: CatalogSchema = load_schema(SAMPLE / "schema.json")
    assert info["items"] == 500 and info["images"]["present"] == 0
    assert {a["name"]: a["kind"] for a in info["attributes"]} == {a.name: a.kind for a in declared.attributes}
    by_name = {a["name"]: a for a in info["attributes"]}
    assert by_name["decade"]["distinct_values"] == 8 and by_name["genres"]["distinct_values"] == 21
    assert by_name["director"]["distinct_values"] > 300


def test_sample_is_spread_and_described() -> None:
    items = list(read_items(SAMPLE).values())
    decades = Counter(i["attributes"]["decade"] for i in items)
    assert len(items) == 500 and len(decades) == 8 and min(decades.values()) >= 60
    genres = Counter(g for i in items for g in i["attributes"].get("genres", []))
    assert len(genres) == 21 and min(genres.values()) >= 10
    for item in items:
        attributes, description = item["attributes"], item["description"]
        assert description.startswith(f"A {attributes['year']} ") or description.startswith(f"An {attributes['year']} ")
        assert f"({attributes['decade']})" in description
        for director in attributes.get("director", [])[:3]:
            assert director in description
    spec = {a.name: a for a in load_schema(SAMPLE / "schema.json").attributes}
    assert not spec["mpaa_rating"].askable  # judged on the whole database (15% rated), not the sample
    assert not spec["director"].askable and not spec["cast"].askable
    assert "CC0" in (SAMPLE / "LICENSE.md").read_text()


def test_sample_is_what_the_builder_makes(tmp_path: Path) -> None:
    pytest.importorskip("bokeh_sampledata")
    assert main(["catalog", "build-movies", "--limit", "500", "--out", str(tmp_path)]) == 0
    for name in ("items.jsonl", "schema.json", "LICENSE.md"):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name


def test_sample_index_and_search_offline(store, capsys) -> None:
    """`crs index` + `crs search --json` on the sample with the offline default embedder
    (~25 s on 2 shared cores: index 15-18 s, search 7 s including model loading)."""
    common = ["--db", store.url, "--catalog", "films"]
    assert main(["ingest", str(SAMPLE / "items.jsonl"), "--format", "jsonl", "--db", store.url]) == 0
    capsys.readouterr()
    started = time.perf_counter()
    assert main(["index", *common, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["items"] == 500 and status["built"]
    assert main(["search", "a 1990s crime drama", "-k", "5", *common, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 5 and not any(h["image"] for h in hits)
    # The dense text space alone ranks loosely (2 of these 5 are from the 1990s today); the filters are exact.
    assert any(h["attributes"]["decade"] == "1990s" for h in hits)
    assert main(["search", "crime drama", "-k", "5", "--where", "decade=1990s", "--where", "genres=crime",
                 *common, "--json"]) == 0
    filtered = json.loads(capsys.readouterr().out)
    assert filtered and all(h["attributes"]["decade"] == "1990s" and "crime" in h["attributes"]["genres"]
                            for h in filtered)
    assert time.perf_counter() - started < 120
