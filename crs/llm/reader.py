"""The LLM image reader: a vision chat model describes a picture in the catalog's vocabulary.

The picture goes to the model as an image content block (a base64 data URL) beside the list of
askable attributes and their values; the model answers ``{attributes, caption, colours}``.
Values outside the vocabulary make an :class:`~crs.llm.structured.LLMError`, and the dialogue
manager reads that picture with the offline reader instead. The schema and its check are shared
with the transformers reader (:mod:`crs.understanding.hf_reader`), which prompts for the same JSON.
"""
from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from PIL import Image
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from crs.facts import CatalogFacts
from crs.understanding.reader import LIKELY_VALUES, ImageReader, ReadContext
from crs.understanding.offline_reader import COLOUR_ATTRIBUTES
from crs.turn import ImageReading
from crs.llm import vocabulary
from crs.llm.backends import load_stage_model
from crs.llm.pictures import data_url
from crs.llm.prompts import Prompt, fit, load_prompt
from crs.llm.relevance import FULL_LIST, Offer, describe_offer
from crs.llm.schema import MAX_CAPTION, MAX_COLOURS, reading_schema
from crs.llm.structured import LLMError, ask_json, one_of, value_lists, with_json_schema

MAX_TOKENS = 300  # a reading is a few values and a caption; a model that rambles is cut off early
DEFAULT_TIMEOUT_S = 30.0  # reading a picture takes a vision model several times longer than text
PROMPT_TOKENS = 1000  # the text (under 300 tokens) and the picture's tokens
PER_PICTURE = LIKELY_VALUES  # values offered from a large vocabulary: the picture's most likely ones
REPLY_TOKENS = 96  # a few values and a one-sentence caption


class ReadingAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    attributes: dict[str, list[str]] = {}
    caption: str = ""
    colours: list[str] = Field(default=[], validation_alias=AliasChoices("colours", "colors"))

    @field_validator("attributes", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return value_lists(value)

    @field_validator("colours", mode="before")
    @classmethod
    def _colours(cls, value: Any) -> Any:
        return [] if value is None else [value] if isinstance(value, str) else value

    @field_validator("caption", mode="before")
    @classmethod
    def _caption(cls, value: Any) -> Any:
        return "" if value is None else value


def colour_attribute(facts: CatalogFacts) -> str | None:
    """The catalog's colour attribute, if it has one (named as the offline reader expects)."""
    return next((a for a in COLOUR_ATTRIBUTES if a in facts.attributes), None)


def offered_values(context: ReadContext, most: int = PER_PICTURE) -> dict[str, list[str]]:
    """The values the prompt offers per askable attribute: a small vocabulary whole; from a larger
    one, the ``most`` values the picture most likely has (``context.likely``: the offline reader's
    ranking; the dialogue manager always gives one), or without a ranking its ``most`` most
    frequent values."""
    offered = {}
    for info in context.facts.askable():
        if len(info.values) <= FULL_LIST:
            offered[info.name] = list(info.values)
        elif context.likely is not None and context.likely.get(info.name):
            offered[info.name] = list(context.likely[info.name])[:most]
        else:
            offered[info.name] = list(info.values[:most])
    return offered


def prompt_values(context: ReadContext, offered: dict[str, list[str]]) -> dict[str, str]:
    """The values that fill the image_reader prompt offering ``offered`` (:func:`offered_values`)."""
    colour = colour_attribute(context.facts)
    note = (f" Name the colours with values of {colour}." if colour else "")
    return {"vocabulary": describe_offer(Offer(values=offered), context.facts), "colour_note": note}


def fitted_prompt(prompt: Prompt, context: ReadContext) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The prompt's values with as many values per large vocabulary as keep it within its budget
    (``PER_PICTURE``, half that, 2), and the values it offers (the schema allows those, no others)."""
    mosts = (PER_PICTURE, PER_PICTURE // 2, 2)

    def build(level: int) -> tuple[dict[str, str], dict[str, list[str]]]:
        offered = offered_values(context, mosts[level])
        return prompt_values(context, offered), offered

    return fit(build, len(mosts), size=lambda built: sum(map(len, prompt.texts(**built[0]))))


def reading_from_answer(answer: ReadingAnswer, facts: CatalogFacts, source: str) -> ImageReading:
    """The answer in the catalog's terms; LLMError when a name or value is not in the vocabulary."""
    askable = [info.name for info in facts.askable()]
    attributes = vocabulary.attribute_values(facts, answer.attributes, "attributes", askable)
    colour = colour_attribute(facts)
    colours: list[str] = []
    for n, value in enumerate(answer.colours[:MAX_COLOURS]):
        if colour is not None:
            value = one_of(f"colours.{n}", value, facts.attributes[colour].values)
        elif not value.strip():
            continue
        colours.append(value.strip().lower() if colour is None else value)
    colours = list(dict.fromkeys(colours))
    if colour in askable and colours and colour not in attributes:
        attributes[colour] = colours  # the belief reads attributes, not the colour list
    caption = " ".join(answer.caption.split())[:MAX_CAPTION] or _caption(attributes)
    return ImageReading(attributes=attributes, caption=caption, colours=colours, nearest=[], source=source)


def _caption(attributes: dict[str, list[str]]) -> str:
    words = [values[0] for values in attributes.values() if values][:3]
    return "a " + " ".join(words + ["picture"]) if words else "a picture"


class LLMImageReader(ImageReader):
    name = "llm"

    def __init__(self, model: BaseChatModel, *, spec: str = "model", timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.model = model
        self.source = f"llm:{spec}"
        self.timeout_s = timeout_s
        self.prompt: Prompt = load_prompt("image_reader")

    @classmethod
    def from_spec(cls, spec: str, *, timeout_s: float | None = None) -> LLMImageReader:
        """A reader over the (vision) model named by an ``--llm`` setting (see :mod:`crs.llm.backends`);
        its time limit is ``timeout_s`` if given, else set from the backend's measured speed."""
        model, timeout_s = load_stage_model(spec, timeout_s, DEFAULT_TIMEOUT_S, PROMPT_TOKENS, REPLY_TOKENS,
                                            max_tokens=MAX_TOKENS)
        return cls(model, spec=spec, timeout_s=timeout_s)

    def read(self, image: Image.Image, context: ReadContext) -> ImageReading:
        if not context.facts.askable():
            raise LLMError("the catalog has no attributes to read from a picture")
        values, offered = fitted_prompt(self.prompt, context)
        messages = self.prompt.messages(images=[data_url(image)], **values)
        colour = colour_attribute(context.facts)  # the schema offers what the prompt listed, no more
        schema = reading_schema(offered, context.facts.attributes[colour].values if colour else None)
        answer = ask_json(with_json_schema(self.model, schema, "reading"), messages, ReadingAnswer,
                          timeout_s=self.timeout_s)
        return reading_from_answer(answer, context.facts, self.source)
