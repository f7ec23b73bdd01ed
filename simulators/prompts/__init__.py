"""The LLM user's prompt templates, shipped as package data.

Same file format as :mod:`crs.llm.prompts` (a ``[system]`` and a ``[user]`` section, ``$name``
placeholders), so a prompt reads and diffs the same wherever it lives.
"""
from __future__ import annotations

from functools import cache

from crs.llm.prompts import Prompt, read_prompt


@cache
def load_prompt(name: str) -> Prompt:
    """The prompt in ``<name>.txt`` beside this module."""
    return read_prompt(__name__, name)
