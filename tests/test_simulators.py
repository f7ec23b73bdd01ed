"""Simulated users on the shapes catalog: plans, phrasing, the agenda user, the conversation loop."""
from __future__ import annotations

import pickle
import random

import pytest

from crs.understanding.parser import ParseContext, ShownItem
from crs.dialogue import DialogueManager
from crs.policy import load_policy
from crs.search import CatalogSearch
from crs.turn import Critique, Question, Reference, Reply, ReplyItem
from simulators import phrasing
from simulators.agenda import AgendaConfig, AgendaSimulator
from simulators.conversation import SimulatorSpec, run_conversation
from simulators.leaks import REDACTED, LeakDetector
from simulators.targets import START_KINDS, ConversationPlan, SimulationWorld, plan_conversations


@pytest.fixture
def searcher(shapes_catalog) -> CatalogSearch:
    return CatalogSearch.open(*shapes_catalog, "fake")


@pytest.fixture
def world(shapes_catalog, searcher) -> SimulationWorld:
    return SimulationWorld(shapes_catalog[0], shapes_catalog[1], searcher)


@pytest.fixture
def dm(shapes_catalog, searcher, world) -> DialogueManager:
    return DialogueManager(shapes_catalog[0], searcher, facts=world.facts, k=3)


def item(world: SimulationWorld, external_id: str) -> int:
    return next(i for i, e in world.external_ids.items() if e == external_id)


def reply_showing(world: SimulationWorld, *external_ids: str) -> Reply:
    items = [ReplyItem(e, world.titles[item(world, e)], "", 0.0, "", item(world, e)) for e in external_ids]
    return Reply("Here are some.", "recommend", items=items)


def parse(world: SimulationWorld, text: str, shown: list[int] = (), question: Question | None = None) -> Critique:
    shown_items = [ShownItem(i, world.titles[i], world.values(i)) for i in shown]
    return world.parser.parse(text, ParseContext(world.facts, shown_items, question))


# -- the world and the plans --------------------------------------------------------------------------

def test_world_knows_titles_images_and_talkable_attributes(world) -> None:
    red = item(world, "red-circle-flat")
    assert world.titles[red] == "Red circle" and world.images[red].endswith("red-circle-flat.png")
    # Not price (numeric), not tags (not askable).
    assert [a.name for a in world.talkable] == ["shape", "colour", "style"]
    assert world.value_list(red, "colour") == ["red"] and world.values(red)["shape"] == "circle"
    assert [world.external_ids[i] for i in world.other_style_items(red)] == ["red-circle-outline"]
    similar = world.similar_items(red)
    assert len(similar) == 3 and red not in similar and item(world, "red-circle-outline") not in similar
    assert all(world.values(i)["shape"] == "circle" for i in similar)  # the finest attribute's value is kept


def test_plans_depend_only_on_seed_and_index(world) -> None:
    plans = plan_conversations(world, 40, seed=3)
    assert plan_conversations(world, 5, seed=3) == plans[:5]  # not on n: a resumed run gets the same plans
    assert plan_conversations(world, 40, seed=3) == plans
    assert plan_conversations(world, 40, seed=4) != plans
    assert [p.index for p in plans] == list(range(40)) and len({p.seed for p in plans}) == 40
    assert {p.start for p in plans} <= set(START_KINDS)
    assert len({p.target_id for p in plans}) > 12  # targets spread over the 24 items


def test_start_kinds_follow_the_mix_and_their_pictures(world) -> None:
    plans = plan_conversations(world, 300, seed=1)
    share = {kind: sum(p.start == kind for p in plans) / len(plans) for kind in START_KINDS}
    assert share["other-style-image"] == pytest.approx(0.4, abs=0.08)
    assert share["text"] == pytest.approx(0.3, abs=0.08)
    for plan in plans[:60]:
        start = world.start_item(plan)
        assert start == world.start_item(plan)  # fixed by the plan
        if plan.start == "text":
            assert start is None
            continue
        target, picture = world.values(plan.target_id), world.values(start)
        assert start != plan.target_id
        if plan.start == "other-style-image":
            assert picture["style"] != target["style"]
            assert (picture["shape"], picture["colour"]) == (target["shape"], target["colour"])
        else:
            assert picture["shape"] == target["shape"] and start not in world.other_style_items(plan.target_id)
    only_text = plan_conversations(world, 10, seed=1, starts={"text": 1.0})
    assert {p.start for p in only_text} == {"text"}
    assert [p.target_id for p in only_text] == [p.target_id for p in plans[:10]]  # targets do not depend on the mix
    with pytest.raises(ValueError, match="unknown start kind"):
        plan_conversations(world, 1, seed=1, starts={"video": 1.0})


# -- phrasing ----------------------------------------------------------------------------------------------

SHOWN = ["red-circle-flat", "blue-square-outline", "green-star-flat", "blue-circle-flat", "red-triangle-outline"]


def _phrase_cases(world):
    rng = random.Random(0)
    shown = [item(world, e) for e in SHOWN]
    question = Question("colour", ["blue", "red", "any"])
    two = [("colour", "blue"), ("shape", "circle")]
    return [
        ("answer", phrasing.answers(rng, "colour", "blue"), phrasing.ANSWER, [], question),
        ("answer not offered", phrasing.answers(rng, "colour", "green"), phrasing.ANSWER, shown, question),
        ("don't know", phrasing.dont_know(rng, "colour"), phrasing.DONT_KNOW, shown, question),
        ("don't care", phrasing.dont_care(rng, "colour"), phrasing.DONT_CARE, [], question),
        ("wish", phrasing.wishes(rng, two), phrasing.WISH, [], None),
        ("opening", phrasing.openings(rng, two), phrasing.OPENING_TEXT, [], None),
        ("opening with picture", phrasing.image_openings(rng, [("style", "outline")]), phrasing.OPENING_IMAGE_CHANGE,
         [], None),
        ("picture alone", phrasing.image_openings(rng, []), phrasing.OPENING_IMAGE, [], None),
        ("like but", phrasing.like_but(rng, 1, two), phrasing.LIKE_BUT, shown, None),
        ("like but not", phrasing.like_but(rng, 3, [("style", "outline")], negative=True), phrasing.LIKE_BUT_NOT,
         shown, None),
        ("more like", phrasing.more_like(rng, 2), phrasing.MORE_LIKE, shown, None),
        ("not item", phrasing.not_item(rng, 4), phrasing.NOT_ITEM, shown, None),
        ("reject all", phrasing.reject_all(rng), phrasing.REJECT_ALL, shown, None),
        ("accept", phrasing.accept(rng, 1), phrasing.ACCEPT, shown, None),
    ]


def test_every_template_filled_parses_to_its_intent(world) -> None:
    for name, phrases, pool, shown, question in _phrase_cases(world):
        assert len(phrases) == len(pool), name  # every template of the pool was tried
        for phrase in phrases:
            parsed = parse(world, phrase.text, shown, question)
            assert phrasing.understood(parsed, phrase.intent), (name, phrase.text, parsed)
            assert parsed.text == "", (name, phrase.text, parsed.text)  # no stray words become a soft wish


def test_intents_are_what_they_say(world) -> None:
    like = phrasing.like_but(random.Random(1), 1, [("colour", "blue")])[0]
    assert like.intent.references == [Reference(1, True)] and like.intent.require == {"colour": ["blue"]}
    refuse = phrasing.like_but(random.Random(1), 0, [("style", "outline")], negative=True)[0]
    assert refuse.intent.exclude == {"style": ["outline"]}
    both = phrasing.combine(phrasing.reject_all(random.Random(1))[0],
                            phrasing.wishes(random.Random(1), [("shape", "star")])[0])
    assert both.intent.reject_all and both.intent.require == {"shape": ["star"]} and ", " in both.text
    # understood() is strict: a misread phrase is caught.
    assert not phrasing.understood(parse(world, "not blue"), Critique(require={"colour": ["blue"]}))
    assert phrasing.accept(random.Random(0), 12)  # past the tenth item only "#n" templates remain
    assert all("#13" in p.text for p in phrasing.accept(random.Random(0), 12))


# -- the agenda user --------------------------------------------------------------------------------------

def agenda(world: SimulationWorld, target: str, *, seed: int = 0, start: str = "text", **config) -> AgendaSimulator:
    plan = ConversationPlan(0, seed, item(world, target), start)
    return AgendaSimulator(world, plan, AgendaConfig(**config))


def test_opening_per_start_kind(world) -> None:
    text = agenda(world, "blue-star-outline").respond(None)
    assert text.images == () and text.text
    parsed = parse(world, text.text)
    assert len(parsed.require) == 2 and all(world.value_list(item(world, "blue-star-outline"), a) == v
                                            for a, v in parsed.require.items())
    cross = agenda(world, "blue-star-outline", start="other-style-image").respond(None)
    assert cross.images == (world.images[item(world, "blue-star-flat")],)
    assert parse(world, cross.text).require == {"style": ["outline"]}  # "like this but outline"


@pytest.mark.parametrize("attribute", ["shape", "colour", "style"])
def test_noise_free_answers_are_the_targets_values(world, attribute) -> None:
    values = list(world.facts.attributes[attribute].values)
    for target in ("red-circle-flat", "green-star-outline", "blue-triangle-flat"):
        truth = world.value_list(item(world, target), attribute)
        for seed in range(4):
            user = agenda(world, target, seed=seed, wrong_rate=0.0)
            user.respond(None)
            options = random.Random(seed).sample(values, len(values)) + ["any"]
            question = Question(attribute, options)
            answer = user.respond(Reply("?", "ask", question))
            assert parse(world, answer.text, question=question).require == {attribute: truth}
            # Its value not offered: the user names it anyway.
            offered = [v for v in values if v not in truth] + ["any"]
            named = user.respond(Reply("?", "ask", Question(attribute, offered)))
            assert parse(world, named.text, question=Question(attribute, offered)).require == {attribute: truth}


def test_seeded_noise_is_reproducible_and_wrong_answers_are_other_options(world) -> None:
    question = Question("shape", ["circle", "square", "triangle", "star", "any"])

    def answers(seed: int) -> list[str]:
        user = agenda(world, "red-circle-flat", seed=seed, wrong_rate=0.5)
        user.respond(None)
        return [user.respond(Reply("?", "ask", question)).text for _ in range(40)]

    first = answers(5)
    assert answers(5) == first
    assert answers(6) != first
    read = [parse(world, text, question=question).require["shape"] for text in first]
    wrong = sum(r != ["circle"] for r in read)
    assert 8 <= wrong <= 32  # about half, never all or none
    dont_know = agenda(world, "red-circle-flat", wrong_rate=0.0, dont_know_rate=1.0)
    dont_know.respond(None)
    assert parse(world, dont_know.respond(Reply("?", "ask", question)).text, question=question).dont_care == ["shape"]


def test_critiques_point_at_the_closest_item_and_ask_for_the_target(world) -> None:
    target = item(world, "red-circle-flat")
    for seed in range(12):
        user = agenda(world, "red-circle-flat", seed=seed)
        user.respond(None)
        shown = ["blue-circle-flat", "green-square-outline", "green-star-outline"]
        message = user.respond(reply_showing(world, *shown))
        parsed = parse(world, message.text, [item(world, e) for e in shown])
        assert parsed.references == [Reference(0, True)]  # the blue circle agrees on shape and style
        assert all(set(v) <= set(world.value_list(target, a)) for a, v in parsed.require.items())
        assert all(not set(v) & set(world.value_list(target, a)) for a, v in parsed.exclude.items())
        assert parsed.require or parsed.exclude


def test_nothing_close_is_rejected_and_the_target_is_accepted(world) -> None:
    user = agenda(world, "red-circle-flat")
    user.respond(None)
    far = ["green-square-outline", "blue-star-outline", "green-triangle-outline"]
    parsed = parse(world, user.respond(reply_showing(world, *far)).text, [item(world, e) for e in far])
    assert parsed.reject_all and not parsed.references
    with_target = ["blue-circle-flat", "red-circle-flat", "green-star-flat"]
    accepted = user.respond(reply_showing(world, *with_target))
    assert parse(world, accepted.text, [item(world, e) for e in with_target]).accept == 1


def test_when_every_value_agrees_the_picture_decides(world) -> None:
    user = agenda(world, "red-circle-flat", seed=2)
    user.agenda = ["shape"]  # a user who only cares about the shape: every circle agrees
    user.respond(None)
    shown = [item(world, e) for e in ("blue-circle-outline", "red-circle-outline", "green-circle-flat")]
    nearest = max(range(3), key=lambda p: world.image_similarity(item(world, "red-circle-flat"), shown)[p])
    parsed = parse(world, user.respond(reply_showing(world, *map(world.external_ids.get, shown))).text, shown)
    assert parsed.references[0] == Reference(nearest, True)


def test_gives_up_after_its_patience(world) -> None:
    user = agenda(world, "red-circle-flat", patience=2)
    user.respond(None)
    user.respond(reply_showing(world, "blue-square-flat"))
    assert not user.gave_up
    user.respond(reply_showing(world, "green-square-flat"))
    assert user.gave_up
    with pytest.raises(ValueError):
        AgendaConfig(patience=0)


# -- whole conversations -----------------------------------------------------------------------------------

def test_conversations_reach_the_target(world, dm) -> None:
    spec = SimulatorSpec(wrong_rate=0.1)
    plans = plan_conversations(world, 12, seed=11)
    results = [run_conversation(dm, spec.build(world, p), p, max_turns=8) for p in plans]
    assert sum(r.success for r in results) >= 10
    for plan, result in zip(plans, results):
        assert (result.index, result.target_id, result.start) == (plan.index, plan.target_id, plan.start)
        first = result.turns[0]
        assert first.user_images == (plan.start != "text") and first.latency_ms > 0 and first.ranking
        assert result.questions == sum(t.action == "ask" for t in result.turns)
        if result.success:
            assert plan.target_id in result.turns[-1].shown and result.success_turn == len(result.turns)
            assert all(plan.target_id not in t.shown for t in result.turns[:-1])


def test_a_conversation_replays_exactly(world, shapes_catalog, searcher) -> None:
    plan = plan_conversations(world, 4, seed=2)[3]

    def run() -> dict:
        dm = DialogueManager(shapes_catalog[0], searcher, facts=world.facts, k=2)
        data = run_conversation(dm, AgendaSimulator(world, plan, AgendaConfig(wrong_rate=0.3)), plan,
                                max_turns=6).to_json()
        for t in data["turns"]:
            t["latency_ms"] = 0.0  # the one thing a replay may not reproduce
        return data

    first = run()
    assert len(first["turns"]) > 1 and run() == first


def test_every_policy_meets_the_same_targets_and_openings(world, shapes_catalog, searcher) -> None:
    plans = plan_conversations(world, 5, seed=9)
    opened = {}
    for policy in ("eig", "always-recommend"):
        dm = DialogueManager(shapes_catalog[0], searcher, facts=world.facts, policy=load_policy(policy), k=3)
        results = [run_conversation(dm, SimulatorSpec().build(world, p), p, max_turns=3) for p in plans]
        opened[policy] = [(r.target_id, r.start, r.turns[0].user_text, r.turns[0].user_images) for r in results]
    assert opened["eig"] == opened["always-recommend"]


class AlwaysAsks:
    """A stand-in dialogue manager that never shows anything: only patience can end the talk."""

    def __init__(self) -> None:
        self.received: list[str] = []

    def start(self, settings: dict | None = None) -> str:
        return "session"

    def respond(self, session_id: str, message) -> Reply:
        self.received.append(message.text)
        return Reply("Which shape?", "ask", Question("shape", ["circle", "square", "any"]), ranking=[1, 2])


def test_a_user_who_gives_up_ends_the_conversation(world) -> None:
    plan = ConversationPlan(0, 1, item(world, "green-star-outline"), "text")
    stub = AlwaysAsks()
    result = run_conversation(stub, agenda(world, "green-star-outline", patience=2), plan, max_turns=5)
    assert result.gave_up and not result.success and len(result.turns) == 2
    assert len(stub.received) == 2  # the goodbye is not sent
    patient = run_conversation(AlwaysAsks(), agenda(world, "green-star-outline"), plan, max_turns=5)
    assert not patient.gave_up and len(patient.turns) == 5 and patient.questions == 5


def test_simulator_spec_is_checked_and_picklable(world) -> None:
    spec = SimulatorSpec(kind="agenda", wrong_rate=0.2, patience=4)
    assert pickle.loads(pickle.dumps(spec)) == spec
    built = spec.build(world, plan_conversations(world, 1, seed=0)[0])
    assert isinstance(built, AgendaSimulator) and built.config == AgendaConfig(0.2, 0.1, 4, "realistic")
    assert SimulatorSpec(profile="mcr").agenda_config() == AgendaConfig(0.0, 0.0, None, "mcr")
    for bad in ({"kind": "oracle"}, {"kind": "llm"}, {"wrong_rate": 1.5}, {"wrong_rate": 0.6, "dont_know_rate": 0.6},
                {"patience": 0}, {"profile": "mcr", "wrong_rate": 0.1}, {"profile": "llm"}, {"profile": "polite"}):
        with pytest.raises(ValueError):
            SimulatorSpec(**bad)


# -- leaks ---------------------------------------------------------------------------------------------

def test_leaks_by_id_title_and_most_distinctive_words() -> None:
    emoji = LeakDetector("Grinning face with big eyes", "emoji-1f603", known_words=["face", "smiling"])
    assert emoji.distinctive == ("grinning", "eyes")
    assert emoji.redact("A Grinning-Face with BIG eyes, please").text == f"A {REDACTED}, please"
    assert emoji.redact("is it emoji-1f603?").text == f"is it {REDACTED}?"
    split = emoji.redact("eyes big and grinning")
    assert split.leaked and split.text == f"{REDACTED} big and {REDACTED}"
    assert not emoji.redact("a grinning one").leaked  # one of two distinctive words is not most of them
    assert not emoji.redact("emoji-1f603-extra and emoji-1f60").leaked  # ids match whole


def test_no_false_leaks_on_common_or_vocabulary_words() -> None:
    shapes = LeakDetector("Blue square", "blue-square-flat", known_words=["blue", "square", "flat"])
    assert shapes.distinctive == ()
    assert not shapes.redact("a blue square, flat please").leaked  # only values a user may name
    assert shapes.redact("blue-square-flat please").text == f"{REDACTED} please"
    hat = LeakDetector("The Cat in the Hat", "B0001")
    assert not hat.redact("the hat one, in the category of cats").leaked  # 'category' is not 'cat'
    assert hat.redact("a cat with a hat").leaked
    assert not LeakDetector("Star", "7").redact("I like #7").leaked  # short ids are not searched
    assert LeakDetector("Star", "st-1").redact("a star").text == f"a {REDACTED}"  # a one-word title is all of it



def test_an_intent_matches_only_what_was_meant_no_more_no_less() -> None:
    from simulators.base import Intent

    meant = Intent(require={"colour": ("blue",)}, exclude={"style": ("flat",)})
    assert meant.matches({"require": {"colour": ["blue"]}, "exclude": {"style": ["flat"]}, "accept": None,
                          "reject_all": False, "dont_care": [], "text": "ignored", "references": [{"index": 1}]})
    assert not meant.matches({"require": {"colour": ["blue", "red"]}, "exclude": {"style": ["flat"]}})  # more
    assert not meant.matches({"require": {"colour": ["blue"]}})  # less: the exclusion was lost
    assert not meant.matches(None)
    assert Intent(reject_all=True).matches({"reject_all": True, "require": {}})
    assert not Intent(accept=1).matches({"accept": 0})
    assert Intent(dont_care=("shape",)).matches({"dont_care": ["shape"]})


@pytest.mark.parametrize("profile", ["mcr", "critiquing"])
def test_each_profile_keeps_its_protocol(shapes_catalog, profile: str) -> None:  # type: ignore[no-untyped-def]
    """mcr (the field's protocol): a rejected page gets "none of these" and nothing else, answers are
    the target's own option or "any"; critiquing: every rejected page draws a reason (a value)."""
    from crs.search import CatalogSearch
    from crs.dialogue import DialogueManager
    from simulators.conversation import SimulatorSpec, run_conversation
    from simulators.targets import SimulationWorld, plan_conversation

    store, catalog = shapes_catalog
    searcher = CatalogSearch.open(store, catalog, "fake")
    dm = DialogueManager(store, searcher, k=2)
    world = SimulationWorld(store, catalog, searcher, dm.facts)
    spec = SimulatorSpec(profile=profile, wrong_rate=None if profile == "mcr" else 0.3)
    rejections = 0
    for index in range(8):
        plan = plan_conversation(world, index, seed=3, starts={"text": 1.0})
        user = spec.build(world, plan)
        result = run_conversation(dm, user, plan, max_turns=6)
        for previous, now in zip(result.turns, result.turns[1:]):
            if previous.action == "recommend" and plan.target_id not in previous.shown:
                rejections += 1
                if profile == "mcr":
                    assert now.user_text == "none of these"
                else:
                    assert now.user_text != "none of these"  # a reason comes with it
            if previous.action == "ask" and profile == "mcr":  # a truthful click: the target's own value, or any
                target_values = {v for values in world.values(plan.target_id).values() for v in values}
                assert now.user_text in target_values | {"any", "none of these"}
        assert all(t.understood is not None for t in result.turns[1:] if t.user_text)  # intents recorded
    assert rejections > 0
