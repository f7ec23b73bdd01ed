"""The LLM critique parser: a chat model reads the message into a :class:`~crs.turn.Critique`.

The model sees a compact prompt: only the attributes and values the message may be about
(:mod:`crs.llm.relevance`), the items shown last (numbered from 1, as the person saw them) and the
pending question, and answers JSON with the Critique's fields. Where the backend can, decoding is
constrained to a JSON schema of exactly what the prompt offered (:mod:`crs.llm.schema`). The
answer is checked against the vocabulary and the shown list; anything outside them is an
:class:`~crs.llm.structured.LLMError`, and the dialogue manager reads the turn with the rules.
"""
from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ConfigDict, field_validator

from crs.understanding.parser import CritiqueParser, ParseContext, ShownItem
from crs.facts import CatalogFacts
from crs.turn import Critique, Reference, Relative
from crs.llm import vocabulary
from crs.llm.backends import load_stage_model
from crs.llm.prompts import fit, load_prompt
from crs.llm.relevance import Encode, Offer, Relevance, describe_offer
from crs.llm.schema import critique_schema
from crs.llm.structured import LLMError, ask_json, value_lists, with_json_schema

MAX_TOKENS = 300  # a critique is a few short fields; a model that rambles is cut off early
DEFAULT_TIMEOUT_S = 10.0  # for backends whose speed is not measured (servers)
PROMPT_TOKENS = 300  # the prompt budget (measured by benchmarks/llm_stages.py)
REPLY_TOKENS = 64  # a long ordinary answer under the schema's grammar; the time limit allows this many
SHOWN_VALUES = 3  # attribute values listed per shown item: enough to tell "the red one" apart


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
    all_of: list[str] = []
    ranges: dict[str, list[float | None]] = {}
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

    @field_validator("ranges", mode="before")
    @classmethod
    def _no_ranges(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("relative", "references", "dont_care", "all_of", mode="before")
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

    def __init__(self, model: BaseChatModel, *, spec: str = "model", timeout_s: float = DEFAULT_TIMEOUT_S,
                 encode: Encode | None = None) -> None:
        """``encode`` (texts -> vectors), if given, also finds the values a message is close to in
        meaning ("something scary": horror) for the compact prompt; without it, words and typos."""
        self.model = model
        self.source = f"llm:{spec}"
        self.timeout_s = timeout_s
        self.prompt = load_prompt("critique")
        self.encode = encode
        self._relevance: weakref.WeakKeyDictionary[CatalogFacts, Relevance] = weakref.WeakKeyDictionary()

    @classmethod
    def from_spec(cls, spec: str, *, timeout_s: float | None = None,
                  encode: Encode | None = None) -> LLMCritiqueParser:
        """A parser over the model named by an ``--llm`` setting (see :mod:`crs.llm.backends`);
        its time limit is ``timeout_s`` if given, else set from the backend's measured speed."""
        model, timeout_s = load_stage_model(spec, timeout_s, DEFAULT_TIMEOUT_S, PROMPT_TOKENS, REPLY_TOKENS,
                                            max_tokens=MAX_TOKENS)
        return cls(model, spec=spec, timeout_s=timeout_s, encode=encode)

    def relevance(self, facts: CatalogFacts) -> Relevance:
        if facts not in self._relevance:
            self._relevance[facts] = Relevance(facts, self.encode)
        return self._relevance[facts]

    def request(self, text: str, context: ParseContext) -> tuple[list[BaseMessage], dict[str, Any]]:
        """The messages for ``text`` (the compact prompt) and the JSON schema the answer is held to."""
        offer = self.relevance(context.facts).offer(text, context.question)
        schema = critique_schema(offer, context.facts, len(context.shown))
        first = [info.name for info in offer.attributes(context.facts)]

        def build(level: int) -> list[BaseMessage]:  # a longer prompt loses detail in this order:
            values = max(0, SHOWN_VALUES - level)  # the shown items' values (3, 2, 1, none: titles only),
            return self.prompt.messages(  # from level 1 the numbers' labels, at the last the keys' words
                vocabulary=describe_offer(offer, context.facts, labels=level == 0),
                context=_describe_context(context, first, values),
                message=text.replace('"', "'"),
                keys=", ".join(schema["properties"]) if level > SHOWN_VALUES
                else "; ".join(KEYS[key] for key in schema["properties"]),
                example="" if self.constrained else EXAMPLE)

        return fit(build, SHOWN_VALUES + 2), schema

    @property
    def constrained(self) -> bool:
        """Whether the backend decodes to the schema. Then the prompt has no worked example: under
        the grammar the format needs none, and small models copy an example's values (SmolLM2
        required the example's first value and excluded its second for most messages)."""
        return with_json_schema(self.model, {}) is not self.model

    def parse(self, text: str, context: ParseContext) -> Critique:
        messages, schema = self.request(text, context)
        answer = ask_json(with_json_schema(self.model, schema, "critique"), messages, CritiqueAnswer,
                          timeout_s=self.timeout_s)
        critique = self.critique(answer, context)
        if critique.is_empty() and text.strip():
            critique.text = text.strip()  # nothing understood: the words still count as a soft wish
        return critique

    def critique(self, answer: CritiqueAnswer, context: ParseContext) -> Critique:
        """The answer in the catalog's terms, with item numbers made 0-based; LLMError if it does not fit."""
        facts, shown = context.facts, len(context.shown)
        relevance = self.relevance(facts)
        talked = {info.name for info in vocabulary.talked_about(facts)} | set(relevance.names)
        names = [name for name in facts.attributes if name in talked]
        qualitative = [name for name in names if facts.attributes[name].kind != "numeric"]
        numeric = [name for name in names if facts.attributes[name].kind == "numeric"]
        relative = []
        for n, r in enumerate(answer.relative):
            info = vocabulary.attribute(facts, r.attribute, f"relative.{n}.attribute", names)
            if not info.ordered:
                raise LLMError(f"field relative.{n}.attribute: {info.name} has no order (not more or less)")
            if r.direction not in (1, -1):
                raise LLMError(f"field relative.{n}.direction: {r.direction} is not 1 or -1")
            reference = None if r.item is None else _index(r.item, shown, f"relative.{n}.item")
            relative.append(Relative(info.name, r.direction, reference))
        require, dont_care_too = _without_any(answer.require)
        exclude, _ = _without_any(answer.exclude)
        required = vocabulary.attribute_values(facts, require, "require", qualitative)
        all_of = [vocabulary.attribute(facts, a, f"all_of.{n}", qualitative).name for n, a in enumerate(answer.all_of)]
        return Critique(
            require=required,
            exclude=vocabulary.attribute_values(facts, exclude, "exclude", qualitative),
            all_of=[a for a in dict.fromkeys(all_of) if len(required.get(a, ())) >= 2],
            ranges=_ranges(facts, answer.ranges, numeric),
            relative=relative,
            references=[Reference(_index(r.item, shown, f"references.{n}.item"), r.liked)
                        for n, r in enumerate(answer.references)],
            accept=None if answer.accept is None else _index(answer.accept, shown, "accept"),
            reject_all=answer.reject_all,
            dont_care=list(dict.fromkeys(vocabulary.attribute(facts, a, f"dont_care.{n}", names).name
                                         for n, a in enumerate([*answer.dont_care, *dont_care_too]))),
            text=answer.text.strip(),
            source=self.source)


KEYS = {  # a few words per key of the schema; only the keys this message's schema has are listed
    "require": "require {attribute: [values]} wanted",
    "exclude": "exclude: not wanted",
    "all_of": "all_of [attributes whose values must all hold]",
    "ranges": "ranges {number: [low, high]} (null: open)",
    "relative": "relative [{attribute, direction 1 more/-1 less, item}]",
    "references": "references [{item, liked}]",
    "accept": "accept: the item chosen",
    "reject_all": "reject_all: none will do",
    "dont_care": "dont_care [attributes]",
    "text": "text: other wishes",
}
# The answer's shape in placeholders, for backends that do not decode to the schema. Never the
# catalog's own names: small models copy an example's values ("red please, not blue" became require
# red, exclude blue for most messages); a copied placeholder is not in the vocabulary, so it fails
# loudly (a recorded fallback) instead of passing as a wrong reading.
EXAMPLE = ('\nExample: "<value> please, not <other value>" -> '
           '{"require": {"<attribute>": ["<value>"]}, "exclude": {"<attribute>": ["<other value>"]}}')
ANY = {"any", "anything", "any of them", "all", "whatever", "no preference", "don't care", "dont care", "none"}


def _without_any(given: dict[str, list[str]]) -> tuple[dict[str, list[str]], list[str]]:
    """Models write "no preference" as a value ({"category": ["any"]}): that is dont_care, not a value."""
    kept: dict[str, list[str]] = {}
    dont_care = []
    for name, values in given.items():
        real = [v for v in values if str(v).strip().lower() not in ANY]
        if real:
            kept[name] = real
        elif values:
            dont_care.append(name)
    return kept, dont_care


def _ranges(facts: CatalogFacts, given: dict[str, list[float | None]],
            numeric: list[str]) -> dict[str, list[float | None]]:
    out: dict[str, list[float | None]] = {}
    for name, ends in given.items():
        info = vocabulary.attribute(facts, name, "ranges", numeric)
        if len(ends) != 2:
            raise LLMError(f"field ranges.{info.name}: expected [low, high], got {ends}")
        low, high = ends
        if low is None and high is None:
            continue
        if low is not None and high is not None and low > high:
            low, high = high, low
        out[info.name] = [low, high]
    return out


def _index(number: int, shown: int, field: str) -> int:
    """A 1-based item number as the person saw it -> the 0-based index the belief uses."""
    if not 1 <= number <= shown:
        raise LLMError(f"field {field}: item {number} was not shown" + (f" (1 to {shown})" if shown else ""))
    return number - 1


def _describe_shown(shown: list[ShownItem], first: Sequence[str] = (), most: int = SHOWN_VALUES) -> str:
    """The shown items, each with up to ``most`` values: those of the attributes the prompt offers
    first ("the red one" needs the colours), then the item's own first ones."""
    if not shown:
        return "(none yet)"
    lines = []
    for number, item in enumerate(shown, start=1):
        names = sorted(item.attributes, key=lambda name: name not in first)  # stable: offered ones first
        values = [f"{name} {vocabulary.format_value(item.attributes[name], 2)}" for name in names[:most]]
        lines.append(f"{number}. {item.title or 'untitled'}" + (f" ({'; '.join(values)})" if values else ""))
    return "\n".join(lines)


def _describe_context(context: ParseContext, first: Sequence[str] = (), most: int = SHOWN_VALUES) -> str:
    parts = []
    if context.shown:
        parts.append("Items shown, by number:\n" + _describe_shown(context.shown, first, most))
    if context.question is not None:
        parts.append(_describe_question(context))
    return "".join(f"\n{p}\n" for p in parts)


def _describe_question(context: ParseContext) -> str:
    assert context.question is not None
    options = ", ".join(context.question.options)
    return (f"The assistant just asked about {context.question.attribute} (options: {options}); "
            f"\"any\" means no preference (dont_care).")
