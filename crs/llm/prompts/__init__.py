"""Prompt templates, one text file per LLM stage, shipped as package data.

A file has a ``[system]`` section and a ``[user]`` section. Placeholders are ``$name``
(:class:`string.Template`), so the JSON examples in a prompt need no brace escaping.
Prompts live in files rather than in code so they can be read, diffed and tuned on their own.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template
from typing import TypeVar

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

T = TypeVar("T")
_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)
# A stage's prompt text (system + user, the picture aside) in characters. Small models read short
# prompts better and a CPU reads them faster; 850 characters stay under 300 tokens for the
# tokenizers measured (SmolLM2: at most 0.35 tokens a character, chat template included, over the
# understanding fixtures' prompts of 700+ characters; benchmarks/llm_stages.py reports real counts).
PROMPT_CHARS = 850


@dataclass(frozen=True)
class Prompt:
    name: str
    system: Template
    user: Template

    def texts(self, **values: object) -> tuple[str, str]:
        """The system and user texts with ``values`` filled in; a missing value is a bug (KeyError)."""
        text = {key: str(value) for key, value in values.items()}
        return self.system.substitute(text).strip(), self.user.substitute(text).strip()

    def messages(self, images: Sequence[str] = (), **values: object) -> list[BaseMessage]:
        """Chat messages; ``images`` (data URLs) follow the user text as image content blocks.

        The OpenAI ``image_url`` block with a base64 data URL is the one form that ChatOpenAI,
        ChatOllama and OpenAI-compatible servers (llama.cpp, vLLM) all accept.
        """
        system, user = self.texts(**values)
        if not images:
            return [SystemMessage(system), HumanMessage(user)]
        content: list[str | dict] = [{"type": "text", "text": user}]
        content += [{"type": "image_url", "image_url": {"url": url}} for url in images]
        return [SystemMessage(system), HumanMessage(content=content)]


@cache
def load_prompt(name: str) -> Prompt:
    """The prompt in ``<name>.txt`` beside this module."""
    return read_prompt(__name__, name)


def read_prompt(package: str, name: str) -> Prompt:
    """The prompt in ``<name>.txt`` of ``package`` (package data), in this module's format."""
    text = resources.files(package).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    parts = _SECTION.split(text)
    sections = dict(zip(parts[1::2], parts[2::2]))
    if set(sections) != {"system", "user"}:
        raise ValueError(f"prompt {name}.txt needs a [system] and a [user] section")
    return Prompt(name, Template(sections["system"]), Template(sections["user"]))


def text_length(messages: Sequence[BaseMessage]) -> int:
    """Characters of the messages' text (image blocks not counted)."""
    total = 0
    for message in messages:
        content = message.content
        if isinstance(content, str):
            total += len(content)
        else:
            total += sum(len(block.get("text", "")) if isinstance(block, dict) else len(block) for block in content)
    return total


def fit(build: Callable[[int], T], levels: int, size: Callable[[T], int] = text_length,  # type: ignore[assignment]
        budget: int = PROMPT_CHARS) -> T:
    """The first of ``build(0)``, ``build(1)``, ... ``build(levels - 1)`` (each shorter than the
    last: fewer values, fewer items) whose ``size`` (default: the messages' text length) fits
    ``budget`` characters, else the shortest. A short message gets the full prompt; only long ones
    (many items shown, many numbers) lose detail."""
    built = build(0)
    for level in range(1, levels):
        if size(built) <= budget:
            break
        built = build(level)
    return built
