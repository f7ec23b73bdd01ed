"""Ask-or-recommend policies, chosen by name: ``eig`` (default), ``always-recommend``,
``ask-N`` (e.g. ``ask-3``), ``random-ask`` and ``llm`` (needs an LLM setting)."""
from __future__ import annotations

import re

from .base import Ask, Candidates, Decision, Policy, PolicyContext, Recommend
from .baselines import AlwaysRecommend, AskNThenRecommend, RandomAsk
from .eig import EIGPolicy

__all__ = ["Ask", "Candidates", "Decision", "Policy", "PolicyContext", "Recommend", "load_policy",
           "load_policy_option", "POLICY_NAMES", "BASELINES"]

POLICY_NAMES = ("eig", "always-recommend", "ask-N", "random-ask", "llm")
BASELINES = ("always-recommend", "ask-3", "random-ask")


def load_policy(name: str, *, llm: str | None = None, seed: int = 0) -> Policy:
    name = name.strip()
    if name == "eig":
        return EIGPolicy()
    if name == "eig-no-lookahead":  # the gate before lookahead, kept for comparison
        return EIGPolicy(horizon=0, name=name)
    if name == "always-recommend":
        return AlwaysRecommend()
    if name == "random-ask":
        return RandomAsk(seed=seed)
    match = re.fullmatch(r"ask-(\d+)(?:-then-recommend)?", name)
    if match:
        return AskNThenRecommend(n=int(match.group(1)), name=f"ask-{match.group(1)}")
    if name == "llm":
        if not llm:
            raise ValueError("the llm policy needs an LLM: give --llm (e.g. ollama:qwen2.5:7b)")
        from ..llm.policy import LLMPolicy  # imports LangChain: only when asked for

        return LLMPolicy.from_spec(llm)
    raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICY_NAMES)}")


def load_policy_option(name: str, *, llm: str | None = None, seed: int = 0) -> Policy:
    """:func:`load_policy` for a ``--policy`` setting: a bad name, a missing LLM or missing LLM
    extras become a :class:`~crs.errors.UserError` naming the option."""
    from ..errors import UserError

    try:
        return load_policy(name, llm=llm, seed=seed)
    except ValueError as exc:
        raise UserError(f"--policy {name}: {exc}") from None
    except ImportError as exc:  # the LLM extras are not installed
        raise UserError(f"--policy {name}: cannot load the LLM support ({exc})") from None
