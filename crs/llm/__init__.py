"""LLM-backed dialogue stages: a critique parser, an image reader and a policy over any LangChain
chat model, chosen with one ``--llm`` setting (:mod:`crs.llm.backends`).

Each stage asks its model for one JSON object (:mod:`crs.llm.structured`) with a prompt from
``prompts/`` and checks the answer against the catalog's vocabulary. Any failure (timeout,
unreachable server, garbage, a value outside the vocabulary) raises
:class:`~crs.llm.structured.LLMError`, a :class:`~crs.errors.StageFailure`: the dialogue manager
then runs the rule-based stage for that turn.
"""
from .structured import LLMError

__all__ = ["LLMError"]
