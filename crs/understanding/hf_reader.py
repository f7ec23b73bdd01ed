"""Reading images with a local transformers vision-language model (image-text-to-text).

For people who keep a VLM folder on disk (LLaVA, Qwen2-VL, Idefics, PaliGemma...) and want no
server. It loads with ``local_files_only=True``, so nothing is ever fetched from a hub. The
prompt and the JSON check are the LLM reader's (:mod:`crs.llm.reader`): the model must
answer ``{attributes, caption, colours}`` in the catalog's vocabulary, else
:class:`~crs.llm.structured.LLMError` and the dialogue manager reads the picture offline.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PIL import Image

from crs.understanding.reader import ImageReader, ReadContext
from crs.llm.reader import ReadingAnswer, fitted_prompt, reading_from_answer
from crs.llm.prompts import load_prompt
from crs.llm.structured import LLMError, call_with_timeout, parse_reply
from crs.turn import ImageReading

DEFAULT_MAX_NEW_TOKENS = 200  # the answer is a short JSON object; generation dominates the time on CPU
DEFAULT_TIMEOUT_S = 60.0


class HFImageReader(ImageReader):
    name = "hf"

    def __init__(self, model_dir: str | Path, *, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                 timeout_s: float = DEFAULT_TIMEOUT_S, device: str = "cpu") -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        folder = Path(model_dir).expanduser()
        if not (folder / "config.json").is_file():
            raise ValueError(f"{str(folder)!r} is not a saved transformers model folder (no config.json in it)")
        self.processor: Any = AutoProcessor.from_pretrained(folder, local_files_only=True)
        if not getattr(self.processor, "chat_template", None):
            raise ValueError(f"{str(folder)!r}: the processor has no chat template, so the picture cannot be "
                             "placed in the prompt")
        self.model: Any = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True).to(device).eval()
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.timeout_s = timeout_s
        self.source = f"hf:{folder}"
        self.prompt = load_prompt("image_reader")
        self._lock = threading.Lock()  # one generation at a time: two would double the memory peak

    def read(self, image: Image.Image, context: ReadContext) -> ImageReading:
        if not context.facts.askable():
            raise LLMError("the catalog has no attributes to read from a picture")
        system, user = self.prompt.texts(**fitted_prompt(self.prompt, context)[0])
        try:
            text = call_with_timeout(lambda: self.generate(image, f"{system}\n\n{user}"), self.timeout_s)
        except LLMError:
            raise
        except Exception as exc:  # inside transformers: a model whose processor wants other inputs, out of memory...
            raise LLMError(f"model failed: {type(exc).__name__}: {exc}") from exc
        return reading_from_answer(parse_reply(text, ReadingAnswer), context.facts, self.source)

    def generate(self, image: Image.Image, prompt: str) -> str:
        """The model's raw reply to ``prompt`` about ``image``."""
        import torch

        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(images=[image.convert("RGB")], text=[text], return_tensors="pt").to(self.device)
        with self._lock, torch.inference_mode():
            # max_time: generate() stops by itself at the deadline, so a call abandoned by the
            # timeout does not hold the lock into the next turn.
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                         max_time=self.timeout_s)
        return str(self.processor.batch_decode(output[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0])
