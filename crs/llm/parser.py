"""The LLM critique parser: a chat model reads the message into a :class:`~crs.turn.Critique`.

The model sees the catalog's vocabulary, the items shown last (numbered from 1, as the person
saw them) and the pending question, and answers JSON with the Critique's fields. The answer is
checked against the vocabulary and the shown list; anything outside them is an
:class:`~crs.llm.structured.LLMError`, and the dialogue manager reads the turn with the rules.
"""
from __future__ import annotations

import json
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, field_validator

from crs.understanding.parser import CritiqueParser, ParseContext, ShownItem
from crs.facts import CatalogFacts
from crs.turn import Critique, Reference, Relative
from crs.llm import vocabulary
from crs.llm.backends import load_chat_model
from crs.llm.prompts import load_prompt
from crs.llm.structured import LLMError, ask_json, value_lists

MAX_TOKENS = 300  # a critique is a few short fields; a model that rambles is cut off early
DEFAULT_TIMEOUT_S = 10.0
SHOWN_VALUES = 4  # attribute values listed per shown item: enough to tell "the red one" apart


class _RelativeAnswer(BaseModel):
    attribute: str
    direction: int
    item: int | None = None


class _ReferenceAnswer(BaseModel):
    item: int
    liked: bool | None = None


class CritiqueAnswer(BaseModel):
    """What the model must answer; types are checked here, the vocabulary in the parser."""

    model_config = ConfigDict(extra="ignore")  # a stray key is harmless; a wrong value is not

    require: dict[str, list[str]] = {}
    exclude: dict[str, list[str]] = {}
    relative: list[_RelativeAnswer] = []
    references: list[_ReferenceAnswer] = []
    accept: int | None = None
    reject_all: bool = False
    dont_care: list[str] = []
    text: str = ""

    @field_validator("require", "exclude", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return value_lists(value)

    @field_validator("relative", "references", "dont_care", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else [value] if isinstance(value, (str, dict)) else value

    @field_validator("text", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("reject_all", mode="before")
    @classmethod
    def _reject_all(cls, value: Any) -> Any:
        return False if value is None else value


class LLMCritiqueParser(CritiqueParser):
    name = "llm"

    def __init__(self, model: BaseChatModel, *, spec: str = "model", timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.model = model
        self.source = f"llm:{spec}"
        self.timeout_s = timeout_s
        self.prompt = load_prompt("critique")

    @classmethod
    def from_spec(cls, spec: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> LLMCritiqueParser:
        """A parser over the model named by an ``--llm`` setting (see :mod:`crs.llm.backends`)."""
        model = load_chat_model(spec, timeout_s=timeout_s, max_tokens=MAX_TOKENS, json_mode=True)
        return cls(model, spec=spec, timeout_s=timeout_s)

    def parse(self, text: str, context: ParseContext) -> Critique:
        messages = self.prompt.messages(
            vocabulary=vocabulary.describe(vocabulary.talked_about(context.facts)),
            shown=_describe_shown(context.shown),
            question=_describe_question(context),
            message=text.replace('"', "'"),
            **_example(context.facts))
        answer = ask_json(self.model, messages, CritiqueAnswer, timeout_s=self.timeout_s)
        critique = self.critique(answer, context)
        if critique.is_empty() and text.strip():
            critique.text = text.strip()  # nothing understood: the words still count as a soft wish
        return critique

    def critique(self, answer: CritiqueAnswer, context: ParseContext) -> Critique:
        """The answer in the catalog's terms, with item numbers made 0-based; LLMError if it does not fit."""
        facts, shown = context.facts, len(context.shown)
        names = [info.name for info in vocabulary.talked_about(facts)]
        qualitative = [name for name in names if facts.attributes[name].kind != "numeric"]
        relative = []
        for n, r in enumerate(answer.relative):
            info = vocabulary.attribute(facts, r.attribute, f"relative.{n}.attribute", names)
            if not info.ordered:
                raise LLMError(f"field relative.{n}.attribute: {info.name} has no order (not more or less)")
            if r.direction not in (1, -1):
                raise LLMError(f"field relative.{n}.direction: {r.direction} is not 1 or -1")
            reference = None if r.item is None else _index(r.item, shown, f"relative.{n}.item")
            relative.append(Relative(info.name, r.direction, reference))
        return Critique(
            require=vocabulary.attribute_values(facts, answer.require, "require", qualitative),
            exclude=vocabulary.attribute_values(facts, answer.exclude, "exclude", qualitative),
            relative=relative,
            references=[Reference(_index(r.item, shown, f"references.{n}.item"), r.liked)
                        for n, r in enumerate(answer.references)],
            accept=None if answer.accept is None else _index(answer.accept, shown, "accept"),
            reject_all=answer.reject_all,
            dont_care=list(dict.fromkeys(vocabulary.attribute(facts, a, f"dont_care.{n}", names).name
                                         for n, a in enumerate(answer.dont_care))),
            text=answer.text.strip(),
            source=self.source)


def _index(number: int, shown: int, field: str) -> int:
    """A 1-based item number as the person saw it -> the 0-based index the belief uses."""
    if not 1 <= number <= shown:
        raise LLMError(f"field {field}: item {number} was not shown" + (f" (1 to {shown})" if shown else ""))
    return number - 1


def _describe_shown(shown: list[ShownItem]) -> str:
    if not shown:
        return "(none yet)"
    lines = []
    for number, item in enumerate(shown, start=1):
        values = [f"{name} {vocabulary.format_value(value)}"
                  for name, value in list(item.attributes.items())[:SHOWN_VALUES]]
        lines.append(f"{number}. {item.title or 'untitled'}" + (f" ({'; '.join(values)})" if values else ""))
    return "\n".join(lines)


def _describe_question(context: ParseContext) -> str:
    if context.question is None:
        return "No question is pending."
    options = ", ".join(context.question.options)
    return (f"The assistant just asked about {context.question.attribute} (options: {options}); "
            f"\"any\" means no preference (dont_care).")


def _example(facts: CatalogFacts) -> dict[str, str]:
    """A worked example in the catalog's own vocabulary: small models copy the example's names."""
    for info in facts.attributes.values():
        if info.kind != "numeric" and len(info.values) >= 2:
            wanted, unwanted = info.values[0], info.values[1]
            answer = {"require": {info.name: [wanted]}, "exclude": {info.name: [unwanted]}}
            return {"example_message": f"{wanted} please, not {unwanted}", "example_answer": json.dumps(answer)}
    return {"example_message": "something else please", "example_answer": json.dumps({"reject_all": True})}
