"""Ask-or-recommend policies, chosen by name through :data:`POLICIES` (a
:class:`~retrieval.registry.Registry`): ``eig`` (default: :mod:`crs.policy.planner`, questions
weighed against pages over the turns left), ``eig-greedy`` (the earlier default, a two-turn
information-gain gate, :mod:`crs.policy.eig`), ``eig-no-lookahead``,
``always-recommend``, ``ask-N`` (e.g. ``ask-3``), ``random-ask``, ``max-entropy[:N]`` (EAR/SCPR's
baseline), ``llm`` (needs an LLM setting) and ``fake:STEPS`` (a scripted ask/recommend sequence, for
tests).

Adding a policy: write its module in this package (a :class:`Policy` subclass with ``decide``)
and add one ``POLICIES.register`` line below. A separate package adds one through the entry-point
group ``crs.policies`` (see retrieval/registry.py)."""
from __future__ import annotations

from typing import Any

from retrieval.registry import Registry

from .base import Ask, Candidates, Decision, Policy, PolicyContext, Recommend
from .baselines import AlwaysRecommend, AskNThenRecommend, RandomAsk, ScriptedPolicy
from .eig import EIGPolicy
from .max_entropy import MaxEntropyPolicy
from .planner import PlannedEIGPolicy

__all__ = ["Ask", "Candidates", "Decision", "Policy", "PolicyContext", "Recommend", "load_policy",
           "load_policy_option", "POLICIES", "POLICY_NAMES", "BASELINES"]

# factory(arg, *, llm, seed) -> Policy; arg follows "name:" in the spec, or is None.
POLICIES: Registry[Policy] = Registry("policy", "crs.policies")


def _llm_policy(arg: str | None, *, llm: str | None = None, **_: Any) -> Policy:
    if not llm:
        raise ValueError("the llm policy needs an LLM: give --llm (e.g. ollama:qwen2.5:7b)")
    from ..llm.policy import LLMPolicy  # imports LangChain: only when asked for

    return LLMPolicy.from_spec(llm)


def _ask_n(arg: str | None, **_: Any) -> Policy:
    if not arg or not arg.isdigit():
        raise ValueError(f"ask-N needs a number of questions, e.g. ask-3 (got {arg!r})")
    return AskNThenRecommend(n=int(arg), name=f"ask-{arg}")


def _max_entropy(arg: str | None, **_: Any) -> Policy:
    if arg is not None and not arg.isdigit():
        raise ValueError(f"max-entropy:N needs a number of questions, e.g. max-entropy:3 (got {arg!r})")
    return MaxEntropyPolicy(n=int(arg) if arg else 3)


POLICIES.register("eig", lambda arg, **_: PlannedEIGPolicy())
# The earlier default and the gate before its lookahead, kept for comparison (docs/experiments.md).
POLICIES.register("eig-greedy", lambda arg, **_: EIGPolicy(name="eig-greedy"))
POLICIES.register("eig-no-lookahead", lambda arg, **_: EIGPolicy(horizon=0, name="eig-no-lookahead"))
POLICIES.register("always-recommend", lambda arg, **_: AlwaysRecommend())
POLICIES.register("random-ask", lambda arg, *, seed=0, **_: RandomAsk(seed=seed))
POLICIES.register("ask", _ask_n, "ask-N", pattern=r"ask-(\d+)(?:-then-recommend)?")
POLICIES.register("max-entropy", _max_entropy, "max-entropy[:N]")
POLICIES.register("llm", _llm_policy)
POLICIES.register("fake", lambda arg, **_: _scripted(arg), "fake:ask,recommend,...")


def _scripted(arg: str | None) -> Policy:
    steps = tuple(step.strip() for step in (arg or "recommend").split(","))
    if not all(step in ("ask", "recommend") for step in steps):
        raise ValueError(f"a fake policy's script is ask/recommend steps, e.g. fake:ask,ask,recommend (got {arg!r})")
    return ScriptedPolicy(steps)

POLICY_NAMES = ("eig", "always-recommend", "ask-N", "random-ask", "max-entropy[:N]", "llm")
BASELINES = ("always-recommend", "ask-3", "random-ask", "max-entropy")


def load_policy(name: str, *, llm: str | None = None, seed: int = 0) -> Policy:
    return POLICIES.create(name, llm=llm, seed=seed)


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
