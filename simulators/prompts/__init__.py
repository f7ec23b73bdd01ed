"""The LLM user's prompt templates, shipped as package data.

Same file format as :mod:`crs.llm.prompts` (a ``[system]`` and a ``[user]`` section, ``$name``
placeholders), so a prompt reads and diffs the same wherever it lives.
"""
from __future__ import annotations

import re
from functools import cache
from importlib import resources
from string import Template

from crs.llm.prompts import Prompt

_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)


@cache
def load_prompt(name: str) -> Prompt:
    """The prompt in ``<name>.txt`` beside this module."""
    text = resources.files(__name__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    parts = _SECTION.split(text)
    sections = dict(zip(parts[1::2], parts[2::2]))
    if set(sections) != {"system", "user"}:
        raise ValueError(f"prompt {name}.txt needs a [system] and a [user] section")
    return Prompt(name, Template(sections["system"]), Template(sections["user"]))
