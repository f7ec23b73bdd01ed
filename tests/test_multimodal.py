"""The multimodal index on hand-made vectors, where every right answer can be worked out."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval.exact_index import ExactIndex
from retrieval.multimodal import (
    DEFAULT_WEIGHTS,
    SPACES,
    EmptyQueryError,
    FusionWeights,
    ItemVectors,
    MultimodalIndex,
    Query,
)
from retrieval.vector_index import IndexFileError

# Joint space: dims 0-3 are concepts (cat, dog, sun, tree), dims 4-5 styles (flat, 3d).
CONCEPTS = ["cat", "dog", "sun", "tree"]
STYLES = ["flat", "3d"]


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def joint(concept: str | None = None, style: str | None = None) -> np.ndarray:
    v = np.zeros(6, dtype=np.float32)
    if concept:
        v[CONCEPTS.index(concept)] = 1.0
    if style:
        v[4 + STYLES.index(style)] = 0.8
    return _unit(v)


def catalog_vectors() -> tuple[ItemVectors, dict[int, tuple[str, str]]]:
    """8 items: every concept in both styles. Ids are 100 + row, to catch id/row mix-ups."""
    rows = [(c, s) for c in CONCEPTS for s in STYLES]
    ids = np.arange(100, 100 + len(rows), dtype=np.int64)
    text = np.stack([joint(c, s) for c, s in rows])
    image = np.stack([joint(c, s) for c, s in rows])
    # Raw visual features only know the style (how it looks) plus some per-item noise.
    rng = np.random.default_rng(0)
    visual = np.stack([_unit(np.r_[[1.0, 0.0] if s == "flat" else [0.0, 1.0], rng.normal(0, 0.05, 6)])
                       for _, s in rows])
    return ItemVectors(ids, text, image, visual), dict(zip(ids.tolist(), rows))


@pytest.fixture(params=["flat", "hnsw", "exact"])
def index(request) -> MultimodalIndex:
    vectors, _ = catalog_vectors()
    return MultimodalIndex.build(vectors, request.param)


def labels(hits) -> list[tuple[str, str]]:
    _, names = catalog_vectors()
    return [names[h.id] for h in hits]


def test_text_query_finds_the_concept(index: MultimodalIndex) -> None:
    hits = index.search(Query(text=joint("sun")), k=2)
    assert sorted(labels(hits)) == [("sun", "3d"), ("sun", "flat")]


def test_fused_score_is_the_documented_weighted_sum(index: MultimodalIndex) -> None:
    vectors, _ = catalog_vectors()
    t = joint("cat", "3d")
    image_query = joint("dog", "flat")
    visual_query = vectors.visual[2]
    hits = index.search(Query(text=t, images=image_query[None], visual=visual_query[None]), k=8)
    w = DEFAULT_WEIGHTS
    for hit in hits:
        row = hit.id - 100
        expected = (w.modifier * (w.text_to_text * t @ vectors.text[row] + w.text_to_image * t @ vectors.image[row])
                    + w.image_to_image * image_query @ vectors.image[row]
                    + w.image_to_visual * _unit(visual_query) @ vectors.visual[row])
        assert hit.score == pytest.approx(float(expected), abs=1e-5)
        assert sum(hit.parts.values()) == pytest.approx(hit.score, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_composed_query_keeps_the_concept_and_takes_the_style_from_the_text(index: MultimodalIndex) -> None:
    # "like this (a flat cat) but in 3D": the image gives the concept, the text the change.
    vectors, names = catalog_vectors()
    flat_cat = [i for i, v in names.items() if v == ("cat", "flat")][0]
    image = vectors.image[flat_cat - 100][None]
    visual = vectors.visual[flat_cat - 100][None]
    alone = index.search(Query(images=image, visual=visual), k=1)
    assert labels(alone) == [("cat", "flat")]
    composed = index.search(Query(text=joint(None, "3d"), images=image, visual=visual), k=1)
    assert labels(composed) == [("cat", "3d")]


def test_disliked_items_push_similar_items_down_and_liked_pull(index: MultimodalIndex) -> None:
    vectors, names = catalog_vectors()
    by_label = {v: k for k, v in names.items()}
    text = joint("cat")  # equally close to both cats
    plain = index.search(Query(text=text), k=2)
    assert {names[h.id] for h in plain} == {("cat", "flat"), ("cat", "3d")}
    disliked = index.search(Query(text=text, disliked=(by_label[("dog", "3d")],)), k=1)
    assert labels(disliked) == [("cat", "flat")]  # away from the 3D look of the disliked dog
    liked = index.search(Query(text=text, liked=(by_label[("sun", "3d")],)), k=1)
    assert labels(liked) == [("cat", "3d")]


def test_liked_items_alone_are_a_query(index: MultimodalIndex) -> None:
    _, names = catalog_vectors()
    tree_3d = [i for i, v in names.items() if v == ("tree", "3d")][0]
    hits = index.search(Query(liked=(tree_3d,)), k=1, exclude_ids=[tree_3d])
    # Worked out by hand: the other 3D items share the look (visual ~1, joint 0.39), the flat
    # tree only the concept (joint 0.61, visual ~0): 0.5*(0.39+0.39+1) > 0.5*(0.61+0.61).
    assert labels(hits)[0][1] == "3d"
    assert tree_3d not in [h.id for h in hits]


def test_filters_restrict_and_an_empty_filter_returns_nothing(index: MultimodalIndex) -> None:
    allowed = np.array([100, 101, 106], dtype=np.int64)  # both cats and the flat tree
    hits = index.search(Query(text=joint("tree")), k=5, allowed_ids=allowed)
    assert {h.id for h in hits} <= set(allowed.tolist())
    assert hits[0].id == 106
    assert index.search(Query(text=joint("tree")), k=5, allowed_ids=np.array([], dtype=np.int64)) == []
    assert index.search(Query(text=joint("tree")), k=5, allowed_ids=np.array([999], dtype=np.int64)) == []


def test_exclude_ids_drops_items_and_still_fills_k(index: MultimodalIndex) -> None:
    first = index.search(Query(text=joint("dog")), k=3)
    again = index.search(Query(text=joint("dog")), k=3, exclude_ids=[first[0].id])
    assert first[0].id not in [h.id for h in again]
    assert len(again) == 3


def test_empty_and_malformed_queries_are_clear_errors(index: MultimodalIndex) -> None:
    with pytest.raises(EmptyQueryError, match="empty query"):
        index.search(Query(), k=3)
    with pytest.raises(EmptyQueryError):
        index.search(Query(disliked=(100,)), k=3)  # only a dislike says nothing to look for
    with pytest.raises(ValueError, match="expected"):
        index.search(Query(text=np.ones(5, dtype=np.float32)), k=3)
    with pytest.raises(ValueError, match="NaN"):
        index.search(Query(text=np.full(6, np.nan, dtype=np.float32)), k=3)
    with pytest.raises(KeyError, match="not in the index"):
        index.search(Query(text=joint("cat"), liked=(5,)), k=3)
    with pytest.raises(ValueError, match="k must be positive"):
        index.search(Query(text=joint("cat")), k=0)


def test_weights_change_the_balance(index: MultimodalIndex) -> None:
    vectors, names = catalog_vectors()
    flat_cat = [i for i, v in names.items() if v == ("cat", "flat")][0]
    q = Query(text=joint(None, "3d"), images=vectors.image[flat_cat - 100][None])
    text_heavy = index.search(q, k=1, weights=FusionWeights(modifier=10.0))
    assert names[text_heavy[0].id][1] == "3d"
    image_heavy = index.search(q, k=1, weights=FusionWeights(modifier=0.0))
    assert names[image_heavy[0].id] == ("cat", "flat")


def test_without_a_visual_space_the_joint_space_takes_the_image_weight() -> None:
    vectors, _ = catalog_vectors()
    index = MultimodalIndex.build(ItemVectors(vectors.ids, vectors.text, vectors.image), "flat")
    assert not index.has_visual
    targets = index.targets(Query(images=joint("cat")[None]))
    assert set(targets) == {"text", "image"}
    assert np.linalg.norm(targets["image"]) == pytest.approx(
        DEFAULT_WEIGHTS.image_to_image + DEFAULT_WEIGHTS.image_to_visual, abs=1e-6)


def test_save_load_round_trip_and_stale_or_corrupt_files(tmp_path, index: MultimodalIndex) -> None:
    meta = {"catalog": "toy", "fingerprint": "abc", "embedder": "e1"}
    index.save(tmp_path / "idx", meta)
    loaded = MultimodalIndex.load(tmp_path / "idx", meta, visual=True)
    q = Query(text=joint("sun", "flat"))
    assert [h.id for h in loaded.search(q, k=4)] == [h.id for h in index.search(q, k=4)]
    with pytest.raises(IndexFileError, match="built for other data"):
        MultimodalIndex.load(tmp_path / "idx", {**meta, "fingerprint": "changed"}, visual=True)
    path = tmp_path / "idx" / "image.faiss"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IndexFileError, match="truncated"):
        MultimodalIndex.load(tmp_path / "idx", meta, visual=True)
    with pytest.raises(IndexFileError):
        MultimodalIndex.load(tmp_path / "missing", meta, visual=True)


def test_item_vectors_reject_mismatched_shapes() -> None:
    vectors, _ = catalog_vectors()
    with pytest.raises(ValueError, match="share one space"):
        ItemVectors(vectors.ids, vectors.text, np.zeros((8, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        ItemVectors(vectors.ids, vectors.text[:3], vectors.image)


def test_the_exact_kind_gives_the_flat_kinds_answers_and_survives_a_reload(tmp_path) -> None:
    vectors, names = catalog_vectors()
    flat = MultimodalIndex.build(vectors, "flat")
    exact = MultimodalIndex.build(vectors, "exact")
    assert {name: type(space) for name, space in exact.spaces.items()} == dict.fromkeys(SPACES, ExactIndex)
    by_label = {v: k for k, v in names.items()}
    queries = [Query(text=joint("sun")), Query(text=joint("cat", "3d"), images=vectors.image[2][None],
                                                visual=vectors.visual[2][None]),
               Query(liked=(by_label[("tree", "3d")],), disliked=(by_label[("dog", "flat")],))]
    exact.save(tmp_path / "idx", {"catalog": "toy"})
    reloaded = MultimodalIndex.load(tmp_path / "idx", {"catalog": "toy"}, visual=True)
    assert {space.kind for space in reloaded.spaces.values()} == {"exact"}
    for query in queries:
        for allowed in (None, np.array([100, 103, 104, 107], dtype=np.int64)):
            want = flat.search(query, k=5, allowed_ids=allowed)
            for index in (exact, reloaded):
                got = index.search(query, k=5, allowed_ids=allowed)
                assert [h.id for h in got] == [h.id for h in want]
                assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5)
