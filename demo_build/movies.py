"""Build the films catalog from `bokeh_sampledata`'s `movies.db` (`crs catalog build-movies`).

The database (17,472 films released 1940-2014, selected from Wikidata; CC0) has two tables
joined on `ID`: `omdb` (title, year, MPAA rating, runtime, genres, director, cast, language,
country, Metacritic score, Oscar wins and an "Awards" sentence) and `tomatoes` (Rotten Tomatoes
meter, average critic rating and review count). It has no plot text, so each film's description
is written from its metadata.

Writes into `out_dir`, in the ingest format of docs/catalog-format.md:

    items.jsonl   one film per line (id `film-<ID>`), in the order of the source's ID
    schema.json   the attribute schema, with a `label` per attribute and `display` names of values
    LICENSE.md    where the data comes from and its licence (CC0)

`crs ingest OUT/items.jsonl --format jsonl` loads it (catalog name `films`). `limit` keeps a
deterministic selection spread over decades and genres (`select_films`); the committed sample in
assets/films-sample is `--limit 500`. Same database, same files, byte for byte.

The package is an optional dependency (`pip install -e '.[films]'`); a copy of the database
elsewhere works with `source=`. Only the standard library is used here, so the tests can build
from a small database of the same tables without the package.
"""
from __future__ import annotations

import importlib
import json
import re
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crs.catalog.schema import normalise_value, parse_schema
from crs.errors import UserError

CATALOG_NAME = "films"
PACKAGE = "bokeh_sampledata"
SOURCE = "bokeh_sampledata@2026.1 movies.db (Wikidata)"
LICENSE = "CC0-1.0"
INSTALL_HINT = "pip install -e '.[films]'"

# Length bands of `length`, in minutes. "short" is the Academy's short-film rule (40 minutes or
# less); "long" starts at two and a half hours. Runtimes under MIN_RUNTIME are treated as
# missing: the database has three (1, 4 and 7 minutes) and at least one is wrong (Machuca, 1.0).
SHORT_MAX_MINUTES = 40
LONG_MIN_MINUTES = 150
MIN_RUNTIME = 5
LENGTHS = ("short", "feature", "long")
DECADES = tuple(f"{y}s" for y in range(1900, 2030, 10))
# An attribute is askable only when at least this share of the films has a value.
ASKABLE_COVERAGE = 0.5
STARS_IN_DESCRIPTION = 3
# Suffixes the source's comma-separated name lists split off a name: "Robert Downey, Jr.".
_NAME_SUFFIXES = {"jr.", "jr", "sr.", "sr", "ii", "iii", "iv"}

GENRES = ("Action", "Adventure", "Animation", "Biography", "Comedy", "Crime", "Documentary", "Drama",
          "Family", "Fantasy", "History", "Horror", "Music", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Sport", "Thriller", "War", "Western")
# How a genre reads as the head of the phrase ("a crime drama") and as a modifier before it.
_HEAD = {"Documentary": "documentary", "Animation": "animated film", "Drama": "drama", "Comedy": "comedy",
         "Thriller": "thriller", "Western": "western", "Musical": "musical", "Horror": "horror film",
         "Romance": "romance", "Mystery": "mystery", "Biography": "biopic", "Sci-Fi": "science-fiction film",
         "Fantasy": "fantasy film", "Action": "action film", "Adventure": "adventure film", "War": "war film",
         "Crime": "crime film", "Family": "family film", "Sport": "sports film", "History": "historical film",
         "Music": "music film"}
_HEAD_PRIORITY = ("Documentary", "Animation", "Drama", "Comedy", "Thriller", "Western", "Musical", "Horror",
                  "Romance", "Mystery", "Biography", "Sci-Fi", "Fantasy", "Action", "Adventure", "War", "Crime",
                  "Family", "Sport", "History", "Music")
_MODIFIER = {"Action": "action", "Adventure": "adventure", "Animation": "animated", "Biography": "biographical",
             "Comedy": "comedy", "Crime": "crime", "Documentary": "documentary", "Drama": "dramatic",
             "Family": "family", "Fantasy": "fantasy", "History": "historical", "Horror": "horror",
             "Music": "music", "Musical": "musical", "Mystery": "mystery", "Romance": "romantic",
             "Sci-Fi": "sci-fi", "Sport": "sports", "Thriller": "thriller", "War": "war", "Western": "western"}
_MODIFIER_ORDER = ("Romance", "Family", "Animation", "Biography", "History", "War", "Western", "Sci-Fi", "Fantasy",
                   "Horror", "Mystery", "Crime", "Action", "Adventure", "Sport", "Music", "Musical", "Thriller",
                   "Comedy", "Drama", "Documentary")


class MoviesSourceError(UserError):
    """The movies database is missing or does not have the expected tables."""


@dataclass
class Film:
    id: int
    title: str
    year: int
    genres: list[str] = field(default_factory=list)
    runtime: float | None = None
    directors: list[str] = field(default_factory=list)
    cast: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    mpaa: str | None = None
    metacritic: float | None = None
    oscars_won: int = 0
    oscar_nominations: int = 0
    meter: float | None = None
    critic_rating: float | None = None
    reviews: int | None = None
    imdb_id: str = ""
    released: str = ""

    @property
    def decade(self) -> str:
        return f"{self.year // 10 * 10}s"


def default_source() -> Path:
    """`movies.db` inside the installed bokeh_sampledata package (a clear error when it is absent)."""
    try:
        module = importlib.import_module(f"{PACKAGE}.movies_data")  # by name: the package is optional
    except ImportError as exc:
        raise MoviesSourceError(f"the films catalog needs the {PACKAGE} package: {INSTALL_HINT}") from exc
    return Path(module.movie_path)


def split_names(raw: str | None) -> list[str]:
    """'A, B, Robert Downey, Jr.' -> ['A', 'B', 'Robert Downey Jr.'] (first spelling of each kept)."""
    names: list[str] = []
    for part in (raw or "").split(","):
        part = " ".join(part.split())
        if not part:
            continue
        if part.lower() in _NAME_SUFFIXES and names:
            names[-1] = f"{names[-1]} {part}"
        else:
            names.append(part)
    seen: set[str] = set()
    unique = []
    for name in names:
        if normalise_value(name) not in seen:
            seen.add(normalise_value(name))
            unique.append(name)
    return unique


_AWARDS = re.compile(r"Nominated for (\d+) Oscars?")


def read_films(source: Path) -> list[Film]:
    if not source.is_file():
        raise MoviesSourceError(f"{source}: no such movies database ({INSTALL_HINT} provides one)")
    try:
        connection = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            rows = connection.execute(
                'SELECT o.ID, o.imdbID, o.Title, o.Year, o.Rating, o.Runtime, o.Genre, o.Released, o.Director,'
                ' o."Cast", o.Metacritic, o.Language, o.Country, o.Awards, o.Oscars, t.Meter, t.Rating, t.Reviews'
                ' FROM omdb o LEFT JOIN tomatoes t ON t.ID = o.ID ORDER BY o.ID').fetchall()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise MoviesSourceError(f"{source}: not a movies database with the omdb and tomatoes tables: {exc}") from exc
    films = []
    for (film_id, imdb_id, title, year, mpaa, runtime, genre, released, director, cast, metacritic, language,
         country, awards, oscars, meter, critic_rating, reviews) in rows:
        if not title or not str(title).strip() or year is None:
            continue
        nominations = _AWARDS.search(awards or "")
        genres = [g for g in split_names(genre) if g in GENRES]
        films.append(Film(
            id=int(film_id), title=" ".join(str(title).split()), year=int(year),
            genres=sorted(genres, key=GENRES.index),
            runtime=float(runtime) if runtime is not None and runtime >= MIN_RUNTIME else None,
            directors=split_names(director), cast=split_names(cast), languages=split_names(language),
            countries=split_names(country), mpaa=(mpaa or "").strip() or None,
            metacritic=float(metacritic) if metacritic is not None else None,
            oscars_won=int(oscars or 0),
            oscar_nominations=max(int(nominations.group(1)) if nominations else 0, int(oscars or 0)),
            meter=float(meter) if meter is not None else None,
            critic_rating=float(critic_rating) if critic_rating is not None else None,
            reviews=int(reviews) if reviews is not None else None,
            imdb_id=imdb_id or "", released=released or "",
        ))
    return films


def select_films(films: Sequence[Film], limit: int | None) -> list[Film]:
    """At most `limit` films spread over decades and genres, the same every time.

    Each decade gets an equal share (a decade with fewer films gives its rest to the others).
    Within a decade, genres take turns in a fixed order, each taking its best-known film not yet
    taken (most Rotten Tomatoes reviews, then the lower id); films without a genre come last.
    """
    if limit is None or limit >= len(films):
        return sorted(films, key=lambda f: f.id)
    by_decade: dict[str, list[Film]] = defaultdict(list)
    for film in films:
        by_decade[film.decade].append(film)
    quotas = _decade_quotas({d: len(fs) for d, fs in by_decade.items()}, limit)
    chosen: list[Film] = []
    for decade in sorted(by_decade):
        chosen += _genre_round_robin(by_decade[decade], quotas[decade])
    return sorted(chosen, key=lambda f: f.id)


def _decade_quotas(sizes: dict[str, int], limit: int) -> dict[str, int]:
    quotas = {d: 0 for d in sizes}
    left = limit
    open_decades = sorted(sizes)
    while left > 0 and open_decades:
        share, extra = divmod(left, len(open_decades))
        for i, decade in enumerate(list(open_decades)):
            want = share + (1 if i < extra else 0)
            take = min(want, sizes[decade] - quotas[decade])
            quotas[decade] += take
            left -= take
        open_decades = [d for d in open_decades if quotas[d] < sizes[d]]
    return quotas


def _genre_round_robin(films: list[Film], quota: int) -> list[Film]:
    def fame(film: Film) -> tuple[int, int]:
        return (-(film.reviews or 0), film.id)

    queues = {g: sorted((f for f in films if g in f.genres), key=fame) for g in GENRES}
    rest = sorted((f for f in films if not f.genres), key=fame)
    taken: dict[int, Film] = {}
    while len(taken) < quota:
        progressed = False
        for genre in GENRES:
            queue = queues[genre]
            while queue and queue[0].id in taken:
                queue.pop(0)
            if queue and len(taken) < quota:
                film = queue.pop(0)
                taken[film.id] = film
                progressed = True
        if not progressed:
            break
    for film in rest:
        if len(taken) >= quota:
            break
        taken[film.id] = film
    return list(taken.values())


def length_of(runtime: float | None) -> str | None:
    if runtime is None:
        return None
    if runtime <= SHORT_MAX_MINUTES:
        return "short"
    return "long" if runtime >= LONG_MIN_MINUTES else "feature"


def genre_phrase(genres: Sequence[str]) -> str:
    """['Crime', 'Drama'] -> 'crime drama'; ['Comedy', 'Romance'] -> 'romantic comedy'; [] -> 'film'."""
    if not genres:
        return "film"
    if "Comedy" in genres and "Drama" in genres and "Documentary" not in genres and "Animation" not in genres:
        head, rest = "comedy-drama", [g for g in genres if g not in ("Comedy", "Drama")]
    else:
        head_genre = next(g for g in _HEAD_PRIORITY if g in genres)
        head, rest = _HEAD[head_genre], [g for g in genres if g != head_genre]
    modifiers = [_MODIFIER[g] for g in sorted(rest, key=_MODIFIER_ORDER.index)][:2]
    return " ".join(modifiers + [head])


_THE = re.compile(r"^(united |people's |republic |soviet |czech republic|democratic |dominican republic|netherlands"
                  r"|philippines|bahamas|central african|federal republic|kingdom of)", re.IGNORECASE)


def _country(name: str) -> str:
    return f"the {name}" if _THE.match(name) else name


def _and(words: Sequence[str]) -> str:
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _article(phrase: str) -> str:
    return "An" if phrase[:1].lower() in "aeiou" else "A"  # openings start with a year 1940-2014: "A"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def stars(film: Film, appearances: Counter[str], n: int = STARS_IN_DESCRIPTION) -> list[str]:
    """The cast members named in the description: the source lists cast alphabetically, not by
    billing, so the ones with the most films in the whole database stand in for the leads."""
    return sorted(film.cast, key=lambda name: (-appearances[name], name))[:n]


def describe(film: Film, appearances: Counter[str]) -> str:
    """A few sentences from the metadata, e.g. 'A 1994 crime drama (1990s) from the United States,
    directed by Quentin Tarantino, with Samuel L. Jackson, Bruce Willis and Christopher Walken. In
    English, 154 minutes, rated R. Rotten Tomatoes 92% from 104 reviews; Metacritic 94. ...'"""
    # The decade is named too: people ask for "a 1990s crime drama", not "a 1994" one (on the
    # 500-film sample it also raised the text-space hits of 8 genre-and-decade queries, 15 -> 17 of 40).
    opening = f"{film.year} {genre_phrase(film.genres)} ({film.decade})"
    parts = [f"{_article(opening)} {opening}"]
    if film.countries:
        parts.append(f" from {_and([_country(c) for c in film.countries[:3]])}")
    if film.directors:
        parts.append(f", directed by {_and(film.directors[:3])}")
    leads = stars(film, appearances)
    if leads:
        parts.append(f", with {_and(leads)}")
    sentences = ["".join(parts) + "."]
    facts = []
    if film.languages:
        facts.append(f"In {_and(film.languages[:3])}")
    if film.runtime is not None:
        facts.append(f"{_number(film.runtime)} minutes")
    if film.mpaa:
        facts.append(f"rated {film.mpaa}")
    if facts:
        sentences.append(", ".join(facts) + ".")
    scores = []
    if film.meter is not None:
        reviews = f" from {film.reviews} reviews" if film.reviews else ""
        scores.append(f"Rotten Tomatoes {_number(film.meter)}%{reviews}")
    if film.metacritic is not None:
        scores.append(f"Metacritic {_number(film.metacritic)}")
    if scores:
        sentences.append("; ".join(scores) + ".")
    if film.oscars_won:
        plural = "s" if film.oscars_won > 1 else ""
        sentences.append(f"Won {film.oscars_won} Oscar{plural} of {film.oscar_nominations} nominations."
                         if film.oscar_nominations > film.oscars_won else f"Won {film.oscars_won} Oscar{plural}.")
    elif film.oscar_nominations:
        plural = "s" if film.oscar_nominations > 1 else ""
        sentences.append(f"Nominated for {film.oscar_nominations} Oscar{plural}.")
    return " ".join(sentences)


def item(film: Film, appearances: Counter[str]) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "genres": [g.lower() for g in film.genres],
        "year": film.year,
        "decade": film.decade,
        "runtime_minutes": film.runtime,
        "length": length_of(film.runtime),
        "director": film.directors,
        "cast": film.cast,
        "country": film.countries,
        "language": film.languages,
        "mpaa_rating": film.mpaa,
        "rotten_tomatoes": film.meter,
        "critic_rating": film.critic_rating,
        "review_count": film.reviews,
        "metacritic": film.metacritic,
        "oscars_won": film.oscars_won,
        "oscar_nominations": film.oscar_nominations,
    }
    attributes = {k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in attributes.items()
                  if v is not None and v != [] and v != ""}
    extra: dict[str, Any] = {"imdb_id": film.imdb_id, "released": film.released, "source_id": film.id}
    return {"id": f"film-{film.id}", "title": film.title, "description": describe(film, appearances),
            "source": SOURCE, "license": LICENSE, "attributes": attributes, "extra": extra}


def _coverage(films: Sequence[Film], has: Any) -> float:
    return sum(1 for f in films if has(f)) / max(len(films), 1)


def _display(names: Iterable[str]) -> dict[str, str]:
    """Lower-cased stored value -> the source's spelling, only where they differ."""
    out: dict[str, str] = {}
    for name in sorted(set(names)):
        key = normalise_value(name)
        if key != name:
            out.setdefault(key, name)
    return dict(sorted(out.items()))


def schema(films: Sequence[Film], population: Sequence[Film] | None = None) -> dict[str, Any]:
    """The attribute schema of `films`. Whether an attribute is askable is judged on `population`
    (the whole database, so a sample asks what the full catalog asks: MPAA ratings cover 55% of
    the 500-film sample but 15% of the database). Director and cast have thousands of names:
    their spellings are in each film's description, not in `display` (the schema stays small)."""
    population = population if population is not None else films
    decades = sorted({f.decade for f in films})
    mpaa = sorted({f.mpaa for f in films if f.mpaa})
    askable_mpaa = _coverage(population, lambda f: f.mpaa) >= ASKABLE_COVERAGE
    genres_present = [g for g in GENRES if any(g in f.genres for f in films)]

    def spec(name: str, kind: str, label: str, description: str, **more: Any) -> dict[str, Any]:
        return {"name": name, "kind": kind, "label": label, "description": description, **more}

    attributes = [
        spec("genres", "tags", "Genre", "the film's genres (Wikidata)",
             values=[g.lower() for g in genres_present],
             display={g.lower(): g for g in genres_present},
             askable=_coverage(population, lambda f: f.genres) >= ASKABLE_COVERAGE),
        spec("year", "numeric", "Year", "year of release"),
        spec("decade", "categorical", "Decade", "decade of release, e.g. 1990s", values=decades, order=decades),
        spec("runtime_minutes", "numeric", "Running time (minutes)", "running time in minutes"),
        spec("length", "categorical", "Length",
             f"short: {SHORT_MAX_MINUTES} minutes or less; feature: {SHORT_MAX_MINUTES + 1}-{LONG_MIN_MINUTES - 1} "
             f"minutes; long: {LONG_MIN_MINUTES} minutes or more",
             values=list(LENGTHS), order=list(LENGTHS),
             display={"short": "Short (40 min or less)", "feature": "Feature length", "long": "Long (2.5 h or more)"},
             askable=_coverage(population, lambda f: f.runtime is not None) >= ASKABLE_COVERAGE),
        spec("director", "tags", "Director", "who directed it", askable=False),
        spec("cast", "tags", "Cast", "actors and actresses in it (listed alphabetically in the source)",
             askable=False),
        spec("country", "tags", "Country", "country of origin", display=_display(c for f in films for c in f.countries),
             askable=_coverage(population, lambda f: f.countries) >= ASKABLE_COVERAGE),
        spec("language", "tags", "Language", "original language(s)",
             display=_display(x for f in films for x in f.languages),
             askable=_coverage(population, lambda f: f.languages) >= ASKABLE_COVERAGE),
        spec("mpaa_rating", "categorical", "MPAA rating",
             "US MPAA rating, where known (most films in the source have none)",
             values=[normalise_value(m) for m in mpaa], display={normalise_value(m): m for m in mpaa},
             askable=askable_mpaa),
        spec("rotten_tomatoes", "numeric", "Rotten Tomatoes score (%)", "Tomatometer: share of positive reviews, 0-100"),
        spec("critic_rating", "numeric", "Critics' average rating (0-10)", "Rotten Tomatoes average critic rating"),
        spec("review_count", "numeric", "Number of reviews", "Rotten Tomatoes review count", askable=False),
        spec("metacritic", "numeric", "Metacritic score", "Metacritic score, 0-100", askable=False),
        spec("oscars_won", "numeric", "Oscars won", "Academy Awards won (the source notes counts can be incomplete)"),
        spec("oscar_nominations", "numeric", "Oscar nominations", "Academy Award nominations, wins included"),
    ]
    for attribute in attributes:
        if attribute.get("display") == {}:
            del attribute["display"]
        if attribute.get("values") == []:
            del attribute["values"]
            attribute.pop("order", None)
    return {"name": CATALOG_NAME, "title": "Films (Wikidata, 1940-2014)", "attributes": attributes}


LICENSE_TEXT = """# Films catalog: source and licence

Built by `crs catalog build-movies` from `movies.db` in the PyPI package `bokeh_sampledata`
2026.1 (the Bokeh project's sample data): {films} of its {of:,} films released 1940-2014,
selected from Wikidata with review-score statements (snapshot of 2026-10-18).

Licence of the data: **CC0 1.0** (public domain dedication), as stated by the package for this
dataset: https://creativecommons.org/publicdomain/zero/1.0/ . Wikidata's structured data is CC0:
https://www.wikidata.org/wiki/Wikidata:Copyright . The descriptions were written by the builder
from the metadata (the database has no plot text); they are CC0 as well.

{selection}
"""


def build_movies(out_dir: Path, source: Path | None = None, limit: int | None = None) -> dict[str, Any]:
    """Write items.jsonl, schema.json and LICENSE.md into `out_dir`; returns a short summary."""
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    source = source if source is not None else default_source()
    films = read_films(source)
    if not films:
        raise MoviesSourceError(f"{source}: the omdb table has no films")
    appearances: Counter[str] = Counter(name for film in films for name in film.cast)
    chosen = select_films(films, limit)
    schema_json = schema(chosen, films)
    parse_schema(schema_json, "films schema")  # the builder's own schema must be valid
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(item(f, appearances), ensure_ascii=False, separators=(",", ":")) for f in chosen]
    (out_dir / "items.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out_dir / "schema.json").write_text(json.dumps(schema_json, indent=2, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
    selection = (f"This is a sample of {len(chosen)} films (`--limit {limit}`): an equal share per decade, "
                 "genres taking turns within each decade, each taking its film with the most Rotten "
                 "Tomatoes reviews not yet taken." if limit is not None and len(chosen) < len(films)
                 else "All films of the database.")
    (out_dir / "LICENSE.md").write_text(LICENSE_TEXT.format(films=len(chosen), of=len(films), selection=selection),
                                        encoding="utf-8")
    return {"films": len(chosen), "of": len(films), "out": str(out_dir),
            "decades": dict(sorted(Counter(f.decade for f in chosen).items()))}


def main(out: Path, source: Path | None = None, limit: int | None = None) -> int:
    summary = build_movies(out, source, limit)
    print(f"wrote {summary['films']} of {summary['of']} films to {summary['out']} "
          f"(items.jsonl, schema.json, LICENSE.md); by decade: "
          + ", ".join(f"{d} {n}" for d, n in summary["decades"].items()))
    print(f"load it with: crs ingest {Path(summary['out']) / 'items.jsonl'} --format jsonl")
    return 0
