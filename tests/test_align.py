"""The aligned joint space: training with known answers, Matryoshka prefixes, saving and loading,
the feature cache, the aligned encoders (through the shared encoder contracts) and the CLI.

Long on purpose: the aligned space's whole contract (training, prefixes, cache, encoders, CLI) in one place.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from retrieval.align import (
    AlignConfig,
    AlignedProjection,
    AlignWeightsError,
    AlignWeightsMissing,
    concept_codes,
    cross_style_queries,
    evaluate_alignment,
    group_split,
    load_alignment,
    matryoshka_group_loss,
    matryoshka_infonce,
    recall_at_k,
    save_alignment,
    train_alignment,
)
from retrieval.encoders import (
    FakeImageEncoder,
    FakeTextEncoder,
    load_image_encoder,
    load_text_encoder,
)
from retrieval.features import FeatureItem, cache_file, cached_encode, compute_item_features
from tests.test_encoders import ImageEncoderContract, TextEncoderContract, scene

FIXTURES = Path(__file__).parent / "fixtures"


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def synthetic(n: int = 1200, latent: int = 16, text_dim: int = 64, image_dim: int = 96,
              noise: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Texts and images that share a ``latent``-d meaning: images are a noisy linear map of it,
    texts another linear map. The known answer: each image's nearest text is its own."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, latent))
    text = unit(z @ rng.normal(size=(latent, text_dim)))
    image = unit(z @ rng.normal(size=(latent, image_dim)) + noise * rng.normal(size=(n, image_dim)))
    return image, text


SMALL = AlignConfig(image_dim=96, text_dim=64, hidden=64, dims=(16, 32, 64), epochs=15, batch_size=128,
                    lr=1e-3, dropout=0.1, input_dropout=0.1, temperature=0.05, group_weight=0.0, image_spec="fake", image_name="fake-image-96", text_spec="fake", text_name="fake-text-64")


@pytest.fixture(scope="module")
def trained():
    image, text = synthetic()
    train_idx, held_idx = group_split([str(i) for i in range(len(image))], 0.1, seed=0)
    result = train_alignment(image[train_idx], text[train_idx], SMALL, seed=0)
    return result, image, text, held_idx


# -- training ------------------------------------------------------------------------------------


def test_known_answer_images_find_their_own_text(trained):
    result, image, text, held = trained
    metrics = evaluate_alignment(result.projection, image, text, held)
    chance_at_1 = 1 / len(image)
    full = metrics["image_to_text"]["64"]
    assert full["queries"] == len(held)
    assert full["recall@1"] > 0.5 > 100 * chance_at_1  # far above chance, on UNSEEN pairs
    assert metrics["text_to_image"]["64"]["recall@10"] > 0.9
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_matryoshka_prefix_works_on_its_own(trained):
    result, image, text, held = trained
    metrics = evaluate_alignment(result.projection, image, text, held)
    chance_at_10 = 10 / len(image)
    for dims in ("16", "32"):
        assert metrics["text_to_image"][dims]["recall@10"] > 0.5 > 20 * chance_at_10
    prefix = result.projection.project_images(image[:5], dims=16)
    assert prefix.shape == (5, 16)
    np.testing.assert_allclose(np.linalg.norm(prefix, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="trained prefixes"):
        result.projection.project_images(image[:5], dims=20)


def test_untrained_head_is_near_chance():
    image, text = synthetic(n=400)
    untrained = train_alignment(image, text, SMALL.replace(epochs=1, lr=1e-9, adapter_lr=1e-9), seed=0)
    metrics = evaluate_alignment(untrained.projection, image, text, np.arange(400))
    assert metrics["text_to_image"]["64"]["recall@1"] < 0.05


def test_same_seed_same_weights_other_seed_other_weights():
    image, text = synthetic(n=300)
    config = SMALL.replace(epochs=2)
    a = train_alignment(image, text, config, seed=3).projection
    b = train_alignment(image, text, config, seed=3).projection
    c = train_alignment(image, text, config, seed=4).projection
    assert a.sha256 == b.sha256
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    assert c.sha256 != a.sha256


def test_training_leaves_the_global_rng_alone():
    image, text = synthetic(n=100)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_alignment(image, text, SMALL.replace(epochs=1), seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_text_adapter_starts_as_the_identity():
    image, text = synthetic(n=50)
    untouched = train_alignment(image, text, SMALL.replace(epochs=1, adapter_lr=0.0), seed=0)
    np.testing.assert_allclose(untouched.projection.project_texts(text), text, atol=1e-6)


def test_duplicate_texts_are_not_negatives():
    # two identical pairs: without the mask each is the other's negative (loss log 2 per
    # direction and prefix); with it the loss is zero, nothing is pushed apart
    image = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    text = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    log_scale = torch.tensor(0.0)
    same = torch.tensor([[False, True], [True, False]])
    unmasked = matryoshka_infonce(image, text, log_scale, [1, 2])
    masked = matryoshka_infonce(image, text, log_scale, [1, 2], same)
    assert float(unmasked) == pytest.approx(2 * np.log(2), abs=1e-6)
    assert float(masked) == pytest.approx(0.0, abs=1e-6)


def test_group_loss_known_answer():
    # images 0 and 1 are one group, 2 is alone: each anchor's only positive scores 1, the
    # negative 0, so the loss is -log(e / (e + 1)) per prefix; a lone item is no anchor
    image = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    loss = matryoshka_group_loss(image, torch.tensor(0.0), [2], torch.tensor([0, 0, -1]))
    assert float(loss) == pytest.approx(np.log1p(np.exp(-1.0)), abs=1e-6)
    none = matryoshka_group_loss(image, torch.tensor(0.0), [2], torch.tensor([-1, -1, -1]))
    assert float(none) == 0.0


def test_group_term_brings_one_concept_in_other_styles_together():
    """Known answer: 3 "styles" of 150 "concepts"; a style shifts both image and text. Held-out
    concepts found across styles: with the group term nearly always, without it far less."""
    rng = np.random.default_rng(0)
    concepts, styles = 150, 3
    z = np.concatenate([np.repeat(rng.normal(size=(concepts, 8)), styles, 0),
                        np.tile(1.5 * rng.normal(size=(styles, 8)), (concepts, 1))], axis=1)
    groups = [f"c{i // styles}" for i in range(len(z))]
    style = [f"s{i % styles}" for i in range(len(z))]
    text = unit(z @ rng.normal(size=(16, 64)))
    image = unit(z @ rng.normal(size=(16, 96)) + 0.5 * rng.normal(size=(len(z), 96)))
    train, held = group_split(groups, 0.2, seed=0)
    recall = {}
    for weight in (0.0, 1.0):
        config = SMALL.replace(group_weight=weight, epochs=10)
        result = train_alignment(image[train], text[train], config, seed=0, groups=[groups[i] for i in train])
        metrics = evaluate_alignment(result.projection, image, text, held, concepts=groups, styles=style)
        recall[weight] = metrics["cross_style"]["64"]["recall@1"]
    assert recall[1.0] > 0.9 and recall[1.0] > recall[0.0] + 0.3
    with pytest.raises(ValueError, match="group"):
        train_alignment(image, text, SMALL.replace(group_weight=1.0))


def test_training_with_duplicate_texts_runs_and_uses_keys():
    image, text = synthetic(n=200)
    text[1] = text[0]  # two drawings with the same title
    keys = [f"t{i}" for i in range(200)]
    keys[1] = keys[0]
    result = train_alignment(image, text, SMALL.replace(epochs=2), seed=0, text_keys=keys)
    assert np.isfinite(result.history[-1]["loss"])
    with pytest.raises(ValueError, match="text keys"):
        train_alignment(image, text, SMALL, text_keys=keys[:5])


def test_bad_inputs_and_config():
    image, text = synthetic(n=20)
    with pytest.raises(ValueError, match="shape"):
        train_alignment(image[:, :10], text, SMALL)
    with pytest.raises(ValueError, match="rows"):
        train_alignment(image[:10], text, SMALL)
    bad = image.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_alignment(bad, text, SMALL)
    with pytest.raises(ValueError, match="last of dims"):
        AlignConfig(text_dim=384, dims=(64, 128))
    with pytest.raises(ValueError, match="increasing"):
        AlignConfig(dims=(128, 64, 384))
    with pytest.raises(ValueError, match="unknown AlignConfig keys"):
        AlignConfig.from_json({"hiden": 3})
    assert AlignConfig.from_json(SMALL.to_json()) == SMALL


# -- the split and the metrics -------------------------------------------------------------------


def test_group_split_keeps_groups_whole_and_is_seeded():
    groups = [f"concept:{i // 3}" for i in range(300)] + [f"item:{i}" for i in range(700)]
    train, held = group_split(groups, 0.1, seed=0)
    assert len(train) + len(held) == 1000 and not set(train) & set(held)
    assert 100 <= len(held) <= 103  # ~10% of ITEMS, the last group taken whole
    assert not {groups[i] for i in train} & {groups[i] for i in held}
    again = group_split(groups, 0.1, seed=0)
    assert np.array_equal(again[1], held)
    assert not np.array_equal(group_split(groups, 0.1, seed=1)[1], held)
    # the same items in another order hold out the same groups
    order = np.random.default_rng(5).permutation(1000)
    _, held_shuffled = group_split([groups[i] for i in order], 0.1, seed=0)
    assert {groups[order[i]] for i in held_shuffled} == {groups[i] for i in held}


def test_recall_at_k_known_answers():
    gallery = np.eye(4, dtype=np.float32)
    queries = np.array([[1, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 0, 0, 1]], dtype=np.float32)
    # query 1 wants item 1, but item 0 scores higher: rank 1 -> miss at 1, hit at 2
    out = recall_at_k(queries, gallery, np.array([0, 1, 3]), np.arange(4), ks=(1, 2))
    assert out == {"recall@1": pytest.approx(2 / 3), "recall@2": 1.0, "queries": 3}
    # excluding the query's own "style" removes targets too: a query with none left is not counted
    styles = np.array([0, 1, 1, 1])
    out = recall_at_k(queries[:1], gallery, np.array([0]), np.array([0, 0, 1, 2]), ks=(1,),
                      query_exclude=np.array([0]), gallery_exclude=styles)
    assert out == {"recall@1": 1.0, "queries": 1}  # item 1 (same concept, other style) is found
    none_left = recall_at_k(queries[:1], gallery, np.array([0]), np.array([0, 5, 6, 7]), ks=(1,),
                            query_exclude=np.array([0]), gallery_exclude=styles)
    assert none_left == {"recall@1": None, "queries": 0}


def test_cross_style_queries_need_the_concept_in_another_style():
    concepts = ["a", "a", "b", None, "c", "c"]
    styles = ["flat", "3d", "flat", "flat", "flat", "flat"]
    assert cross_style_queries(concepts, styles).tolist() == [0, 1]
    assert cross_style_queries(concepts, styles, [False, True, True, True, True, True]).tolist() == [1]
    codes = concept_codes(concepts)
    assert codes[0] == codes[1] and codes[4] == codes[5] and len(set(codes.tolist())) == 4


# -- saving and loading ----------------------------------------------------------------------------


def test_save_load_round_trip(trained, tmp_path):
    result, image, text, _ = trained
    out = save_alignment(result.projection, tmp_path / "align", {"seed": 0, "note": "x"})
    meta = json.loads((out / "align.json").read_text())
    assert meta["weights_sha256"] == result.projection.sha256 and meta["note"] == "x"
    assert meta["config"] == SMALL.to_json()
    loaded = load_alignment(out)
    assert loaded.sha256 == result.projection.sha256 and loaded.config == SMALL
    np.testing.assert_array_equal(loaded.project_images(image[:7]), result.projection.project_images(image[:7]))
    np.testing.assert_array_equal(loaded.project_texts(text[:7], 16), result.projection.project_texts(text[:7], 16))
    assert load_alignment(out / "head.safetensors").sha256 == loaded.sha256


def test_load_missing(tmp_path):
    with pytest.raises(AlignWeightsMissing, match="crs train-align"):
        load_alignment(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError, for callers that catch that
        load_alignment(tmp_path)


@pytest.mark.parametrize("garbage", [b"", b"\x00" * 3, b"not safetensors at all, just text"])
def test_load_corrupt(tmp_path, garbage):
    (tmp_path / "head.safetensors").write_bytes(garbage)
    with pytest.raises(AlignWeightsError, match="corrupt"):
        load_alignment(tmp_path)


def test_load_truncated(trained, tmp_path):
    out = save_alignment(trained[0].projection, tmp_path)
    data = (out / "head.safetensors").read_bytes()
    (out / "head.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(AlignWeightsError, match="corrupt"):
        load_alignment(out)


def test_load_mismatched_tensors_and_metadata(trained, tmp_path):
    from safetensors.torch import save_file

    state = {k: v.half() for k, v in trained[0].projection.model.state_dict().items()}
    meta = {"format": "1", "config": json.dumps(SMALL.replace(hidden=32).to_json())}
    save_file(state, tmp_path / "head.safetensors", metadata=meta)
    with pytest.raises(AlignWeightsError, match="do not match its config"):
        load_alignment(tmp_path)
    save_file(state, tmp_path / "head.safetensors", metadata={"something": "else"})
    with pytest.raises(AlignWeightsError, match="not aligned-space weights"):
        load_alignment(tmp_path)
    save_file(state, tmp_path / "head.safetensors", metadata={"format": "1", "config": '{"hidden": "big"}'})
    with pytest.raises(AlignWeightsError, match="bad config"):
        load_alignment(tmp_path)


def test_load_weights_replaced_behind_align_json(trained, tmp_path):
    image, text = synthetic(n=100)
    other = train_alignment(image, text, SMALL.replace(epochs=1), seed=9).projection
    save_alignment(trained[0].projection, tmp_path)
    (tmp_path / "head.safetensors").write_bytes(other.to_bytes())
    with pytest.raises(AlignWeightsError, match="does not match .*align.json"):
        load_alignment(tmp_path)


# -- the feature cache -----------------------------------------------------------------------------


def _items(tmp_path: Path, n: int = 5) -> list[FeatureItem]:
    items = []
    for i in range(n):
        path = tmp_path / f"img{i}.png"
        scene(i, size=48).save(path)
        items.append(FeatureItem(f"k{i}", path, f"item number {i}"))
    return items


def test_features_are_cached_and_reused(tmp_path):
    items = _items(tmp_path)
    image_enc, text_enc = FakeImageEncoder(), FakeTextEncoder(dim=16)
    cache = tmp_path / "cache"
    first = compute_item_features(items, image_enc, text_enc, cache)
    assert (first.computed_images, first.computed_texts) == (5, 5)
    assert first.image.shape == (5, 64) and first.text.shape == (5, 16) and first.keys == [i.key for i in items]
    np.testing.assert_allclose(first.image, image_enc.encode([i.image for i in items]), atol=1e-6)
    again = compute_item_features(items, image_enc, text_enc, cache)
    assert (again.computed_images, again.computed_texts) == (0, 0)
    np.testing.assert_array_equal(again.image, first.image)
    assert again.inputs_digest() == first.inputs_digest()
    # one changed text, one changed image: only those are encoded again
    items[2] = FeatureItem("k2", items[2].image, "a new description")
    scene(99, size=48).save(items[4].image)
    changed = compute_item_features(items, image_enc, text_enc, cache)
    assert (changed.computed_images, changed.computed_texts) == (1, 1)
    assert changed.inputs_digest() != first.inputs_digest()
    np.testing.assert_allclose(changed.text, text_enc.encode([i.text for i in items]), atol=1e-6)


def test_corrupt_or_foreign_cache_is_recomputed(tmp_path):
    items = _items(tmp_path, 3)
    cache = tmp_path / "cache"
    text_enc = FakeTextEncoder(dim=16)
    first = compute_item_features(items, FakeImageEncoder(), text_enc, cache)
    path = cache_file(cache, text_enc.name)
    path.write_bytes(b"PK\x03\x04 broken zip")
    again = compute_item_features(items, FakeImageEncoder(), text_enc, cache)
    assert again.computed_texts == 3 and again.computed_images == 0
    np.testing.assert_array_equal(again.text, first.text)
    # a cache file holding another encoder's vectors (same file name forced) is not trusted
    other = FakeTextEncoder(dim=8)
    other.name = text_enc.name
    rows = cached_encode(other, [i.text for i in items], ["h0", "h1", "h2"], path)
    assert rows.computed == 3 and rows.vectors.shape == (3, 8)


def test_cache_names_and_errors(tmp_path):
    assert cache_file(tmp_path, "clip:/a b").name != cache_file(tmp_path, "clip:/a_b").name
    items = _items(tmp_path, 2)
    with pytest.raises(ValueError, match="duplicate item key"):
        compute_item_features([items[0], items[0]], FakeImageEncoder(), FakeTextEncoder(), None)
    with pytest.raises(ValueError, match="empty text"):
        compute_item_features([FeatureItem("x", items[0].image, "  ")], FakeImageEncoder(), FakeTextEncoder(), None)
    from retrieval.images import ImageLoadError

    with pytest.raises(ImageLoadError, match="not found"):
        compute_item_features([FeatureItem("x", tmp_path / "gone.png", "t")], FakeImageEncoder(),
                              FakeTextEncoder(), None)


def test_classifying_encoder_stores_labels(tmp_path):
    from retrieval.encoders.efficientnet import ImageNetLabel

    class Labelled(FakeImageEncoder):
        def encode_and_classify(self, images, top=5, *, batch_size=None):
            vectors = self.encode(images)
            return vectors, [[ImageNetLabel(int(v.argmax()) + j, "x", 0.5 / (j + 1)) for j in range(top)]
                             for v in vectors]

    items = _items(tmp_path, 3)
    first = compute_item_features(items, Labelled(), FakeTextEncoder(), tmp_path / "c")
    assert first.label_ids.shape == (3, 5) and first.label_probs[0, 0] == pytest.approx(0.5)
    again = compute_item_features(items, Labelled(), FakeTextEncoder(), tmp_path / "c")
    assert again.computed_images == 0
    np.testing.assert_array_equal(again.label_ids, first.label_ids)


# -- the aligned encoders --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    """Real-sized (1280 -> 384) weights from a few steps on random pairs: the encoders' plumbing is
    real, the weights are not worth anything."""
    rng = np.random.default_rng(0)
    image, text = unit(rng.normal(size=(64, 1280))), unit(rng.normal(size=(64, 384)))
    result = train_alignment(image, text, AlignConfig(hidden=16, epochs=1, batch_size=32, group_weight=0.0),
                             seed=0)
    return save_alignment(result.projection, tmp_path_factory.mktemp("align"))


@pytest.fixture(scope="module")
def tiny_projection(tiny_weights) -> AlignedProjection:
    return load_alignment(tiny_weights)


class TestAlignedText(TextEncoderContract):
    @pytest.fixture(autouse=True)
    def _weights(self, tiny_weights):
        self.weights = tiny_weights

    def _get_encoder(self):
        return load_text_encoder(f"aligned:{self.weights}")

    def test_identity(self, tiny_projection):
        encoder = self._get_encoder()
        assert encoder.dim == 384
        assert encoder.name == f"aligned-{tiny_projection.short_hash}-text"

    def test_is_base_then_adapter(self, tiny_projection):
        encoder = self._get_encoder()
        expected = tiny_projection.project_texts(load_text_encoder("minilm").encode(["a red apple"]))
        np.testing.assert_allclose(encoder.encode(["a red apple"]), expected, atol=1e-5)


class TestAlignedTextPrefix(TextEncoderContract):
    @pytest.fixture(autouse=True)
    def _weights(self, tiny_weights):
        self.weights = tiny_weights

    def _get_encoder(self):
        from retrieval.encoders.aligned import AlignedTextEncoder

        return AlignedTextEncoder(self.weights, dims=64)

    def test_prefix_is_the_renormalised_start_of_the_full_vector(self):
        from retrieval.encoders.aligned import AlignedTextEncoder

        full = AlignedTextEncoder(self.weights).encode(TEXT := ["a red apple", "a racing car"])
        prefix = self._get_encoder().encode(TEXT)
        assert prefix.shape == (2, 64) and self._get_encoder().name.endswith("-text-d64")
        np.testing.assert_allclose(prefix, unit(full[:, :64]), atol=1e-5)


class TestAlignedImage(ImageEncoderContract):
    @pytest.fixture(autouse=True)
    def _weights(self, tiny_weights):
        self.weights = tiny_weights

    def _get_encoder(self):
        return load_image_encoder(f"aligned:{self.weights}")

    def test_identity_and_one_pass_features(self, tiny_projection):
        encoder = self._get_encoder()
        assert encoder.dim == 384
        assert encoder.name == f"aligned-{tiny_projection.short_hash}-image"
        images = [scene(1), scene(2)]
        raw, projected = encoder.encode_with_features(images)
        np.testing.assert_allclose(raw, load_image_encoder("efficientnet-lite0").encode(images), atol=1e-5)
        np.testing.assert_allclose(projected, encoder.encode(images), atol=1e-5)
        np.testing.assert_allclose(encoder.project(raw), projected, atol=1e-6)


class TestAlignedImagePrefix(ImageEncoderContract):
    @pytest.fixture(autouse=True)
    def _weights(self, tiny_weights):
        self.weights = tiny_weights

    def _get_encoder(self):
        from retrieval.encoders.aligned import AlignedImageEncoder

        return AlignedImageEncoder(self.weights, dims=128)

    def test_dim(self):
        assert self._get_encoder().dim == 128 and self._get_encoder().name.endswith("-image-d128")


def test_aligned_encoders_share_weights_and_space(tiny_weights):
    from retrieval.encoders.aligned import aligned_encoders

    text, image = aligned_encoders(tiny_weights, dims=64)
    assert text.projection is image.projection and text.dim == image.dim == 64
    score = float(text.encode(["a red apple"])[0] @ image.encode([scene(1)])[0])
    assert -1.0 <= score <= 1.0


def test_aligned_encoder_errors(tiny_weights, tmp_path):
    from retrieval.encoders.aligned import AlignedImageEncoder, AlignedTextEncoder

    with pytest.raises(AlignWeightsMissing, match="no aligned-space weights"):
        load_image_encoder(f"aligned:{tmp_path / 'missing'}")
    with pytest.raises(AlignWeightsError, match="trained on image features of 'efficientnet-lite0-max'"):
        AlignedImageEncoder(tiny_weights, base=FakeImageEncoder())
    with pytest.raises(AlignWeightsError, match="text features of 'minilm-l6-v2'"):
        AlignedTextEncoder(tiny_weights, base=FakeTextEncoder())
    with pytest.raises(ValueError, match="trained prefixes"):
        AlignedTextEncoder(tiny_weights, dims=100)


# -- the CLI -----------------------------------------------------------------------------------


def test_train_align_cli_on_the_fixture_catalog(tmp_path, catalog_dir, capsys):
    from crs.catalog.ingest import ingest
    from crs.cli import main
    from crs.store import open_store

    url = f"sqlite:///{tmp_path / 'crs.db'}"
    ingest(open_store(url), catalog_dir / "items.jsonl")
    out, cache = tmp_path / "align", tmp_path / "cache"
    args = ["train-align", "--db", url, "--catalog", "tiny", "--out", str(out), "--epochs", "3",
            "--cache", str(cache), "--seed", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "text_to_image" in printed and "weights" in printed
    meta = json.loads((out / "align.json").read_text())
    assert meta["catalog"] == "tiny" and meta["items"] == 4 and meta["seed"] == 1
    assert meta["trained_on"] == "all items" and meta["config"]["epochs"] == 3
    assert meta["split"]["held_out_items"] == 1 and meta["split"]["train_items"] == 3
    assert meta["features"]["computed_images"] == 4
    assert set(meta["held_out_metrics"]) == {"text_to_image", "image_to_text", "cross_style"}
    assert meta["held_out_metrics"]["text_to_image"]["384"]["queries"] == 1
    assert meta["train_seconds"] >= 0 and meta["catalog_hash"]
    projection = load_alignment(out)
    assert projection.sha256 == meta["weights_sha256"]

    # again with the same seed: features come from the cache, the weights are the same
    assert main([*args, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["features"]["computed_images"] == 0 and again["features"]["computed_texts"] == 0
    assert again["weights_sha256"] == meta["weights_sha256"]
    assert again["held_out_run"]["weights_sha256"] == meta["held_out_run"]["weights_sha256"]


def test_train_align_cli_held_out_only_and_errors(tmp_path, catalog_dir, capsys):
    from crs.catalog.ingest import ingest
    from crs.cli import main
    from crs.store import open_store

    url = f"sqlite:///{tmp_path / 'crs.db'}"
    ingest(open_store(url), catalog_dir / "items.jsonl")
    out = tmp_path / "align"
    common = ["--db", url, "--catalog", "tiny", "--out", str(out), "--epochs", "1", "--cache", str(tmp_path / "c")]
    assert main(["train-align", *common, "--held-out-only", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["trained_on"] == "train split (90%)"
    assert meta["weights_sha256"] == meta["held_out_run"]["weights_sha256"]
    assert main(["train-align", *common, "--epochs", "0"]) == 1
    assert "--epochs" in capsys.readouterr().err
    assert main(["train-align", "--db", url, "--catalog", "nope", "--out", str(out)]) == 1
    assert "no catalog named 'nope'" in capsys.readouterr().err


def test_item_text():
    from crs.cli.align import item_text

    assert item_text("Red Apple", "A shiny red apple.", ["Fruit", "apple"]) == (
        "red apple. a shiny red apple. fruit, apple."
    )
    assert item_text("Sun", "", None) == "sun."
    assert item_text("Sun", "", "sky") == "sun. sky."


# -- the shipped weights, on the real demo catalog -----------------------------------------------


@pytest.mark.slow
def test_shipped_weights_load_and_find_items():
    from retrieval.encoders.aligned import DEFAULT_ALIGN_WEIGHTS, aligned_encoders

    meta = json.loads((DEFAULT_ALIGN_WEIGHTS / "align.json").read_text())
    text, image = aligned_encoders()
    assert text.projection.sha256 == meta["weights_sha256"]
    assert meta["catalog"] == "demo" and meta["held_out_metrics"]["text_to_image"]["384"]["queries"] > 500
    assert load_text_encoder("aligned").name == text.name
    demo = Path(__file__).parents[1] / "assets" / "demo"
    rows = [json.loads(line) for line in gzip.decompress((demo / "catalog.jsonl.gz").read_bytes()).decode().splitlines()[:400]]
    gallery = image.encode([demo / row["image"] for row in rows])
    for row in rows[:: 40]:
        query = text.encode([row["title"].lower()])[0]
        top = np.argsort(-(gallery @ query))[:10]
        assert any(rows[i]["title"].lower() == row["title"].lower() for i in top), row["title"]
