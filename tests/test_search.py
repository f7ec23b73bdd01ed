"""Searching a catalog in the store: filters, the on-disk index cache, bad input, the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from crs.catalog.ingest import IngestOptions, ingest
from crs.catalog_index import index_folder, open_index
from crs.cli import main
from crs.filters import FilterError, parse_where
from crs.search import MAX_K, CatalogSearch, QueryError
from retrieval.embedder import load_embedder


@pytest.fixture
def searcher(shapes_catalog) -> CatalogSearch:
    store, catalog = shapes_catalog
    return CatalogSearch.open(store, catalog, "fake")


def image_of(searcher: CatalogSearch, external_id: str) -> Path:
    return Path(searcher.hits(searcher.index.search(
        searcher.query(liked=searcher.item_ids([external_id])), k=1))[0].image)


def test_text_search_returns_items_with_every_attribute(searcher: CatalogSearch) -> None:
    hits = searcher.search("red circle", k=5)
    assert len(hits) == 5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    first = hits[0].to_json()
    assert set(first) == {"id", "title", "score", "attributes", "image"}
    assert set(first["attributes"]) == {"shape", "colour", "style", "price", "tags"}
    assert Path(first["image"]).is_file()


def test_image_query_finds_the_same_colour(searcher: CatalogSearch, shapes_catalog) -> None:
    # The fake image encoder is a colour histogram: a blue picture's neighbours are blue.
    query_image = Path(searcher.hits(searcher.index.search(
        searcher.query(text="blue"), k=1))[0].image)
    hits = searcher.search(images=[query_image], k=6)
    assert all(h.attributes["colour"] == ["blue"] for h in hits[:6])


def test_filters_categorical_tags_numeric_and_negated(searcher: CatalogSearch) -> None:
    hits = searcher.search("sticker", where=["colour=blue", "style=outline"], k=24)
    assert len(hits) == 4 and all(h.attributes["colour"] == ["blue"] and h.attributes["style"] == "outline"
                                  for h in hits)
    cheap = searcher.search("sticker", where=["price<=4"], k=24)
    assert cheap and all(h.attributes["price"] <= 4 for h in cheap)
    assert len(cheap) == 4
    not_red = searcher.search("sticker", where={"colour": "red", "shape": "star"}, k=24)
    assert {h.id for h in not_red} == {"red-star-flat", "red-star-outline"}
    others = searcher.search("sticker", where=["shape!=star"], k=24)
    assert len(others) == 18 and all(h.attributes["shape"] != "star" for h in others)
    assert searcher.search("sticker", where=["price>1000"], k=5) == []
    assert searcher.search("sticker", where=["Colour = BLUE"], k=24)  # case and spaces as stored


@pytest.mark.parametrize("where, message", [
    (["colr=blue"], "unknown attribute 'colr'.*colour"),
    (["colour=purple"], "colour has no value 'purple'"),
    (["style>flat"], "compare it with = or != only"),
    (["price<=cheap"], "not a number"),
    (["price=cheap"], "price is numeric"),
    (["colour"], "cannot read filter 'colour'"),
])
def test_bad_filters_say_what_is_wrong(searcher: CatalogSearch, where, message) -> None:
    with pytest.raises(FilterError, match=message):
        searcher.search("red", where=where)


def test_bad_queries_are_clear_errors(searcher: CatalogSearch, tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="empty query"):
        searcher.search("   ")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(QueryError, match="broken.png"):
        searcher.search("red", [broken])
    with pytest.raises(QueryError, match="no item 'nope'"):
        searcher.item_ids(["nope"])
    with pytest.raises(QueryError, match="not in catalog"):
        searcher.search("red", liked=[99999])


def test_liked_disliked_and_excluded(searcher: CatalogSearch) -> None:
    liked = searcher.item_ids(["green-square-flat"])
    hits = searcher.search(liked=liked, exclude=liked, k=3)
    assert "green-square-flat" not in [h.id for h in hits]
    assert hits[0].attributes["colour"] == ["green"]
    disliked = searcher.item_ids(["blue-circle-flat", "blue-circle-outline"])
    plain = [h.id for h in searcher.search("circle", k=3)]
    pushed = [h.id for h in searcher.search("circle", disliked=disliked, k=3)]
    assert plain != pushed
    assert not any(i.startswith("blue") for i in pushed)


def test_index_is_cached_and_rebuilt_when_the_catalog_changes(shapes_catalog, tmp_path: Path, caplog) -> None:
    store, catalog = shapes_catalog
    embedder = load_embedder("fake")
    first, status = open_index(store, catalog, embedder)
    assert status.built and first.size == 24
    again, status = open_index(store, catalog, embedder)
    assert not status.built and status.reason == "cached"
    # Another embedder (other weights: another name) gets its own cache, never these vectors.
    assert index_folder("shapes", embedder.name) == status.folder
    assert index_folder("shapes", embedder.name + "x") != status.folder
    # Change one item: the fingerprint changes and the index is rebuilt.
    items = tmp_path / "shapes" / "items.jsonl"
    rows = [json.loads(line) for line in items.read_text().splitlines()]
    rows[0]["title"] = "A renamed red circle"
    rows.append({**rows[1], "id": "extra-item"})
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ingest(store, items, IngestOptions(format="jsonl", catalog="shapes"))
    rebuilt, status = open_index(store, catalog, embedder)
    assert status.built and "built for other data" in status.reason and rebuilt.size == 25


def test_a_corrupt_index_file_is_detected_and_rebuilt(shapes_catalog, caplog) -> None:
    store, catalog = shapes_catalog
    embedder = load_embedder("fake")
    _, status = open_index(store, catalog, embedder)
    (status.folder / "text.faiss").write_bytes(b"garbage")
    index, status = open_index(store, catalog, embedder)
    assert status.built and "truncated" in status.reason
    assert "rebuilding the index" in caplog.text
    assert index.size == 24
    assert not open_index(store, catalog, embedder)[1].built


def test_the_exact_index_kind_end_to_end_gives_the_flat_kinds_results(shapes_catalog) -> None:
    store, catalog = shapes_catalog
    flat = CatalogSearch.open(store, catalog, "fake", kind="flat")
    exact = CatalogSearch.open(store, catalog, "fake", kind="exact", rebuild=True)  # the cache holds flat
    assert {s.kind for s in flat.index.spaces.values()} == {"flat"}
    assert {s.kind for s in exact.index.spaces.values()} == {"exact"}
    liked = exact.item_ids(["green-square-flat"])
    cases = [("red circle", None, ()), ("blue star outline", None, ()), ("sticker", ["style=flat"], ()),
             ("star", ["price<=4"], ()), (None, None, liked), ("circle", ["colour!=blue"], liked)]
    for text, where, like in cases:
        want = flat.search(text, where=where, liked=like, k=5)
        got = exact.search(text, where=where, liked=like, k=5)
        assert [h.id for h in got] == [h.id for h in want]
        assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5)
    # The exact index is cached like any other and comes back as itself when exact is asked for.
    cached = CatalogSearch.open(store, catalog, "fake", kind="exact")
    assert not cached.status.built and {s.kind for s in cached.index.spaces.values()} == {"exact"}
    assert [h.id for h in cached.search("red circle", k=5)] == [h.id for h in exact.search("red circle", k=5)]


def test_an_unknown_index_kind_is_refused_before_anything_loads(shapes_catalog, monkeypatch) -> None:
    import crs.search

    monkeypatch.setattr(crs.search, "open_index", lambda *a, **k: pytest.fail("an index was opened"))
    with pytest.raises(ValueError, match="unknown index kind 'annoy'; choose one of auto, flat, hnsw, ivf, exact"):
        CatalogSearch.open(*shapes_catalog, "fake", kind="annoy")


def test_parse_where_reads_operators_and_mappings() -> None:
    conditions = parse_where(["added_in>=2015", "colour = Light  Blue", "style!=3d"])
    assert [(c.attribute, c.op, c.value) for c in conditions] == [
        ("added_in", ">=", "2015"), ("colour", "=", "light blue"), ("style", "!=", "3d")]
    assert [str(c) for c in parse_where({"colour": ["red", "blue"]})] == ["colour=red", "colour=blue"]
    assert parse_where(None) == []


# -- the CLI -----------------------------------------------------------------------------------------


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_index_then_search_json(shapes_catalog, capsys) -> None:
    store, _ = shapes_catalog
    common = ["--db", store.url, "--catalog", "shapes", "--embedder", "fake"]
    code, out, _ = cli(capsys, "index", *common, "--json")
    assert code == 0 and json.loads(out)["built"] is True and json.loads(out)["items"] == 24
    code, out, _ = cli(capsys, "index", *common, "--json")
    assert json.loads(out)["built"] is False
    code, out, _ = cli(capsys, "search", "green star", "-k", "3", "--where", "style=flat", *common, "--json")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 3
    assert all(set(h) == {"id", "title", "score", "attributes", "image"} for h in hits)
    assert all(h["attributes"]["style"] == "flat" for h in hits)
    code, out, _ = cli(capsys, "search", "green star", *common)
    assert code == 0 and "  1. " in out


def test_cli_index_kind_exact(shapes_catalog, capsys) -> None:
    store, _ = shapes_catalog
    common = ["--db", store.url, "--catalog", "shapes", "--embedder", "fake", "--index-kind", "exact"]
    code, out, _ = cli(capsys, "index", *common, "--json")
    status = json.loads(out)
    assert code == 0 and status["built"] is True
    assert {space["kind"] for space in status["spaces"].values()} == {"exact"}
    code, out, _ = cli(capsys, "search", "green star", "-k", "3", "--where", "style=flat", *common, "--json")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 3 and all(h["attributes"]["style"] == "flat" for h in hits)
    with pytest.raises(SystemExit) as exited:
        main(["search", "red", "--db", store.url, "--catalog", "shapes", "--embedder", "fake", "--index-kind", "annoy"])
    assert exited.value.code == 2 and "argument --index-kind: unknown index kind 'annoy'" in capsys.readouterr().err


def test_cli_search_errors_exit_1_with_a_message(shapes_catalog, capsys, tmp_path: Path) -> None:
    store, _ = shapes_catalog
    common = ["--db", store.url, "--catalog", "shapes", "--embedder", "fake"]
    code, _, err = cli(capsys, "search", "red", "--where", "colr=red", *common)
    assert code == 1 and "unknown attribute 'colr'" in err
    code, _, err = cli(capsys, "search", "--image", str(tmp_path / "none.png"), *common)
    assert code == 1 and "no such file" in err
    code, _, err = cli(capsys, "search", *common)
    assert code == 1 and "empty query" in err
    code, _, err = cli(capsys, "search", "red", "--embedder", "nonsense", "--db", store.url, "--catalog", "shapes")
    assert code == 1 and "unknown text encoder" in err


def test_cli_batch_prints_one_line_per_query_in_order(shapes_catalog, capsys, tmp_path: Path) -> None:
    store, _ = shapes_catalog
    searcher = CatalogSearch.open(*shapes_catalog, "fake")
    image = image_of(searcher, "blue-square-flat")
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n".join([
        json.dumps({"text": "red circle", "k": 2}),
        json.dumps({"image": str(image), "where": {"shape": "square"}}),
        "not json",
        json.dumps({"text": "x", "where": {"nope": "1"}}),
        "",
        json.dumps({"liked": ["green-star-flat"], "k": 1}),
    ]) + "\n")
    code, out, err = cli(capsys, "search", "--batch", str(queries), "-k", "4", "--db", store.url,
                         "--catalog", "shapes", "--embedder", "fake", "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and "2 queries" in err
    assert len(lines) == 5
    assert len(lines[0]) == 2
    assert len(lines[1]) == 4 and all(h["attributes"]["shape"] == "square" for h in lines[1])
    assert lines[1][0]["attributes"]["colour"] == ["blue"]
    assert lines[2]["line"] == 3 and "not JSON" in lines[2]["error"]
    assert lines[3]["line"] == 4 and "unknown attribute 'nope'" in lines[3]["error"]
    assert len(lines[4]) == 1


# -- k is bounded everywhere (k=100,000,000 reached 5.3 GB, or ran until killed in a batch) -------

def store_counts(store) -> dict[str, int]:
    from sqlalchemy import inspect, text

    with store.engine.connect() as connection:
        return {t: connection.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one()
                for t in inspect(connection).get_table_names()}


@pytest.mark.parametrize("k", [0, -3, MAX_K + 1, 100_000_000, True, 2.5])
def test_catalog_search_refuses_k_out_of_bounds(searcher: CatalogSearch, k) -> None:
    query = searcher.query("red")
    with pytest.raises(QueryError, match=rf"k must be between 1 and {MAX_K}, got {k!r}"):
        searcher.search("red", k=k)
    with pytest.raises(QueryError, match=rf"k must be between 1 and {MAX_K}"):
        searcher.search_query(query, k=k)


def test_catalog_search_takes_k_up_to_the_limit(searcher: CatalogSearch) -> None:
    assert len(searcher.search("red", k=MAX_K)) == 24  # the whole catalog, no more


def test_cli_k_is_bounded_while_parsing_before_any_model_loads(shapes_catalog, capsys, monkeypatch) -> None:
    store, _ = shapes_catalog
    before = store_counts(store)
    monkeypatch.setattr(CatalogSearch, "open", classmethod(lambda *a, **k: pytest.fail("a model was loaded")))
    for k in ("100000000", "0", "1001", "lots"):
        with pytest.raises(SystemExit) as exited:
            main(["search", "cat", "-k", k, "--db", store.url, "--catalog", "shapes", "--embedder", "fake"])
        err = capsys.readouterr().err
        assert exited.value.code == 2 and "Traceback" not in err
        assert "argument -k: " + (f"must be between 1 and {MAX_K}, got {k}" if k != "lots"
                                  else "must be a whole number, got 'lots'") in err
    assert store_counts(store) == before


def test_cli_batch_line_with_a_huge_k_is_a_line_error(shapes_catalog, capsys, tmp_path: Path) -> None:
    store, _ = shapes_catalog
    before = store_counts(store)
    queries = tmp_path / "queries.jsonl"
    queries.write_text(json.dumps({"text": "red", "k": 100_000_000}) + "\n" + json.dumps({"text": "red", "k": 2})
                       + "\n" + json.dumps({"text": "red", "k": "5"}) + "\n")
    code, out, err = cli(capsys, "search", "--batch", str(queries), "--db", store.url, "--catalog", "shapes",
                         "--embedder", "fake", "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and len(lines) == 3
    assert lines[0] == {"error": f"k must be between 1 and {MAX_K}, got 100000000", "line": 1}
    assert len(lines[1]) == 2
    assert lines[2] == {"error": f"k must be between 1 and {MAX_K}, got '5'", "line": 3}
    assert f"2 queries of {queries} could not be run (see the error lines; the first, line 1: k must be between " \
           f"1 and {MAX_K}, got 100000000)" in err
    assert store_counts(store) == before


# -- the real offline models ------------------------------------------------------------------------


def test_aligned_embedder_on_a_real_catalog(shapes_catalog) -> None:
    """The default embedder end to end: EfficientNet + MiniLM + the shipped head, three spaces."""
    store, catalog = shapes_catalog
    searcher = CatalogSearch.open(store, catalog, "aligned")
    assert set(searcher.index.spaces) == {"text", "image", "visual"}
    assert searcher.index.spaces["visual"].dim == 1280 and searcher.index.dim == 384
    hits = searcher.search("a red star", k=3)
    assert hits[0].attributes["colour"] == ["red"]
    image = image_of(searcher, "green-triangle-outline")
    by_image = searcher.search(images=[image], k=1)
    assert by_image[0].id == "green-triangle-outline"
    composed = searcher.search("blue", [image], where=["colour=blue"], k=1)
    assert composed[0].attributes["colour"] == ["blue"]


def test_a_cached_index_of_another_kind_is_rebuilt_as_asked(shapes_catalog) -> None:
    store, catalog = shapes_catalog
    embedder = load_embedder("fake")
    flat, status = open_index(store, catalog, embedder)  # auto: flat at this size
    assert status.built and {s.kind for s in flat.spaces.values()} == {"flat"}
    _, status = open_index(store, catalog, embedder, kind="flat")
    assert not status.built  # auto and flat are the same index here: no rebuild
    exact, status = open_index(store, catalog, embedder, kind="exact")
    assert status.built and "the cached index is flat; exact was asked for" in status.reason
    assert {s.kind for s in exact.spaces.values()} == {"exact"}
    _, status = open_index(store, catalog, embedder, kind="exact")
    assert not status.built
