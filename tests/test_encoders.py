"""Every encoder backend passes the same contract (one mixin per base class), plus known answers.

A backend's test class is a few lines: inherit the mixin, implement ``_get_encoder``. Real models
load once per process (the backends cache them); the tiny CLIP is built once per module from a
config with random weights: the loading and encoding code path is real, only the weights are fake.

Long on purpose: every encoder backend runs the same contract mixins, which live here with their known answers.
"""

from __future__ import annotations

import io
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a hub, even when run on its own
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from retrieval.encoders import (
    IMAGE_ENCODERS,
    TEXT_ENCODERS,
    FakeImageEncoder,
    FakeTextEncoder,
    ImageEncoder,
    ImageLoadError,
    TextEncoder,
    l2_normalize,
    load_image_encoder,
    load_text_encoder,
    register_text_encoder,
)

TEXTS = ["a red apple", "a ripe red fruit", "a racing car", "blue t-shirt with a collar", "cat"]


# -- synthetic images ------------------------------------------------------------------------


def scene(seed: int, size: int = 96) -> Image.Image:
    """A deterministic drawing: coloured shapes on white, different per seed."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0 = rng.integers(0, size * 2 // 3, 2)
        w, h = rng.integers(size // 6, size // 2, 2)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=colour)
    return image


def stripes(size: int = 96) -> Image.Image:
    arr = np.zeros((size, size, 3), dtype=np.uint8)
    arr[:, :, 1] = ((np.arange(size) // 6) % 2 * 200)[None, :]
    arr[:, :, 2] = 60
    return Image.fromarray(arr)


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


# -- the shared contracts --------------------------------------------------------------------


class EncoderContract:
    """What every encoder guarantees. Subclasses provide ``_get_encoder`` and ``_items``."""

    def _get_encoder(self):
        raise NotImplementedError

    def _items(self) -> list:
        raise NotImplementedError

    def test_name_and_dim(self):
        encoder = self._get_encoder()
        assert isinstance(encoder.name, str) and encoder.name.strip()
        assert isinstance(encoder.dim, int) and encoder.dim > 0
        assert encoder.name in repr(encoder)

    def test_shape_dtype_contiguous(self):
        encoder = self._get_encoder()
        vectors = encoder.encode(self._items())
        assert vectors.shape == (len(self._items()), encoder.dim)
        assert vectors.dtype == np.float32
        assert vectors.flags["C_CONTIGUOUS"]

    def test_unit_norm(self):
        vectors = self._get_encoder().encode(self._items())
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    def test_deterministic(self):
        encoder = self._get_encoder()
        first = encoder.encode(self._items())
        again = self._get_encoder().encode(self._items())  # a fresh instance, too
        np.testing.assert_allclose(first, again, atol=1e-6)

    def test_single_equals_batched(self):
        encoder = self._get_encoder()
        items = self._items()
        batched = encoder.encode(items)
        singles = np.stack([encoder.encode_one(item) for item in items])
        np.testing.assert_allclose(singles, batched, atol=1e-5)
        np.testing.assert_allclose(encoder.encode(items, batch_size=2), batched, atol=1e-5)

    def test_empty_input(self):
        encoder = self._get_encoder()
        out = encoder.encode([])
        assert out.shape == (0, encoder.dim) and out.dtype == np.float32

    @pytest.mark.parametrize("bad", [0, -1])
    def test_rejects_bad_batch_size(self, bad):
        with pytest.raises(ValueError, match="batch_size"):
            self._get_encoder().encode(self._items(), batch_size=bad)

    def test_items_differ(self):
        vectors = self._get_encoder().encode(self._items()[:2])
        assert cos(vectors[0], vectors[1]) < 0.9999


class TextEncoderContract(EncoderContract):
    def _items(self) -> list[str]:
        return list(TEXTS)

    def test_is_text_encoder(self):
        assert isinstance(self._get_encoder(), TextEncoder)

    @pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
    def test_blank_text_names_index(self, blank):
        with pytest.raises(ValueError, match="text 1 is empty"):
            self._get_encoder().encode(["fine", blank])

    def test_non_string_names_index(self):
        with pytest.raises(TypeError, match="text 2"):
            self._get_encoder().encode(["a", "b", None])

    def test_bare_string_rejected(self):
        # encode("hello") would otherwise encode five one-letter texts
        with pytest.raises(TypeError, match="list"):
            self._get_encoder().encode("hello")

    def test_tuple_and_generator_accepted(self):
        encoder = self._get_encoder()
        expected = encoder.encode(TEXTS[:2])
        np.testing.assert_allclose(encoder.encode(tuple(TEXTS[:2])), expected, atol=1e-6)
        np.testing.assert_allclose(encoder.encode(t for t in TEXTS[:2]), expected, atol=1e-6)


class ImageEncoderContract(EncoderContract):
    def _items(self) -> list[Image.Image]:
        return [scene(1), scene(2), stripes(), scene(3, size=60).resize((120, 60))]

    def test_is_image_encoder(self):
        assert isinstance(self._get_encoder(), ImageEncoder)

    def test_path_bytes_and_pil_agree(self, tmp_path: Path):
        encoder = self._get_encoder()
        image = scene(7)
        path = tmp_path / "scene.png"
        image.save(path)
        vectors = encoder.encode([image, path, str(path), png_bytes(image)])
        for row in vectors[1:]:
            np.testing.assert_allclose(row, vectors[0], atol=1e-5)

    def test_transparency_is_white(self):
        encoder = self._get_encoder()
        on_white = scene(8)
        rgba = on_white.convert("RGBA")
        arr = np.array(rgba)
        white = (arr[:, :, :3] == 255).all(axis=2)
        arr[white] = (0, 0, 0, 0)  # background becomes transparent black
        vectors = encoder.encode([on_white, Image.fromarray(arr, "RGBA")])
        np.testing.assert_allclose(vectors[1], vectors[0], atol=1e-5)

    def test_not_an_image_names_index_and_cause(self, tmp_path: Path):
        fake_png = tmp_path / "notes.png"
        fake_png.write_text("just text")
        with pytest.raises(ImageLoadError, match=r"image 1: .*notes\.png.*not an image"):
            self._get_encoder().encode([scene(1), fake_png])

    def test_missing_file(self, tmp_path: Path):
        with pytest.raises(ImageLoadError, match="image 0: .*not found"):
            self._get_encoder().encode([tmp_path / "nope.png"])

    def test_garbage_bytes(self):
        with pytest.raises(ImageLoadError, match="image 0"):
            self._get_encoder().encode([b"\x00\x01 definitely not an image"])

    def test_wrong_type(self):
        with pytest.raises(TypeError, match="image 1"):
            self._get_encoder().encode([scene(1), 42])

    def test_single_image_not_list_rejected(self):
        with pytest.raises(TypeError, match="list"):
            self._get_encoder().encode(scene(1))


# -- fakes -------------------------------------------------------------------------------------


class TestFakeText(TextEncoderContract):
    def _get_encoder(self):
        return FakeTextEncoder(dim=64)

    def test_shared_words_are_similar(self):
        v = self._get_encoder().encode(["red apple", "red apple pie", "racing car"])
        assert cos(v[0], v[1]) > 0.5
        assert abs(cos(v[0], v[2])) < 0.5  # hash collisions may make it non-zero, never large

    def test_case_and_punctuation_ignored(self):
        v = self._get_encoder().encode(["Red, APPLE!", "red apple"])
        assert cos(v[0], v[1]) == pytest.approx(1.0, abs=1e-6)

    def test_bad_text_found_before_any_encoding(self):
        encoder = FakeTextEncoder()
        with pytest.raises(ValueError, match="text 10 "):
            encoder.encode([f"t{i}" for i in range(10)] + [" "], batch_size=2)
        assert encoder.calls == []

    def test_batches_by_batch_size(self):
        encoder = FakeTextEncoder(dim=16)
        encoder.encode([f"text {i}" for i in range(10)], batch_size=4)
        assert encoder.calls == [4, 4, 2]

    def test_punctuation_only_text_is_not_zero(self):
        v = self._get_encoder().encode(["!!!"])
        assert np.linalg.norm(v[0]) == pytest.approx(1.0, abs=1e-6)


class TestFakeImage(ImageEncoderContract):
    def _get_encoder(self):
        return FakeImageEncoder(bins=4)

    def test_similar_colours_are_close(self):
        red = Image.new("RGB", (50, 50), (230, 20, 20))
        darker_red_small = Image.new("RGB", (20, 35), (200, 10, 30))
        blue = Image.new("RGB", (50, 50), (20, 20, 230))
        v = self._get_encoder().encode([red, darker_red_small, blue])
        assert cos(v[0], v[1]) > 0.99
        assert cos(v[0], v[2]) < 0.01


# -- MiniLM (the default text encoder) ---------------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    from retrieval.encoders.minilm import MiniLMTextEncoder

    encoder = MiniLMTextEncoder()
    encoder.encode(["warm up"])  # load once for the module
    return encoder


class TestMiniLM(TextEncoderContract):
    @pytest.fixture(autouse=True)
    def _encoder(self, minilm):
        self.encoder = minilm

    def _get_encoder(self):
        return self.encoder

    def test_identity(self):
        assert self.encoder.name == "minilm-l6-v2"
        assert self.encoder.dim == 384

    def test_known_answer(self):
        apple, fruit, car = self.encoder.encode(["a red apple", "a ripe red fruit", "a racing car"])
        assert cos(apple, fruit) > cos(apple, car) + 0.2

    def test_same_model_as_plain_sentence_transformer(self):
        # the generic sentence-transformers path on the same directory gives the same vectors
        from retrieval.encoders.minilm import SentenceTransformerTextEncoder, default_minilm_path

        generic = SentenceTransformerTextEncoder(default_minilm_path())
        assert generic.name.startswith("sentence-transformers:")
        assert generic.dim == 384
        assert generic.model is self.encoder.model  # loaded once per process
        np.testing.assert_allclose(generic.encode(TEXTS), self.encoder.encode(TEXTS), atol=1e-6)


class TestInt8MiniLM(TextEncoderContract):
    """The int8 copy used for single queries: the same contract, close to (not equal to) float32."""

    @pytest.fixture(autouse=True)
    def _encoder(self, minilm):
        from retrieval.encoders.quantized import Int8TextEncoder

        self.float_encoder = minilm
        self.encoder = Int8TextEncoder(minilm)

    def _get_encoder(self):
        return self.encoder

    def test_identity(self):
        assert self.encoder.name == "minilm-l6-v2-int8" and self.encoder.quantized_from == "minilm-l6-v2"
        assert self.encoder.dim == 384

    def test_close_to_float_but_really_quantized(self):
        import torch

        exact, approx = self.float_encoder.encode(TEXTS), self.encoder.encode(TEXTS)
        similarity = (exact * approx).sum(1)
        assert similarity.min() > 0.95 and similarity.max() < 0.99999
        # the float model used for item texts is left untouched
        assert any(isinstance(m, torch.nn.Linear) for m in self.float_encoder.model.modules())
        assert not any(type(m) is torch.nn.Linear for m in self.encoder.model.modules())

    def test_aligned_embedder_queries_go_through_int8(self):
        from retrieval.embedder import load_embedder

        embedder = load_embedder("aligned")
        assert embedder.query_text.base.name == "minilm-l6-v2-int8"
        assert embedder.text.base.name == "minilm-l6-v2"
        exact, approx = embedder.encode_texts(["a red apple"])[0], embedder.encode_query_text("a red apple")
        assert 0.95 < float(exact @ approx) < 0.99999
        plain = load_embedder("aligned", int8_queries=False)
        assert plain.query_text is plain.text


# -- EfficientNet-Lite0 (the default image encoder) --------------------------------------------


@pytest.fixture(scope="module")
def efficientnet():
    from retrieval.encoders.efficientnet import EfficientNetImageEncoder

    encoder = EfficientNetImageEncoder()
    encoder.encode([scene(0)])
    return encoder


class TestEfficientNet(ImageEncoderContract):
    @pytest.fixture(autouse=True)
    def _encoder(self, efficientnet):
        self.encoder = efficientnet

    def _get_encoder(self):
        return self.encoder

    def test_identity(self):
        assert self.encoder.name == "efficientnet-lite0-max"
        assert self.encoder.dim == 1280

    def test_known_answer_shifted_copy_is_nearest(self):
        original = scene(11, size=160)
        # slightly smaller, moved a few pixels: the same picture to a person
        copy = Image.new("RGB", (160, 160), "white")
        copy.paste(original.resize((150, 150), Image.Resampling.BILINEAR), (7, 3))
        unrelated = [scene(12, size=160), stripes(160)]
        v = self.encoder.encode([original, copy, *unrelated])
        for other in v[2:]:
            assert cos(v[0], v[1]) > cos(v[0], other) + 0.05
            assert cos(v[1], v[0]) > cos(v[1], other) + 0.05

    def test_features_are_max_pooled_extract_features(self):
        import torch

        from retrieval.encoders.efficientnet import preprocess

        image = scene(4)
        with torch.inference_mode():
            fmap = self.encoder.model.extract_features(torch.from_numpy(preprocess([image])))
        expected = l2_normalize(fmap.amax(dim=(2, 3)).numpy())
        np.testing.assert_allclose(self.encoder.encode([image]), expected, atol=1e-5)

    def test_mean_pooling_option_differs(self):
        mean = load_image_encoder("efficientnet-lite0:mean")
        assert mean.name == "efficientnet-lite0-mean"
        assert mean.model is self.encoder.model
        a, b = mean.encode([scene(5)])[0], self.encoder.encode([scene(5)])[0]
        assert cos(a, b) < 0.999

    def test_preprocess_range_and_layout(self):
        from retrieval.encoders.efficientnet import preprocess

        x = preprocess([Image.new("RGB", (300, 100), (255, 0, 0))])
        assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]
        assert x.max() == pytest.approx(1.0) and x.min() == pytest.approx(-1.0)
        # padded on white above and below the wide image, red in the middle
        np.testing.assert_allclose(x[0, :, 5, 112], [1.0, 1.0, 1.0], atol=1e-6)
        np.testing.assert_allclose(x[0, :, 112, 112], [1.0, -1.0, -1.0], atol=1e-6)

    def test_classify_matches_the_model_head(self):
        import torch

        from retrieval.encoders.efficientnet import imagenet_labels, preprocess

        images = [scene(6), stripes()]
        labels = self.encoder.classify_batch(images, top=5)
        with torch.inference_mode():
            probs = torch.softmax(self.encoder.model(torch.from_numpy(preprocess(images))), dim=1)
        assert len(labels) == 2
        for row, p in zip(labels, probs, strict=True):
            assert len(row) == 5
            assert [label.prob for label in row] == sorted(
                (label.prob for label in row), reverse=True
            )
            top = int(p.argmax())
            assert row[0].index == top and row[0].name == imagenet_labels()[top]
            assert row[0].prob == pytest.approx(float(p[top]), abs=1e-5)
        assert len(imagenet_labels()) == 1000 and imagenet_labels()[1] == "goldfish"

    def test_encode_and_classify_agree_with_separate_calls(self):
        images = [scene(9), scene(10)]
        features, labels = self.encoder.encode_and_classify(images, top=3, batch_size=1)
        np.testing.assert_allclose(features, self.encoder.encode(images), atol=1e-5)
        assert [[lb.index for lb in row] for row in labels] == [
            [lb.index for lb in row] for row in self.encoder.classify_batch(images, top=3)
        ]

    def test_classify_errors(self):
        with pytest.raises(ValueError, match="top"):
            self.encoder.classify_batch([scene(1)], top=0)
        with pytest.raises(ImageLoadError, match="image 0"):
            self.encoder.classify_batch([b"nope"])


# -- tiny random-weight CLIP, built offline ----------------------------------------------------

CLIP_WORDS = (
    "a an the with red green blue ripe fruit apple racing car cat dog t-shirt collar".split()
)


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CLIP checkpoint with random weights, its tokenizer and image processor, saved the way a
    real one is (save_pretrained), so the encoders load it through the real from_pretrained path."""
    import torch
    import transformers
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "[BOS]": 2, "[EOS]": 3}
    for word in CLIP_WORDS:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", 2), ("[EOS]", 3)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="[BOS]",
        eos_token="[EOS]",
        pad_token="[PAD]",
        unk_token="[UNK]",
    )
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=16,
            bos_token_id=2,
            eos_token_id=3,
            pad_token_id=0,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    processor_cls = (
        getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    )
    target = tmp_path_factory.mktemp("tiny_clip")
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    processor_cls(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(target)
    return target


class TestClipText(TextEncoderContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tiny_clip_dir):
        self.clip_dir = tiny_clip_dir

    def _get_encoder(self):
        return load_text_encoder(f"clip:{self.clip_dir}")

    def test_text_longer_than_the_model_is_truncated(self):
        long_text = " ".join(["red apple"] * 40)  # 80 words, the tiny model holds 16 positions
        assert self._get_encoder().encode([long_text]).shape == (1, 16)


class TestClipImage(ImageEncoderContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tiny_clip_dir):
        self.clip_dir = tiny_clip_dir

    def _get_encoder(self):
        return load_image_encoder(f"clip:{self.clip_dir}")


def test_clip_text_and_image_share_one_model_and_space(tiny_clip_dir):
    from retrieval.encoders.clip import clip_encoders

    text, image = clip_encoders(tiny_clip_dir)
    assert text.backend is image.backend  # one model loaded, two towers
    assert text.dim == image.dim == 16
    assert text.name == image.name == f"clip:{tiny_clip_dir}"
    t = text.encode(["a red apple"])
    i = image.encode([scene(1)])
    assert -1.0 <= float(t[0] @ i[0]) <= 1.0  # comparable: same space, same dim


def test_clip_processor_missing_falls_back_to_model_size(tiny_clip_dir, tmp_path):
    import shutil

    from retrieval.encoders.clip import load_clip

    bare = tmp_path / "no_processor"
    shutil.copytree(tiny_clip_dir, bare)
    (bare / "preprocessor_config.json").unlink()
    backend = load_clip(bare)
    assert backend.image_processor.crop_size["height"] == 32
    assert load_image_encoder(f"clip:{bare}").encode([scene(2)]).shape == (1, 16)


def test_missing_model_directories_fail_before_any_hub_lookup(tmp_path):
    missing = tmp_path / "no_such_model"
    with pytest.raises(FileNotFoundError, match="could not load CLIP model .*no such directory"):
        load_text_encoder(f"clip:{missing}").encode(["x"])
    with pytest.raises(FileNotFoundError, match="sentence-transformers model .*no such directory"):
        load_text_encoder(f"sentence-transformers:{missing}").encode(["x"])
    a_file = tmp_path / "model.bin"
    a_file.write_bytes(b"\0")
    with pytest.raises(NotADirectoryError, match="not a model directory"):
        load_image_encoder(f"clip:{a_file}").encode([scene(1)])


def test_clip_without_transformers_names_the_pip_command(monkeypatch):
    import sys

    from retrieval.encoders.clip import _import_transformers

    monkeypatch.setitem(sys.modules, "transformers", None)  # import now raises ImportError
    with pytest.raises(ImportError, match="pip install"):
        _import_transformers()


def test_importing_the_package_imports_no_torch():
    import subprocess
    import sys

    code = (
        "import sys, retrieval.encoders as e; e.load_text_encoder('fake').encode(['x']); "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


# -- the factory -------------------------------------------------------------------------------


def test_default_specs():
    text, image = load_text_encoder(), load_image_encoder()
    assert text.name == "minilm-l6-v2" and image.name == "efficientnet-lite0-max"


@pytest.mark.parametrize("loader", [load_text_encoder, load_image_encoder])
def test_unknown_spec_lists_valid_ones(loader):
    with pytest.raises(ValueError) as info:
        loader("word2vec")
    message = str(info.value)
    assert "word2vec" in message and "fake" in message and "clip:PATH_OR_NAME" in message


def test_fake_specs():
    assert load_text_encoder("fake").dim == 64
    assert load_text_encoder("fake:8").dim == 8
    assert load_image_encoder("fake").dim == 64
    assert load_image_encoder("fake:2").dim == 8
    with pytest.raises(ValueError, match="integer"):
        load_text_encoder("fake:big")


def test_spec_argument_errors():
    with pytest.raises(ValueError, match="no argument"):
        load_text_encoder("minilm:other")
    with pytest.raises(ValueError, match="PATH_OR_NAME"):
        load_text_encoder("clip:")
    with pytest.raises(ValueError, match="PATH_OR_NAME"):
        load_text_encoder("sentence-transformers")
    with pytest.raises(ValueError, match="pooling"):
        load_image_encoder("efficientnet-lite0:median")


def test_sentence_transformers_spec_with_local_dir():
    from retrieval.encoders.minilm import default_minilm_path

    encoder = load_text_encoder(f"sentence-transformers:{default_minilm_path()}")
    assert encoder.dim == 384


def test_registries_are_explicit_and_reject_duplicates():
    assert set(TEXT_ENCODERS.names()) == {"minilm", "sentence-transformers", "clip", "aligned", "fake"}
    assert set(IMAGE_ENCODERS.names()) == {"efficientnet-lite0", "clip", "aligned", "fake"}
    with pytest.raises(ValueError, match="already registered"):
        register_text_encoder("fake", lambda arg: FakeTextEncoder())


def test_backend_returning_wrong_shape_is_a_bug():
    class Broken(TextEncoder):
        name = "broken"
        _dim = 4

        def encode_batch(self, batch):
            return np.zeros((len(batch), 3))

    with pytest.raises(RuntimeError, match="shape"):
        Broken().encode(["x"])


def test_float64_backend_output_becomes_float32_and_zero_rows_stay_zero():
    class Float64(TextEncoder):
        name = "f64"
        _dim = 3

        def encode_batch(self, batch):
            return np.array([[0.0, 0.0, 0.0] if t == "zero" else [3.0, 4.0, 0.0] for t in batch])

    out = Float64().encode(["zero", "x"])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_allclose(out[1], [0.6, 0.8, 0.0], atol=1e-7)


def test_a_backend_needs_only_encode_batch():
    with pytest.raises(TypeError):
        TextEncoder()  # abstract

    class Minimal(ImageEncoder):
        name = "minimal"
        _dim = 2

        def encode_batch(self, batch):
            return np.ones((len(batch), 2))

    assert Minimal().encode([scene(1)]).shape == (1, 2)
