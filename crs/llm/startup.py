"""The start-up check of the LLM stages: which stages the chosen model serves, said once.

A stage the model cannot serve at all is switched to its offline counterpart here, before the
first turn, instead of failing (and being recorded as a fallback) on every turn: a text-only
model (llama.cpp without a vision projector, a transformers causal LM) cannot read pictures, so
the image reader stays offline. Servers (Ollama, OpenAI and compatible ones) are not asked at
start-up: whether they take images shows on the first picture, as a per-turn fallback.
"""
from __future__ import annotations

from typing import Any

from .parser import LLMCritiqueParser
from .policy import LLMPolicy
from .reader import LLMImageReader


def takes_images(model: Any) -> bool:
    """False where the backend is known to take text only; True where it may take images."""
    return bool(getattr(model, "takes_images", True))


def check_llm_stages(dm: Any) -> list[str]:
    """One line per LLM stage of the dialogue manager ``dm``: the model, its time limit and the
    speed it was set from. An LLM image reader over a text-only model is replaced by the offline
    reader, and the line says so. Empty when no stage uses an LLM."""
    lines = []
    parser = dm.model_parser
    if isinstance(parser, LLMCritiqueParser):
        lines.append(f"critique parser: {parser.source}, {_limit(parser.model, parser.timeout_s)}")
    policy = dm.policy
    if isinstance(policy, LLMPolicy):
        lines.append(f"policy: {policy.name}, {_limit(policy.model, policy.timeout_s)}")
    reader = dm.model_reader
    if isinstance(reader, LLMImageReader):
        if takes_images(reader.model):
            lines.append(f"image reader: {reader.source}, {_limit(reader.model, reader.timeout_s)}")
        else:
            dm.reader = dm.offline_reader
            lines.append(f"image reader: stays offline ({reader.source} takes text only; "
                         "pictures are read by the offline reader)")
    return lines


def _limit(model: Any, timeout_s: float) -> str:
    measure = getattr(model, "speed", None)
    speed = measure() if callable(measure) else None
    return f"time limit {timeout_s:.1f} s" + (f" (measured {speed.describe()})" if speed is not None else "")
