"""Deterministic stand-ins for the understanding stages, selectable like any other part
(``--parser fake:SCRIPT.json``, ``--image-reader fake:JSON``): they let a test or a demo drive
the dialogue manager through an exact ask -> ask -> recommend path with no model and no rules.

* :class:`ScriptedParser` plays a script, one step per message: a critique (as
  :meth:`crs.turn.Critique.to_json` writes it) or an exception to raise (to test fallbacks);
  after the last step it repeats it.
* :class:`FixedReader` reads every picture the same way.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from crs.turn import Critique, ImageReading, Reference, Relative
from crs.understanding.parser import CritiqueParser, ParseContext
from crs.understanding.reader import ImageReader, ReadContext


def critique_from_json(data: dict[str, Any]) -> Critique:
    """The inverse of :meth:`Critique.to_json`; unknown keys are an error (a typo is not ignored)."""
    fields = dict(data)
    fields["relative"] = [Relative(**r) for r in fields.get("relative", [])]
    fields["references"] = [Reference(**r) for r in fields.get("references", [])]
    return Critique(**fields)


class ScriptedParser(CritiqueParser):
    name = "scripted"

    def __init__(self, script: list[Critique | Exception]) -> None:
        if not script:
            raise ValueError("a scripted parser needs at least one step")
        self.script = list(script)
        self.texts: list[str] = []  # what it was asked to parse, for assertions

    def parse(self, text: str, context: ParseContext) -> Critique:
        self.texts.append(text)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return step

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedParser:
        steps = _json_file(path, "parser script")
        if not isinstance(steps, list):
            raise ValueError(f"parser script {path}: expected a JSON list of critiques")
        try:
            return cls([critique_from_json(step) for step in steps])
        except TypeError as exc:
            raise ValueError(f"parser script {path}: not a critique: {exc}") from None


class FixedReader(ImageReader):
    name = "fixed"

    def __init__(self, reading: ImageReading) -> None:
        self.reading = reading

    def read(self, image: Image.Image, context: ReadContext) -> ImageReading:
        return self.reading

    @classmethod
    def from_file(cls, path: str | Path) -> FixedReader:
        data = _json_file(path, "reading")
        try:
            return cls(ImageReading(**{"source": "fake", **data}))
        except TypeError as exc:
            raise ValueError(f"reading {path}: not an image reading: {exc}") from None


def _json_file(path: str | Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{what} {path}: cannot read it: {exc.strerror}") from None
    except ValueError as exc:
        raise ValueError(f"{what} {path}: not JSON: {exc}") from None
