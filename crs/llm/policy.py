"""The LLM policy: a chat model decides whether to ask (and about what) or to recommend.

The model sees the belief in words, the most likely candidates and the questions it may ask
(askable attributes not asked or settled yet, each with the options the person would see, from
:func:`~crs.policy.base.question_options`). It chooses; the options and the recommended items
are still computed here, so the model only makes the decision it is good at. An answer naming
an attribute that is not on the list is an :class:`~crs.llm.structured.LLMError`, and the
dialogue manager lets the default policy decide the turn.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ConfigDict, field_validator

from ..policy.base import ANY, Ask, Decision, Policy, PolicyContext, Recommend, question_options, top_new
from . import vocabulary
from .backends import load_stage_model
from .prompts import fit, load_prompt
from .schema import policy_schema
from .structured import LLMError, ask_json, one_of, with_json_schema

MAX_TOKENS = 64  # the answer is one short object; a model that rambles is cut off early
DEFAULT_TIMEOUT_S = 10.0  # for backends whose speed is not measured (servers)
PROMPT_TOKENS = 300  # the prompt budget (measured by benchmarks/llm_stages.py)
REPLY_TOKENS = 24  # {"action": "ask", "attribute": "..."}
SHORTLIST = 5  # candidates described to the model at most
# (candidates, values per candidate, options per question) from the fullest prompt to the
# shortest; the first that fits the prompt budget is used (crs.llm.prompts.fit)
LEVELS = ((SHORTLIST, 3, 6), (4, 2, 5), (3, 2, 4), (3, 1, 3), (2, 1, 3))

Titles = Callable[[list[int]], dict[int, str]]  # store ids -> titles (e.g. a store lookup)


class PolicyAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Literal["ask", "recommend"]
    attribute: str | None = None

    @field_validator("action", mode="before")
    @classmethod
    def _action(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


class LLMPolicy(Policy):
    def __init__(self, model: BaseChatModel, *, spec: str = "model", timeout_s: float = DEFAULT_TIMEOUT_S,
                 titles: Titles | None = None, shortlist: int = SHORTLIST) -> None:
        self.model = model
        self.name = f"llm:{spec}"
        self.timeout_s = timeout_s
        self.titles = titles  # without titles, candidates are described by their attribute values only
        self.shortlist = shortlist
        self.prompt = load_prompt("policy")

    @classmethod
    def from_spec(cls, spec: str, *, timeout_s: float | None = None, titles: Titles | None = None) -> LLMPolicy:
        """A policy over the model named by an ``--llm`` setting (see :mod:`crs.llm.backends`);
        its time limit is ``timeout_s`` if given, else set from the backend's measured speed."""
        model, timeout_s = load_stage_model(spec, timeout_s, DEFAULT_TIMEOUT_S, PROMPT_TOKENS, REPLY_TOKENS,
                                            max_tokens=MAX_TOKENS)
        return cls(model, spec=spec, timeout_s=timeout_s, titles=titles)

    def decide(self, context: PolicyContext) -> Decision:
        if len(context.candidates) == 0:
            return Recommend([], "nothing matches")
        questions = self.questions(context)
        if not questions:  # nothing left worth asking: no decision for the model to make
            return Recommend(top_new(context), "no question left to ask")

        def build(level: int) -> list[BaseMessage]:  # a longer prompt lists fewer items, values and options
            shortlist, values, options = LEVELS[level]
            return self.prompt.messages(
                summary=context.summary or "nothing yet", turn=context.turn, count=len(context.candidates),
                candidates=self._describe_candidates(context, min(shortlist, self.shortlist), values),
                questions="\n".join(f"- {name}: {_options(listed, options)}" for name, listed in questions.items()))

        messages = fit(build, len(LEVELS))
        # Constrained to the listed questions where the backend can: an attribute off the list
        # cannot be generated; elsewhere it is an LLMError below.
        answer = ask_json(with_json_schema(self.model, policy_schema(list(questions)), "policy"), messages,
                          PolicyAnswer, timeout_s=self.timeout_s)
        if answer.action == "recommend":
            return Recommend(top_new(context), "the LLM chose to recommend")
        if not answer.attribute:
            raise LLMError("field attribute: an ask needs an attribute")
        attribute = one_of("attribute", answer.attribute, list(questions))
        return Ask(attribute, questions[attribute])

    def questions(self, context: PolicyContext) -> dict[str, list[str]]:
        """Askable attributes not asked or settled, whose question offers two values or more."""
        out = {}
        for info in context.facts.askable():
            if info.name in context.asked or info.name in context.settled:
                continue
            options = question_options(context, info.name)
            if len([o for o in options if o != ANY]) >= 2:  # one value (+ any) tells nothing
                out[info.name] = options
        return out

    def _describe_candidates(self, context: PolicyContext, shortlist: int, most: int) -> str:
        order = np.argsort(-context.candidates.posterior, kind="stable")[:shortlist]
        ids = [int(context.candidates.ids[i]) for i in order]
        titles = self.titles(ids) if self.titles else {}
        askable = {info.name for info in context.facts.askable()}
        lines = []
        for i, item_id, values in zip(order, ids, context.facts.values_of(ids)):
            shown = [f"{name} {vocabulary.format_value(value)}" for name, value in values.items()
                     if name in askable][:most]
            label = f"- {titles.get(item_id) or f'item {item_id}'} ({context.candidates.posterior[i]:.0%})"
            lines.append(label + (f": {'; '.join(shown)}" if shown else ""))
        return "\n".join(lines)


def _options(options: list[str], most: int) -> str:
    """A question's options, the first ``most`` of its values and "any" (the count of the rest)."""
    values = [o for o in options if o != ANY]
    shown = values[:most] + (["any"] if ANY in options else [])
    more = len(values) - most
    return ", ".join(shown) + (f" (+{more} more)" if more > 0 else "")
