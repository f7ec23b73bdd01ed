"""The agenda-based simulated user: grounded in the target's attribute values and picture.

It knows the catalog (:class:`~simulators.world.SimulationWorld`) and the system's replies, and
speaks in its own words (:mod:`simulators.wording`); nothing it says is checked against the
system's parser, so what the system misreads counts against it. Each message records its intent
(:class:`simulators.base.Intent`), which the evaluation compares with what the system understood.

It is deterministic given the plan's seed (one generator for decisions, another for wording,
so rewording never changes what the user decides). The ``critiquing`` profile, each turn:

* opening (per the plan's start): a picture of another version or of a similar item, with the
  one change that matters most ("like this but 3d": the world's version attribute first, when
  it differs),
  or a vague text of two of the target's values from coarse attributes (30 values or fewer);
* a question: the target's value among the options (the first offered, for a multi-valued
  target); none offered: its value by name, or "any" when it has none. Noise: with
  ``wrong_rate`` another offered option, with ``dont_know_rate`` "I don't know";
* a recommendation: the target shown -> accept it ("#2 is it"). Else the shown item closest to
  the target (most agreeing talkable attributes, then picture cosine) is the reference:
  fewer than half the attributes agree -> "none of these" + one wanted value; some differ ->
  "like the second but blue" (sometimes two changes, sometimes "... but not outline", what
  that item has and the target lacks); all agree -> "more like #k" for the item whose picture
  is nearest the target, sometimes with "not #j" for the farthest;
* nothing shown (no item met every wish): the value of a wrongly answered attribute, else one
  not said yet;
* after ``patience`` replies without the target it gives up: :attr:`gave_up` becomes True and the
  returned goodbye is not sent (the conversation ends as a failure).

The ``realistic`` profile (the default; a model of people, not a measurement) gives a concrete
reason with half of the rejections, else a bare "nope" or a vague one ("cuter", "something
else"); answers 10% wrongly and 10% "don't know"; gives up after 4-10 replies (drawn per user);
clicks an offered option 40% of the time and types otherwise; when no option fits, says "none
of these" half of the time instead of naming its value; adds off-vocabulary words, typos, and
sometimes words of the catalog's text about the target to a text opening (:class:`Style`).

The ``mcr`` profile is the field's multi-round protocol (EAR / SCPR / UNICORN): it accepts if and
only if the target is shown; any other page gets "none of these" with no reason; a question gets
the target's value among the options, exactly as a click on that option sends it, "none of these"
when the target has a value but none of those offered, "any" when it has none; no noise.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from crs.turn import Message, Question, Reply, ReplyItem

from .base import Intent, TurnNotes, UserSimulator
from .profiles import AGENDA_PROFILES
from .targets import ConversationPlan
from .wording import Line, Wording, combine
from .world import SimulationWorld, sayable

COARSE_VALUES = 30  # an opening text names values of attributes with at most this many values ("vague")
OPENING_VALUES = 2
TWO_CHANGES_RATE = 0.3  # a critique names two changes at once this often
NEGATIVE_RATE = 0.25  # a one-change critique says what the item should not have this often
DISLIKE_RATE = 0.5  # "more like #k" also rejects the least similar item this often
PROFILES = AGENDA_PROFILES  # how the user talks; see the module docstring
ANY_OPTION = "any"  # the reply's "no preference" option, as the chat shows it
VAGUE_SHARE = 0.5  # of the rejections without a concrete reason (realistic), this many are vague
PROFILE_SETTINGS: dict[str, dict[str, Any]] = {
    "realistic": {"wrong_rate": 0.1, "dont_know_rate": 0.1, "patience": (4, 10)},
    "critiquing": {"wrong_rate": 0.1, "dont_know_rate": 0.0, "patience": None},
    "mcr": {"wrong_rate": 0.0, "dont_know_rate": 0.0, "patience": None},
}
REJECT_ALL = "none of these"


@dataclass(frozen=True)
class Style:
    """How a profile talks (fixed per profile; the noise rates and patience are AgendaConfig's)."""

    reason_rate: float = 1.0  # a rejected page gets a concrete reason
    missed_options_rate: float = 0.0  # no option fits: "none of these" instead of naming its own value
    click_rate: float = 0.0  # an answer among the options is a click (the option's exact text)
    exact_rate: float = 0.4  # a value is said exactly as the catalog writes it (else a variant or synonym)
    typo_rate: float = 0.0  # a value word has a slip
    filler_rate: float = 0.0  # a line carries off-vocabulary words ("kinda", "for a card")
    content_rate: float = 0.0  # a text opening adds words of the catalog's text about the target


PROFILE_STYLE: dict[str, Style] = {
    "realistic": Style(reason_rate=0.5, missed_options_rate=0.5, click_rate=0.4, exact_rate=0.35, typo_rate=0.03,
                       filler_rate=0.25, content_rate=0.3),
    "critiquing": Style(reason_rate=1.0, exact_rate=0.4, typo_rate=0.02),
    "mcr": Style(reason_rate=0.0, click_rate=1.0, exact_rate=1.0),
}


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
        self.style = PROFILE_STYLE[self.config.profile]
        self.target_id = plan.target_id
        self.rng = random.Random(plan.seed)  # what to say
        # How to say it: its own generator, so rewording never changes what the user decides.
        self.wording = Wording(random.Random(f"words:{plan.seed}"), typo_rate=self.style.typo_rate,
                               filler_rate=self.style.filler_rate, exact_rate=self.style.exact_rate)
        self.gave_up = False
        self.notes = TurnNotes()
        patience = self.config.patience
        self.patience = random.Random(f"patience:{plan.seed}").randint(*patience) if isinstance(patience, tuple) \
            else patience
        self.replies = 0  # system replies seen
        self.wrong: set[str] = set()  # attributes answered wrongly and not corrected since
        # The value the user has in mind per attribute (one of a multi-valued target's, fixed for
        # the conversation), among those a person could name.
        self.preferred: dict[str, str] = {}
        for info in world.talkable:
            values = [v for v in world.value_list(self.target_id, info.name) if sayable(v)]
            if values:
                self.preferred[info.name] = self.rng.choice(values)
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
        if reply.action == "recommend" and self.target_id in shown:
            return self._say(self.wording.accept(shown.index(self.target_id)))
        if self.patience is not None and self.replies >= self.patience:
            self.gave_up = True
            return Message(self.wording.goodbye())
        if self.config.profile == "mcr":
            return self._mcr(reply)
        if reply.action == "ask" and reply.question is not None:
            return self._answer(reply.question)
        if reply.action == "recommend" and reply.items:
            return self._rejection(reply.items)
        return self._restate()

    def _opening(self) -> Message:
        item = self.world.start_item(self.plan)
        if item is None:
            coarse = [a for a in self.agenda if len(self.world.attributes[a].values) <= COARSE_VALUES]
            chosen = (coarse + [a for a in self.agenda if a not in coarse])[:OPENING_VALUES]
            about = self._content_words() if self.rng.random() < self.style.content_rate else ""
            return self._say(self.wording.opening([(a, self.preferred[a]) for a in chosen], about))
        image = self.world.images[item]
        assert image is not None  # start items are drawn among items with a picture
        differing = [a for a in self.agenda if not self._agrees(item, a)]
        version = self.world.version_attribute
        if version in differing:  # "this, but in 3D": the change a start from another version is about
            differing.remove(version)
            differing.insert(0, version)
        line = self.wording.image_opening([(a, self.preferred[a]) for a in differing[:1]])
        self.notes = TurnNotes(intent=line.intent)
        return Message(line.text, (image,))

    def _mcr(self, reply: Reply) -> Message:
        """The field's protocol: a truthful click on a question, a silent "none of these" otherwise."""
        if reply.action == "ask" and reply.question is not None:
            attribute = reply.question.attribute
            truth = self.world.value_list(self.target_id, attribute)
            offered = [o for o in reply.question.options if o != ANY_OPTION]
            right = [o for o in offered if o in truth]
            if right:
                return self._say(Line(right[0], Intent(require={attribute: (right[0],)}, kind="click")))
            if truth and offered:  # it has a value, just not one of these
                return self._say(Line(REJECT_ALL, Intent(exclude={attribute: tuple(offered)},
                                                         kind="none-of-the-options")))
            return self._say(Line(ANY_OPTION, Intent(dont_care=(attribute,), kind="click")))
        return self._say(Line(REJECT_ALL, Intent(reject_all=True, kind="reject-all")))

    def _answer(self, question: Question) -> Message:
        attribute = question.attribute
        options = [o for o in question.options if o != ANY_OPTION]
        truth = self.world.value_list(self.target_id, attribute)
        draw = self.rng.random()
        if draw < self.config.wrong_rate:
            wrong = [o for o in options if o not in truth]
            if wrong:
                self.wrong.add(attribute)
                return self._answer_with(attribute, self.rng.choice(wrong), options)
        elif draw < self.config.wrong_rate + self.config.dont_know_rate:
            return self._say(self.wording.dont_know(attribute))
        right = [o for o in options if o in truth]
        if right:
            self.wrong.discard(attribute)
            return self._answer_with(attribute, right[0], options)
        named = self.preferred.get(attribute)
        if named is None:  # it has no value here a person could name: no preference
            return self._say(self.wording.dont_care(attribute))
        self.wrong.discard(attribute)
        if options and self.rng.random() < self.style.missed_options_rate:
            return self._say(self.wording.options_missed(attribute, options))
        return self._say(self.wording.answer(attribute, named))

    def _answer_with(self, attribute: str, value: str, options: Sequence[str]) -> Message:
        """An offered option: a click on its button (the option's exact text) or typed in own words."""
        if value in options and self.rng.random() < self.style.click_rate:
            return self._say(Line(value, Intent(require={attribute: (value,)}, kind="click")))
        return self._say(self.wording.answer(attribute, value))

    def _rejection(self, items: Sequence[ReplyItem]) -> Message:
        """A page without the target: a reason (critiquing always), else bare or vague (realistic)."""
        if self.rng.random() < self.style.reason_rate:
            return self._critique(items)
        return self._say(self.wording.vague() if self.rng.random() < VAGUE_SHARE else self.wording.reject_all())

    def _critique(self, items: Sequence[ReplyItem]) -> Message:
        shown = [item.item_id for item in items]
        agree = [[a for a in self.agenda if self._agrees(j, a)] for j in shown]
        similarity = self.world.image_similarity(self.target_id, shown)
        looks = similarity if similarity is not None else np.zeros(len(shown))
        best = max(range(len(shown)), key=lambda p: (len(agree[p]), looks[p], -p))
        differing = [a for a in self.agenda if a not in agree[best]]
        if 2 * len(agree[best]) < len(self.agenda):  # nothing is close
            wanted = [(a, self.preferred[a]) for a in differing[:1]]
            lines = [self.wording.reject_all()] + ([self.wording.wish(wanted)] if wanted else [])
            return self._say(combine(*lines))
        if differing:
            count = 2 if len(differing) > 1 and self.rng.random() < TWO_CHANGES_RATE else 1
            negative = count == 1 and self.rng.random() < NEGATIVE_RATE
            attribute = differing[0]
            wanted_values = self.world.value_list(self.target_id, attribute)
            unwanted = [v for v in self.world.value_list(shown[best], attribute)
                        if v not in wanted_values and sayable(v)]
            if negative and unwanted:
                return self._say(self.wording.like_but(best, [(attribute, unwanted[0])], negative=True))
            return self._say(self.wording.like_but(best, [(a, self.preferred[a]) for a in differing[:count]]))
        # Every talkable value agrees: only the picture can tell them apart.
        nearest = int(np.argmax(looks))
        farthest = int(np.argmin(looks))
        dislike = len(shown) > 1 and farthest != nearest and self.rng.random() < DISLIKE_RATE
        lines = [self.wording.more_like(nearest)] + ([self.wording.not_item(farthest)] if dislike else [])
        return self._say(combine(*lines))

    def _restate(self) -> Message:
        """Nothing shown: correct a wrong answer, else say a value not said yet."""
        order = sorted(self.wrong) + self.agenda
        attribute = next((a for a in order if a in self.preferred), None)
        if attribute is None:  # a catalog without talkable values: only "something else" is left
            return self._say(self.wording.vague())
        self.wrong.discard(attribute)
        return self._say(self.wording.wish([(attribute, self.preferred[attribute])]))

    # -- pieces ------------------------------------------------------------------------------------------

    def _agrees(self, item_id: int, attribute: str) -> bool:
        mine = set(self.world.value_list(self.target_id, attribute))
        theirs = set(self.world.value_list(item_id, attribute))
        return bool(mine & theirs) or mine == theirs

    def _content_words(self) -> str:
        """A few words of the catalog's own text about the target, as a person describes what the
        thing shows; only words many items share, so they never name the target."""
        words = self.world.common_words(self.target_id)
        return " ".join(self.rng.sample(words, min(len(words), 1 + (self.rng.random() < 0.3)))) if words else ""

    def _say(self, line: Line) -> Message:
        """The line as a message, its intent noted for the understanding rate."""
        self.notes = TurnNotes(intent=line.intent)
        return Message(line.text)
