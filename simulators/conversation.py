"""One simulated conversation, through the dialogue manager's public methods only.

The loop: the simulator opens (``respond(None)``), the dialogue manager replies, the simulator
answers the reply, and so on. It stops at success (the target among the items a reply shows,
``Reply.items[*].item_id``), after ``max_turns`` replies, or when the simulator gives up (its
goodbye is not sent). A turn is one message and its reply; what is recorded per turn is
:class:`~simulators.results.TurnResult`: the text the system received (after leak redaction),
how many images, the action, the shown ids, ``Reply.ranking`` (the top-k when the policy
decided), the leak flag, fallbacks (the simulator's, e.g. ``"simulator"``, then the dialogue
manager's own, as ``Reply.fallbacks`` words them), the wall time of ``respond``, and what the
harness caught in an LLM user's line (``TurnNotes.checks``: role breaks, false accepts, ...).

:class:`SimulatorSpec` is how a run names its simulated user; it is plain, picklable data that
worker processes turn into a simulator per conversation with :meth:`SimulatorSpec.build`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from crs.dialogue import DialogueManager

from retrieval.registry import Registry

from .agenda import AgendaConfig, AgendaSimulator
from .base import Intent, UserSimulator
from .profiles import AGENDA_PROFILES, DEFAULT_PROFILE, PROFILES
from .results import ConversationResult, TurnResult
from .targets import ConversationPlan
from .world import SimulationWorld


# factory(arg, *, world, plan, spec) -> UserSimulator; installed packages add users through the
# entry-point group crs.simulated_users (see retrieval/registry.py).
SIMULATORS: Registry[UserSimulator] = Registry("simulated user", "crs.simulated_users")


def _understood(dm: DialogueManager, session: str, intent: Intent | None) -> bool | None:
    """Whether the system understood the last message as meant: the intent against the critique
    stored with the turn (read by the harness, as a log; the simulated user never sees it). None
    when there is no intent, or no stored turn to compare with (a stand-in dialogue manager)."""
    history = getattr(dm, "history", None)
    if intent is None or history is None:
        return None
    turns = history(session)
    return intent.matches((turns[-1].get("understanding") or {}).get("critique")) if turns else None


def phrase_of(intent: Intent | None) -> str | None:
    """The intent's kind of phrase and value forms as one label: "like-but: synonym, typo"."""
    if intent is None or not intent.kind:
        return None
    return f"{intent.kind}: {', '.join(intent.forms)}" if intent.forms else intent.kind


def run_conversation(dm: DialogueManager, simulator: UserSimulator, plan: ConversationPlan, *,
                     max_turns: int) -> ConversationResult:
    if max_turns < 1:
        raise ValueError(f"max_turns must be >= 1, got {max_turns}")
    session = dm.start({"simulated": True, "conversation": plan.index})
    turns: list[TurnResult] = []
    reply = None
    success_turn: int | None = None
    gave_up = False
    for number in range(1, max_turns + 1):
        message = simulator.respond(reply)
        if simulator.gave_up:
            gave_up = True
            break
        notes = simulator.notes
        started = time.perf_counter()
        reply = dm.respond(session, message)
        latency_ms = (time.perf_counter() - started) * 1000
        shown = [item.item_id for item in reply.items]
        understood = _understood(dm, session, notes.intent)
        turns.append(TurnResult(number, message.text, len(message.images), reply.action, shown, list(reply.ranking),
                                notes.leaked, [*notes.fallbacks, *reply.fallbacks], round(latency_ms, 3),
                                understood, phrase_of(notes.intent),
                                None if notes.checks is None else list(notes.checks)))
        if plan.target_id in shown:
            success_turn = number
            break
    return ConversationResult(plan.index, plan.target_id, plan.start, success_turn is not None, success_turn,
                              sum(t.action == "ask" for t in turns), turns, gave_up)


@dataclass(frozen=True)
class SimulatorSpec:
    """The simulated user of a run: ``agenda`` (rules) or ``llm`` (a chat model named by ``llm``,
    an ``--llm`` setting). The noise rates and patience configure the agenda user, which is also
    the LLM user's per-turn fallback; ``vision`` sends the target's picture to the LLM user."""

    kind: str = "agenda"
    llm: str | None = None
    wrong_rate: float | None = None  # None: the profile's (--noise)
    dont_know_rate: float | None = None  # None: the profile's
    vision: bool = False
    patience: int | None = None
    timeout_s: float = 30.0  # per LLM call
    profile: str = DEFAULT_PROFILE  # one of PROFILES; "llm" goes with kind "llm"

    def __post_init__(self) -> None:
        SIMULATORS.check(self.kind)
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        # The LLM user is a simulator and a profile at once: either name selects it.
        if self.kind == "llm" and self.profile == DEFAULT_PROFILE:
            object.__setattr__(self, "profile", "llm")
        elif self.profile == "llm" and self.kind == "agenda":
            object.__setattr__(self, "kind", "llm")
        if (self.profile == "llm") != (self.kind == "llm"):
            raise ValueError(f"the llm simulator has only the llm profile, not {self.profile!r}")
        if self.kind == "llm" and not self.llm:
            raise ValueError("the llm simulator needs a model: --llm SCHEME:MODEL (e.g. ollama:qwen2.5:7b)")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")
        self.agenda_config()  # rates and patience are checked there

    def agenda_config(self) -> AgendaConfig:
        """The agenda user's settings; for the LLM user, those of its fallback (the default profile)."""
        profile = self.profile if self.profile in AGENDA_PROFILES else DEFAULT_PROFILE
        return AgendaConfig.for_profile(profile, wrong_rate=self.wrong_rate, dont_know_rate=self.dont_know_rate,
                                        patience=self.patience)

    def build(self, world: SimulationWorld, plan: ConversationPlan) -> UserSimulator:
        return SIMULATORS.create(self.kind, world=world, plan=plan, spec=self)


def _agenda(arg: str | None, *, world: SimulationWorld, plan: ConversationPlan, spec: SimulatorSpec) -> UserSimulator:
    return AgendaSimulator(world, plan, spec.agenda_config())


def _llm_user(arg: str | None, *, world: SimulationWorld, plan: ConversationPlan,
              spec: SimulatorSpec) -> UserSimulator:
    from .llm_user import LLMSimulator  # imports LangChain: only when asked for

    assert spec.llm is not None
    return LLMSimulator.from_spec(world, plan, spec.llm, vision=spec.vision, timeout_s=spec.timeout_s,
                                  agenda=spec.agenda_config())


SIMULATORS.register("agenda", _agenda)
SIMULATORS.register("llm", _llm_user)
