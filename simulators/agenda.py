"""The agenda-based simulated user: grounded in the target's attribute values and picture.

It is deterministic given the plan's seed (one generator for decisions, another for wording,
so rewording a template never changes what the user decides). Each turn:

* opening (per the plan's start): a picture of another-style version or of a similar item, with
  the one change that matters most ("like this but 3d": the style first, when it differs),
  or a vague text of two of the target's values from coarse attributes (30 values or fewer);
* a question: the target's value among the options (the first offered, for a multi-valued
  target); none offered: its value by name, or "any" when it has none. Noise: with
  ``wrong_rate`` another offered option, with ``dont_know_rate`` "I don't know";
* a recommendation: the target shown -> accept it ("#2 is it"). Else the shown item closest to
  the target (most agreeing talkable attributes, then image cosine) is the reference:
  fewer than half the attributes agree -> "none of these" + one wanted value; some differ ->
  "like the second but blue" (sometimes two changes, sometimes "... but not outline", what
  that item has and the target lacks); all agree -> "more like #k" for the item whose picture
  is nearest the target, sometimes with "not #j" for the farthest;
* nothing shown (no item met every wish): the value of a wrongly answered attribute, else one
  not said yet;
* after ``patience`` replies without the target it gives up: :attr:`gave_up` becomes True and the
  returned goodbye is not sent (the conversation ends as a failure).

That is the ``critiquing`` profile. The ``mcr`` profile is the field's multi-round protocol
(EAR / SCPR / UNICORN): it accepts if and only if the target is shown; any other page gets "none
of these" with no reason; a question gets the target's value among the options, as a click on
that option would send it, or "any" when the target has none of them; no critiques, no noise.

Each message records its intent (:class:`simulators.base.Intent`): what the user meant, for the
understanding rate.

Every line is checked against the rule parser (:func:`simulators.phrasing.understood`) before it
is sent; the user only names values the parser reads alone as that value.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from crs.understanding.parser import ParseContext, ShownItem
from crs.policy.base import ANY
from crs.turn import Message, Question, Reply, ReplyItem

from . import phrasing
from .base import Intent, TurnNotes, UserSimulator
from .phrasing import Phrase
from .profiles import AGENDA_PROFILES
from .targets import ConversationPlan, SimulationWorld

COARSE_VALUES = 30  # an opening text names values of attributes with at most this many values ("vague")
OPENING_VALUES = 2
TWO_CHANGES_RATE = 0.3  # a critique names two changes at once this often
NEGATIVE_RATE = 0.25  # a one-change critique says what the item should not have this often
DISLIKE_RATE = 0.5  # "more like #k" also rejects the least similar item this often
PROFILES = AGENDA_PROFILES  # how the user talks; see the module docstring
PROFILE_SETTINGS: dict[str, dict[str, Any]] = {
    "realistic": {"wrong_rate": 0.1, "dont_know_rate": 0.1, "patience": (4, 10)},
    "critiquing": {"wrong_rate": 0.1, "dont_know_rate": 0.0, "patience": None},
    "mcr": {"wrong_rate": 0.0, "dont_know_rate": 0.0, "patience": None},
}
REJECT_ALL = "none of these"


@dataclass(frozen=True)
class AgendaConfig:
    wrong_rate: float = 0.1  # an answer names another offered option
    dont_know_rate: float = 0.0  # an answer is "I don't know"
    # System replies without the target before giving up: a number, a (low, high) range drawn per
    # user, or None (never).
    patience: int | tuple[int, int] | None = None
    profile: str = "critiquing"  # see simulators.profiles

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        for name in ("wrong_rate", "dont_know_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if self.wrong_rate + self.dont_know_rate > 1.0:
            raise ValueError("wrong_rate + dont_know_rate must be at most 1")
        if self.profile == "mcr" and (self.wrong_rate or self.dont_know_rate):
            raise ValueError("the mcr profile answers truthfully: no wrong or 'don't know' answers")
        bounds = self.patience if isinstance(self.patience, tuple) else (self.patience, self.patience)
        if self.patience is not None and not (1 <= bounds[0] <= bounds[1]):
            raise ValueError(f"patience must be >= 1 (a range low <= high), or None; got {self.patience}")

    @classmethod
    def for_profile(cls, profile: str, *, wrong_rate: float | None = None, dont_know_rate: float | None = None,
                    patience: int | tuple[int, int] | None = None) -> AgendaConfig:
        """A profile's settings, with any of them overridden."""
        defaults = PROFILE_SETTINGS[profile]
        return cls(defaults["wrong_rate"] if wrong_rate is None else wrong_rate,
                   defaults["dont_know_rate"] if dont_know_rate is None else dont_know_rate,
                   defaults["patience"] if patience is None else patience, profile)


class AgendaSimulator(UserSimulator):
    def __init__(self, world: SimulationWorld, plan: ConversationPlan, config: AgendaConfig | None = None) -> None:
        self.world = world
        self.plan = plan
        self.config = config or AgendaConfig()
        self.target_id = plan.target_id
        self.rng = random.Random(plan.seed)  # what to say
        self.words = random.Random(f"words:{plan.seed}")  # how to say it
        self.gave_up = False
        self.notes = TurnNotes()
        patience = self.config.patience
        self.patience = random.Random(f"patience:{plan.seed}").randint(*patience) if isinstance(patience, tuple) \
            else patience
        self.replies = 0  # system replies seen
        self.last_shown: list[ShownItem] = []  # the last recommendation, as the dialogue manager keeps it
        self.wrong: set[str] = set()  # attributes answered wrongly and not corrected since
        # The value the user has in mind per attribute (one of a multi-valued target's, fixed for
        # the conversation), for the attributes whose value the parser reads on its own.
        self.preferred: dict[str, str] = {}
        for info in world.talkable:
            values = world.value_list(self.target_id, info.name)
            sayable = [v for v in values if self._reads_alone(info.name, v)]
            if sayable:
                self.preferred[info.name] = self.rng.choice(sayable)
        # The agenda: the order in which the user brings attributes up when free to choose.
        self.agenda = sorted(self.preferred)
        self.rng.shuffle(self.agenda)

    # -- the turn -------------------------------------------------------------------------------------

    def respond(self, reply: Reply | None) -> Message:
        self.notes = TurnNotes()
        if reply is None:
            return self._opening()
        self.replies += 1
        shown = [item.item_id for item in reply.items]
        if reply.action == "recommend":
            self.last_shown = [self._shown_item(i) for i in shown]
        if reply.action == "recommend" and self.target_id in shown:
            index = shown.index(self.target_id)
            return self._message(self._say(phrasing.accept(self.words, index)), f"#{index + 1} is it")
        if self.patience is not None and self.replies >= self.patience:
            self.gave_up = True
            return Message(phrasing.goodbye(self.words))
        if self.config.profile == "mcr":
            return self._mcr(reply)
        if reply.action == "ask" and reply.question is not None:
            return self._answer(reply.question)
        if reply.action == "recommend" and reply.items:
            return self._critique(reply.items)
        return self._restate()

    def _opening(self) -> Message:
        item = self.world.start_item(self.plan)
        if item is None:
            coarse = [a for a in self.agenda if len(self.world.facts.attributes[a].values) <= COARSE_VALUES]
            chosen = (coarse + [a for a in self.agenda if a not in coarse])[:OPENING_VALUES]
            pairs = [(a, self.preferred[a]) for a in chosen]
            return self._message(self._say(phrasing.openings(self.words, pairs)), " ".join(v for _, v in pairs))
        image = self.world.images[item]
        assert image is not None  # start items are drawn among items with a picture
        differing = [a for a in self.agenda if not self._agrees(item, a)]
        style = self.world.style_attribute
        if style in differing:  # "this, but in 3D": the change a cross-style start is about
            differing.remove(style)
            differing.insert(0, style)
        pairs = [(a, self.preferred[a]) for a in differing[:1]]
        phrase = self._say(phrasing.image_openings(self.words, pairs)) or Phrase("")
        return Message(phrase.text, (image,))

    def _mcr(self, reply: Reply) -> Message:
        """The field's protocol: a truthful click on a question, a silent "none of these" otherwise."""
        if reply.action == "ask" and reply.question is not None:
            attribute = reply.question.attribute
            truth = self.world.value_list(self.target_id, attribute) if attribute in self.world.facts.attributes else []
            offered = [o for o in reply.question.options if o != ANY]
            right = [o for o in offered if o in truth]
            if right:
                return self._noted(Message(right[0]), Intent(require={attribute: (right[0],)}))
            if truth and offered:  # it has a value, just not one of these
                return self._noted(Message(REJECT_ALL), Intent(exclude={attribute: tuple(offered)}))
            return self._noted(Message(ANY), Intent(dont_care=(attribute,)))
        return self._noted(Message(REJECT_ALL), Intent(reject_all=True))

    def _noted(self, message: Message, intent: Intent) -> Message:
        self.notes = TurnNotes(intent=intent)
        return message

    def _answer(self, question: Question) -> Message:
        attribute = question.attribute
        options = [o for o in question.options if o != ANY]
        truth = self.world.value_list(self.target_id, attribute) if attribute in self.world.facts.attributes else []
        draw = self.rng.random()
        if draw < self.config.wrong_rate:
            wrong = [o for o in options if o not in truth]
            if wrong:
                self.wrong.add(attribute)
                value = self.rng.choice(wrong)
                return self._message(self._say(phrasing.answers(self.words, attribute, value), question), value)
        elif draw < self.config.wrong_rate + self.config.dont_know_rate:
            return self._message(self._say(phrasing.dont_know(self.words, attribute), question), ANY)
        right = [o for o in options if o in truth]
        named = right[0] if right else self.preferred.get(attribute)
        if named is None:  # nothing of the target's among the options, and nothing it could name
            return self._message(self._say(phrasing.dont_care(self.words, attribute), question), ANY)
        self.wrong.discard(attribute)
        fallback = named if named in options else ANY  # a button click always parses
        return self._message(self._say(phrasing.answers(self.words, attribute, named), question), fallback)

    def _critique(self, items: Sequence[ReplyItem]) -> Message:
        shown = [item.item_id for item in items]
        agree = [[a for a in self.agenda if self._agrees(j, a)] for j in shown]
        similarity = self.world.image_similarity(self.target_id, shown)
        looks = similarity if similarity is not None else np.zeros(len(shown))
        best = max(range(len(shown)), key=lambda p: (len(agree[p]), looks[p], -p))
        differing = [a for a in self.agenda if a not in agree[best]]
        if 2 * len(agree[best]) < len(self.agenda):  # nothing is close
            wanted = [(a, self.preferred[a]) for a in differing[:1]]
            phrase = self._say_all(phrasing.reject_all(self.words),
                                   phrasing.wishes(self.words, wanted) if wanted else [])
            return self._message(phrase, "none of these")
        if differing:
            count = 2 if len(differing) > 1 and self.rng.random() < TWO_CHANGES_RATE else 1
            negative = count == 1 and self.rng.random() < NEGATIVE_RATE
            attribute = differing[0]
            wanted_values = self.world.value_list(self.target_id, attribute)
            unwanted = [v for v in self.world.value_list(shown[best], attribute)
                        if v not in wanted_values and self._reads_alone(attribute, v)]
            if negative and unwanted:
                phrases = phrasing.like_but(self.words, best, [(attribute, unwanted[0])], negative=True)
            else:
                phrases = phrasing.like_but(self.words, best, [(a, self.preferred[a]) for a in differing[:count]])
            return self._message(self._say(phrases), self.preferred[attribute])
        # Every talkable value agrees: only the picture can tell them apart.
        nearest = int(np.argmax(looks))
        farthest = int(np.argmin(looks))
        dislike = len(shown) > 1 and farthest != nearest and self.rng.random() < DISLIKE_RATE
        phrase = self._say_all(phrasing.more_like(self.words, nearest),
                               phrasing.not_item(self.words, farthest) if dislike else [])
        return self._message(phrase, f"more like #{nearest + 1}")

    def _restate(self) -> Message:
        """Nothing shown: correct a wrong answer, else say a value not said yet."""
        order = sorted(self.wrong) + self.agenda
        attribute = next((a for a in order if a in self.preferred), None)
        if attribute is None:
            return Message("something else")  # a catalog without talkable values: only "others" is left
        self.wrong.discard(attribute)
        value = self.preferred[attribute]
        return self._message(self._say(phrasing.wishes(self.words, [(attribute, value)])), value)

    # -- pieces ------------------------------------------------------------------------------------------

    def _agrees(self, item_id: int, attribute: str) -> bool:
        mine = set(self.world.value_list(self.target_id, attribute))
        theirs = set(self.world.value_list(item_id, attribute))
        return bool(mine & theirs) or mine == theirs

    def _shown_item(self, item_id: int) -> ShownItem:
        return ShownItem(item_id, self.world.titles.get(item_id, ""), self.world.values(item_id))

    def _reads_alone(self, attribute: str, value: str) -> bool:
        parsed = self.world.parser.parse(value, ParseContext(self.world.facts))
        return parsed.require == {attribute: [value]} and not parsed.exclude

    def _say(self, phrases: Sequence[Phrase], question: Question | None = None) -> Phrase | None:
        """The first phrase the rule parser reads as intended, in the current context."""
        context = ParseContext(self.world.facts, self.last_shown, question)
        for phrase in phrases:
            if phrasing.understood(self.world.parser.parse(phrase.text, context), phrase.intent):
                return phrase
        return None

    def _say_all(self, *pools: Sequence[Phrase]) -> Phrase | None:
        """One phrase from each pool, as clauses of one message; the first alone if they clash."""
        parts = [p for p in (self._say(pool) for pool in pools if pool) if p is not None]
        if not parts:
            return None
        whole = phrasing.combine(*parts)
        return whole if self._say([whole]) is not None else parts[0]

    def _message(self, phrase: Phrase | None, fallback: str) -> Message:
        """The phrase as a message, its intent noted; without one, the bare fallback (intent unknown)."""
        if phrase is None:
            return Message(fallback)
        meant = phrase.intent
        self.notes = TurnNotes(intent=Intent(
            require={a: tuple(v) for a, v in meant.require.items()}, exclude={a: tuple(v) for a, v in meant.exclude.items()},
            accept=meant.accept, reject_all=meant.reject_all, dont_care=tuple(meant.dont_care)))
        return Message(phrase.text)
