"""A local transformers causal language model (a saved model folder) as a chat model.

Loads with ``local_files_only=True``: the folder must hold the weights and the tokenizer, and
nothing is fetched from a hub. The tokenizer's chat template formats the messages; a model
saved without one gets a plain ``role: text`` transcript.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr

from .local_chat import LocalChatModel, text_only
from .structured import cancelled

_LOADED: dict[tuple[str, str], tuple[Any, Any, threading.Lock]] = {}
_LOADED_LOCK = threading.Lock()


def load(model_dir: str, device: str) -> tuple[Any, Any, threading.Lock]:
    """(tokenizer, model, lock), once per process and folder: stages naming one model share it.
    The lock runs one generation at a time, so two sessions never double the memory peak."""
    key = (str(Path(model_dir).resolve()), device)
    with _LOADED_LOCK:
        if key not in _LOADED:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(key[0], local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(key[0], local_files_only=True).to(device).eval()
            _LOADED[key] = (tokenizer, model, threading.Lock())
        return _LOADED[key]


class HFChat(LocalChatModel):
    model_dir: str
    device: str = "cpu"

    _loaded: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any) -> None:
        self._loaded = load(self.model_dir, self.device)

    @property
    def _llm_type(self) -> str:
        return "transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_dir": self.model_dir, "max_tokens": self.max_tokens, "temperature": self.temperature}

    def complete(self, messages: list[dict[str, Any]], stop: list[str],
                 json_schema: dict[str, Any] | None = None) -> str:  # no constrained decoding here
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class Abandoned(StoppingCriteria):  # the caller timed out: stop at the next token, free the lock
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancelled(), dtype=torch.bool, device=input_ids.device)

        tokenizer, model, lock = self._loaded
        chat = text_only(messages, "hf")
        if getattr(tokenizer, "chat_template", None):
            prompt = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        else:
            prompt = "".join(f"{m['role']}: {m['content']}\n" for m in chat) + "assistant:"
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
        sampling: dict[str, Any] = {"do_sample": False}
        if self.temperature > 0:
            sampling = {"do_sample": True, "temperature": self.temperature}
        with lock, torch.inference_mode():
            # max_time: generate() stops by itself at the deadline, so a call abandoned by the
            # caller's timeout does not hold the lock into the next turn.
            output = model.generate(**inputs, max_new_tokens=self.max_tokens, max_time=self.timeout_s,
                                    stopping_criteria=StoppingCriteriaList([Abandoned()]),
                                    pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id, **sampling)
        text = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        for word in stop:  # generate() has no stop words: cut at the first one
            text = text.split(word, 1)[0]
        return text
