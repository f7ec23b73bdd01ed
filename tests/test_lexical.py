"""The lexical (BM25) space: names and rare words are found, filters hold, and a catalog without
pictures gets no picture spaces and no picture weight."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crs.catalog.demo import open_catalog
from crs.catalog.ingest import IngestOptions, ingest
from crs.catalog_index import lexical_folder, open_index
from crs.search import CatalogSearch
from retrieval.embedder import load_embedder
from retrieval.lexical import LexicalIndex
from retrieval.multimodal import DEFAULT_WEIGHTS, ItemVectors, MultimodalIndex, Query

GENRES = ("drama", "comedy", "crime", "western")
SCHEMA = {"name": "flicks", "attributes": [
    {"name": "genres", "kind": "tags", "values": list(GENRES)},
    {"name": "director", "kind": "tags", "askable": False},
    {"name": "year", "kind": "numeric"},
]}


def write_flicks(folder: Path, director_of_7: str = "Zanzibar Quillfeather") -> Path:
    """24 text-only films; film 7's director is named in no title or description."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"film-{i}", "title": f"Film number {i}",
             "description": f"A {GENRES[i % 4]} film about a family and a town.",
             "attributes": {"genres": [GENRES[i % 4]], "director": [director_of_7 if i == 7 else f"Jo Smith{i}"],
                            "year": 1950 + i}} for i in range(24)]
    rows[12]["title"] = "The Marmalade Lighthouse"  # a rare title word
    (folder / "schema.json").write_text(json.dumps(SCHEMA))
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder / "items.jsonl"


@pytest.fixture
def flicks(tmp_path: Path, store):
    ingest(store, write_flicks(tmp_path / "flicks"), IngestOptions(format="jsonl", catalog="flicks"))
    return store, open_catalog(store, "flicks")


def test_a_name_only_in_an_attribute_is_found_through_the_lexical_space(flicks) -> None:
    searcher = CatalogSearch.open(*flicks, "fake")
    hits = searcher.search("quillfeather", k=3)
    assert hits[0].id == "film-7" and hits[0].parts["lexical"] > 0
    # The dense text space alone does not know the name: the item text holds no director.
    dense_only = MultimodalIndex(searcher.index.spaces)
    assert searcher.hits(dense_only.search(searcher.query("quillfeather"), k=1))[0].id != "film-7"
    rare = searcher.search("a marmalade film", k=1)
    assert rare[0].id == "film-12"


def test_a_text_only_catalog_has_no_picture_spaces_and_no_picture_weight(flicks) -> None:
    searcher = CatalogSearch.open(*flicks, "fake")
    assert set(searcher.index.spaces) == {"text"} and searcher.index.lexical is not None
    folder = searcher.status.folder
    assert sorted(p.name for p in folder.iterdir()) == ["text.faiss", "text.faiss.json"]
    # A text query's weight goes to item text and lexical: an item's own title scores near 1.25.
    best = searcher.search("Film number 3", k=1)[0]
    assert best.id == "film-3"
    w = DEFAULT_WEIGHTS
    total = w.text_to_text + w.text_to_image + w.text_to_lexical
    assert best.parts["text"] > 0.5 and best.score <= total + 1e-5
    assert best.parts["lexical"] == pytest.approx(total * w.text_to_lexical / (w.text_to_text + w.text_to_lexical))
    # The dialogue's "looks like" space answers zero vectors, as items without pictures always had.
    assert not searcher.index.vectors("image", [best.item_id]).any()
    # Reopened from the cache: still text only, nothing rebuilt.
    again = CatalogSearch.open(*flicks, "fake")
    assert not again.status.built and set(again.index.spaces) == {"text"}


def test_filters_and_exclusions_hold_for_lexical_candidates(flicks) -> None:
    searcher = CatalogSearch.open(*flicks, "fake")
    film7 = searcher.item_ids(["film-7"])
    assert searcher.search("quillfeather", where=["genres=drama"], k=24)  # film 7 is a western
    assert "film-7" not in {h.id for h in searcher.search("quillfeather", where=["genres=drama"], k=24)}
    assert "film-7" not in {h.id for h in searcher.search("quillfeather", exclude=film7, k=24)}
    assert searcher.search("quillfeather", where=["year>3000"], k=5) == []
    assert searcher.search("quillfeather", where=["genres=western"], k=1)[0].id == "film-7"
    # Straight on the index: an allowed set without the lexical match never returns it.
    index = searcher.index
    others = np.array([i for i in index.spaces["text"].ids if i != film7[0]], dtype=np.int64)
    assert film7[0] not in {s.id for s in index.search(Query(words="quillfeather"), 5, allowed_ids=others)}
    assert index.search(Query(words="quillfeather"), 5, allowed_ids=np.array([], dtype=np.int64)) == []


def test_words_no_item_has_add_nothing(flicks) -> None:
    searcher = CatalogSearch.open(*flicks, "fake")
    query = searcher.query("family town xylophonist")
    with_words = searcher.index.search(query, k=5)
    assert all(s.parts.get("lexical", 0.0) > 0 for s in with_words)  # "family", "town" match all
    unknown = searcher.query("xylophonist")
    hits = searcher.index.search(unknown, k=5)
    assert hits and all("lexical" not in s.parts for s in hits)


def test_the_lexical_index_is_cached_apart_and_rebuilt_when_the_catalog_changes(flicks, tmp_path: Path) -> None:
    store, catalog = flicks
    embedder = load_embedder("fake")
    _, status = open_index(store, catalog, embedder)
    assert status.built and (lexical_folder("flicks") / "lexical.json").is_file()
    # Only the lexical part missing: it alone is rebuilt, the vector spaces come from the cache.
    for path in lexical_folder("flicks").iterdir():
        path.unlink()
    index, status = open_index(store, catalog, embedder)
    assert status.built and status.reason.startswith("lexical index:") and index.lexical is not None
    assert status.short_reason == "lexical index: no cached index yet"
    # A new director: the fingerprint changes, both parts are rebuilt and the new name is found.
    ingest(store, write_flicks(tmp_path / "flicks", "Ottoline Brackenbury"), IngestOptions(format="jsonl", catalog="flicks"))
    searcher = CatalogSearch.open(store, catalog, embedder)
    assert searcher.status.built and "built for other data" in searcher.status.reason
    assert searcher.search("brackenbury", k=1)[0].id == "film-7"
    assert not any(h.parts.get("lexical") for h in searcher.search("quillfeather", k=3))


def test_lexical_index_round_trip_and_corrupt_files(tmp_path: Path) -> None:
    from retrieval.vector_index import IndexFileError

    index = LexicalIndex.build(np.array([30, 10, 20]), ["red apple", "Café Müller", "blue shirt"])
    assert index.scores("cafe")[0] == 1.0  # rows in id order; accents folded
    assert not index.scores("the of").any()  # stop words only: no query
    index.save(tmp_path / "lex", {"catalog": "c", "fingerprint": "f"})
    loaded = LexicalIndex.load(tmp_path / "lex", {"catalog": "c", "fingerprint": "f"})
    assert loaded.scores("apples").tolist() == index.scores("apple").tolist()  # plural "s" cut
    with pytest.raises(IndexFileError, match="built for other data"):
        LexicalIndex.load(tmp_path / "lex", {"catalog": "c", "fingerprint": "g"})
    (tmp_path / "lex" / "ids.npy").write_bytes(b"garbage")
    with pytest.raises(IndexFileError, match="corrupt"):
        LexicalIndex.load(tmp_path / "lex", {"catalog": "c", "fingerprint": "f"})


def test_fusion_without_pictures_gives_the_picture_weight_to_the_spaces_there() -> None:
    rng = np.random.default_rng(0)
    ids = np.arange(10, 20, dtype=np.int64)
    text = rng.normal(size=(10, 8)).astype(np.float32)
    lexical = LexicalIndex.build(ids, [f"item {i}" for i in ids])
    no_pictures = MultimodalIndex.build(ItemVectors(ids, text, None), "exact", lexical)
    q = text[0] / np.linalg.norm(text[0])
    targets = no_pictures.targets(Query(text=q))  # no words: all of the text weight on item text
    assert set(targets) == {"text"} and np.linalg.norm(targets["text"]) == pytest.approx(1.0)
    with_words = no_pictures.targets(Query(text=q, words="item 10"))
    assert np.linalg.norm(with_words["text"]) == pytest.approx(0.5 * 1.25 / 0.75)
    assert with_words["lexical"].max() == pytest.approx(0.25 * 1.25 / 0.75)
    # An image query has nothing to compare with: no results, not zero-scored ones.
    assert no_pictures.search(Query(images=q[None]), k=3) == []
    with pytest.raises(ValueError, match="visual vectors need image vectors"):
        ItemVectors(ids, text, None, text)


@pytest.mark.parametrize("words", ["a", "7", "a 7", "x"])
def test_one_letter_or_digit_only_messages_match_nothing_instead_of_failing(words: str) -> None:
    # bm25s turns such a text into an empty token that its score table lacks (it raised ValueError).
    index = LexicalIndex.build(np.array([1, 2, 3]), ["a red apple", "film 7 of the year", "x marks the spot"])
    assert index.scores(words).shape == (3,)
    assert index.scores(f"{words} apple")[0] == 1.0
