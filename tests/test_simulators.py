"""Simulated users on the shapes catalog: plans, the phrase bank, the agenda user, the conversation loop.

What a simulated user meant is checked against its own intent and the catalog, never through the
system's parser: the simulator is independent of what it measures.
"""
from __future__ import annotations

import pickle
import random

import pytest

from crs.dialogue import DialogueManager
from crs.policy import load_policy
from crs.search import CatalogSearch
from crs.turn import Question, Reply, ReplyItem
from simulators import wording
from simulators.agenda import AgendaConfig, AgendaSimulator
from simulators.base import Intent
from simulators.conversation import SimulatorSpec, run_conversation
from simulators.leaks import REDACTED, LeakDetector
from simulators.targets import START_KINDS, ConversationPlan, plan_conversations
from simulators.world import SimulationWorld


@pytest.fixture
def searcher(shapes_catalog) -> CatalogSearch:
    return CatalogSearch.open(*shapes_catalog, "fake")


@pytest.fixture
def world(shapes_catalog, searcher) -> SimulationWorld:
    return SimulationWorld(shapes_catalog[0], shapes_catalog[1], searcher.index)


@pytest.fixture
def dm(shapes_catalog, searcher) -> DialogueManager:
    return DialogueManager(shapes_catalog[0], searcher, k=3)


def item(world: SimulationWorld, external_id: str) -> int:
    return next(i for i, e in world.external_ids.items() if e == external_id)


def reply_showing(world: SimulationWorld, *external_ids: str) -> Reply:
    items = [ReplyItem(e, world.titles[item(world, e)], "", 0.0, "", item(world, e)) for e in external_ids]
    return Reply("Here are some.", "recommend", items=items)


def said(user: AgendaSimulator) -> Intent:
    """What the user meant by its last message."""
    assert user.notes.intent is not None
    return user.notes.intent


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


def test_versions_are_read_from_the_data_not_from_attribute_names(tmp_path, store) -> None:
    """The shapes catalog with every attribute renamed and an identity attribute added: the world
    finds the identity (a non-askable attribute naming a few items each) and the version attribute
    (what differs between them) by what the items hold."""
    import json

    from crs.catalog.demo import open_catalog
    from crs.catalog.ingest import IngestOptions, ingest
    from tests.shapes import write_shapes_catalog

    path = write_shapes_catalog(tmp_path / "renamed")
    names = {"shape": "form", "colour": "hue", "style": "finish"}
    schema = json.loads((path.parent / "schema.json").read_text())
    for attribute in schema["attributes"]:
        attribute["name"] = names.get(attribute["name"], attribute["name"])
    schema["attributes"].append({"name": "thing", "kind": "categorical", "askable": False})
    (path.parent / "schema.json").write_text(json.dumps(schema))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        values = row["attributes"]
        row["attributes"] = {names.get(k, k): v for k, v in values.items()} | {
            "thing": f"{values['colour'][0]} {values['shape']}"}
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ingest(store, path, IngestOptions(format="jsonl", catalog="renamed"))
    renamed = SimulationWorld(store, open_catalog(store, "renamed"))
    assert (renamed.identity_attribute, renamed.version_attribute) == ("thing", "finish")
    red = next(i for i, e in renamed.external_ids.items() if e == "red-circle-flat")
    assert [renamed.external_ids[i] for i in renamed.other_style_items(red)] == ["red-circle-outline"]


def test_the_shapes_world_finds_its_versions_without_an_identity_attribute(world) -> None:
    assert (world.identity_attribute, world.version_attribute) == (None, "style")


def test_a_catalog_without_pictures_has_no_picture_openings(store, tmp_path) -> None:
    from simulators.targets import text_only_starts
    from tests.text_catalogs import ingest_films

    films = SimulationWorld(store, ingest_films(store, tmp_path / "films", count=60))
    assert (films.identity_attribute, films.version_attribute) == (None, None)
    assert not any(films.images.values())
    assert {a.name for a in films.talkable} >= {"genres", "decade"}
    assert {p.start for p in plan_conversations(films, 20, seed=1)} == {"text"}  # what a plan can do
    # The run asks first (simulators.runner.fit_openings): the default mix becomes text only,
    # picture openings asked for by name are refused.
    assert text_only_starts(None, "films", asked=False) == {"text": 1.0}
    assert text_only_starts({"text": 1.0}, "films", asked=True) is None
    with pytest.raises(ValueError, match="catalog 'films' has no pictures.*other-style-image"):
        text_only_starts({"other-style-image": 1.0, "text": 1.0}, "films", asked=True)


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


# -- the phrase bank ---------------------------------------------------------------------------------------

def test_a_value_has_many_surface_forms_of_its_own() -> None:
    forms = dict(wording.surface_forms("line-art"))
    assert forms["line-art"] == "exact" and forms["line art"] == "variant" and forms["lineart"] == "variant"
    assert forms["outline"] == "synonym" and forms["line drawing"] == "synonym"
    compound = dict(wording.surface_forms("food & drink"))
    assert compound["food and drink"] == "variant" and compound["drink"] == "part" and compound["snack"] == "synonym"
    assert dict(wording.surface_forms("3d"))["3D"] == "variant"
    assert wording.surface_forms("zebra") == [("zebra", "exact")]  # nothing to vary: said as written


def test_the_phrase_bank_produces_varied_lines_with_their_intent() -> None:
    talk = wording.Wording(random.Random(3), typo_rate=0.2, filler_rate=0.3)
    answers = [talk.answer("colour", "grey") for _ in range(200)]
    texts = {a.text for a in answers}
    assert len(texts) > 40  # templates x surface forms x fillers x typos
    assert {"gray", "greyish"} & {w for t in texts for w in t.replace(",", " ").split()}
    assert all(a.intent == Intent(require={"colour": ("grey",)}, kind="answer", forms=a.intent.forms) for a in answers)
    forms = {f for a in answers for f in a.intent.forms}
    assert {"exact", "synonym", "typo", "filler"} <= forms
    like = talk.like_but(1, [("colour", "blue"), ("shape", "star")])
    assert like.intent.require == {"colour": ("blue",), "shape": ("star",)} and like.intent.kind == "like-but"
    assert ("2" in like.text) or ("second" in like.text)
    not_blue = talk.like_but(0, [("colour", "blue")], negative=True)
    assert not_blue.intent.exclude == {"colour": ("blue",)} and not not_blue.intent.require
    both = wording.combine(talk.reject_all(), talk.wish([("shape", "star")]))
    assert both.intent.reject_all is True and both.intent.require == {"shape": ("star",)}
    assert both.intent.kind == "reject-all+wish"
    assert talk.vague().intent.reject_all is None  # "cuter": rejecting the page or not, both readings fine
    far = [talk.accept(12).text for _ in range(10)]
    assert all("13" in t for t in far)  # past the tenth item only "#n" templates remain


def test_typos_are_one_slip_in_a_long_word() -> None:
    talk = wording.Wording(random.Random(0))
    for _ in range(50):
        slipped = talk.typo("triangle please")
        assert slipped != "triangle please" and abs(len(slipped) - len("triangle please")) <= 1
    assert talk.typo("red") == "red"  # nothing long enough to slip on


def agenda(world: SimulationWorld, target: str, *, seed: int = 0, start: str = "text", **config) -> AgendaSimulator:
    """An agenda user looking for ``target``: the critiquing profile unless told, settings overridden."""
    plan = ConversationPlan(0, seed, item(world, target), start)
    return AgendaSimulator(world, plan, AgendaConfig.for_profile(config.pop("profile", "critiquing"), **config))


def test_opening_per_start_kind(world) -> None:
    target = item(world, "blue-star-outline")
    user = agenda(world, "blue-star-outline")
    text = user.respond(None)
    assert text.images == () and text.text
    meant = said(user)
    assert meant.kind == "opening-text" and len(meant.require) == 2
    assert all(set(v) <= set(world.value_list(target, a)) for a, v in meant.require.items())
    cross_user = agenda(world, "blue-star-outline", start="other-style-image")
    cross = cross_user.respond(None)
    assert cross.images == (world.images[item(world, "blue-star-flat")],)
    assert said(cross_user).require == {"style": ("outline",)}  # "like this but outline", in some words


@pytest.mark.parametrize("attribute", ["shape", "colour", "style"])
def test_noise_free_answers_are_the_targets_values(world, attribute) -> None:
    values = list(world.attributes[attribute].values)
    for target in ("red-circle-flat", "green-star-outline", "blue-triangle-flat"):
        truth = tuple(world.value_list(item(world, target), attribute))
        for seed in range(4):
            user = agenda(world, target, seed=seed, wrong_rate=0.0, profile="critiquing")
            user.respond(None)
            options = random.Random(seed).sample(values, len(values)) + ["any"]
            user.respond(Reply("?", "ask", Question(attribute, options)))
            assert said(user).require == {attribute: truth}
            # Its value not offered: the critiquing user names it anyway.
            offered = [v for v in values if v not in truth] + ["any"]
            user.respond(Reply("?", "ask", Question(attribute, offered)))
            assert said(user).require == {attribute: truth}


def test_realistic_users_click_type_or_say_none_fit(world) -> None:
    question = Question("shape", ["circle", "square", "any"])
    kinds, missed = set(), set()
    for seed in range(40):
        user = agenda(world, "green-star-outline", seed=seed, wrong_rate=0.0, dont_know_rate=0.0, profile="realistic")
        user.respond(None)
        message = user.respond(Reply("?", "ask", Question("shape", ["star", "square", "any"])))
        kinds.add(said(user).kind)
        if said(user).kind == "click":
            assert message.text == "star"
        user.respond(Reply("?", "ask", question))  # its star is not offered
        missed.add(said(user).kind)
        if said(user).kind == "none-of-the-options":
            assert said(user).exclude == {"shape": ("circle", "square")}
        else:
            assert said(user).require == {"shape": ("star",)}
    assert kinds == {"click", "answer"} and missed == {"none-of-the-options", "answer"}


def test_seeded_noise_is_reproducible_and_wrong_answers_are_other_options(world) -> None:
    question = Question("shape", ["circle", "square", "triangle", "star", "any"])

    def answers(seed: int) -> list[tuple[str, Intent]]:
        user = agenda(world, "red-circle-flat", seed=seed, wrong_rate=0.5)
        user.respond(None)
        return [(user.respond(Reply("?", "ask", question)).text, said(user)) for _ in range(40)]

    first = answers(5)
    assert answers(5) == first
    assert answers(6) != first
    read = [meant.require["shape"] for _, meant in first]
    assert all(len(r) == 1 and r[0] in question.options for r in read)
    wrong = sum(r != ("circle",) for r in read)
    assert 8 <= wrong <= 32  # about half, never all or none
    dont_know = agenda(world, "red-circle-flat", wrong_rate=0.0, dont_know_rate=1.0)
    dont_know.respond(None)
    dont_know.respond(Reply("?", "ask", question))
    assert said(dont_know).dont_care == ("shape",) and said(dont_know).kind == "dont-know"


def test_critiques_point_at_the_closest_item_and_ask_for_the_target(world) -> None:
    target = item(world, "red-circle-flat")
    for seed in range(12):
        user = agenda(world, "red-circle-flat", seed=seed, profile="critiquing")
        user.respond(None)
        shown = ["blue-circle-flat", "green-square-outline", "green-star-outline"]
        message = user.respond(reply_showing(world, *shown))
        meant = said(user)
        assert meant.kind in ("like-but", "like-but-not")
        assert "1" in message.text or "first" in message.text  # the blue circle agrees on shape and style
        assert all(set(v) <= set(world.value_list(target, a)) for a, v in meant.require.items())
        assert all(not set(v) & set(world.value_list(target, a)) for a, v in meant.exclude.items())
        assert meant.require or meant.exclude


def test_nothing_close_is_rejected_and_the_target_is_accepted(world) -> None:
    user = agenda(world, "red-circle-flat", profile="critiquing")
    user.respond(None)
    far = ["green-square-outline", "blue-star-outline", "green-triangle-outline"]
    user.respond(reply_showing(world, *far))
    assert said(user).reject_all is True and said(user).kind.startswith("reject-all")
    with_target = ["blue-circle-flat", "red-circle-flat", "green-star-flat"]
    accepted = user.respond(reply_showing(world, *with_target))
    assert said(user).accept == 1 and ("2" in accepted.text or "second" in accepted.text)


def test_realistic_rejections_come_with_a_reason_about_half_the_time(world) -> None:
    kinds = []
    for seed in range(200):
        user = agenda(world, "red-circle-flat", seed=seed, profile="realistic")
        user.respond(None)
        user.respond(reply_showing(world, "blue-circle-flat", "green-square-outline"))
        kinds.append(said(user).kind)
    reasons = sum(k.startswith(("like-but", "more-like")) or "wish" in k for k in kinds) / len(kinds)
    assert 0.35 <= reasons <= 0.65
    assert 0.15 <= kinds.count("vague") / len(kinds) <= 0.35
    assert 0.15 <= kinds.count("reject-all") / len(kinds) <= 0.35


def test_when_every_value_agrees_the_picture_decides(world) -> None:
    user = agenda(world, "red-circle-flat", seed=2, profile="critiquing")
    user.agenda = ["shape"]  # a user who only cares about the shape: every circle agrees
    user.respond(None)
    shown = [item(world, e) for e in ("blue-circle-outline", "red-circle-outline", "green-circle-flat")]
    nearest = max(range(3), key=lambda p: world.image_similarity(item(world, "red-circle-flat"), shown)[p])
    message = user.respond(reply_showing(world, *map(world.external_ids.get, shown)))
    assert said(user).kind.startswith("more-like")
    assert str(nearest + 1) in message.text or wording.ORDINALS[nearest] in message.text


def test_gives_up_after_its_patience(world) -> None:
    user = agenda(world, "red-circle-flat", patience=2)
    user.respond(None)
    user.respond(reply_showing(world, "blue-square-flat"))
    assert not user.gave_up
    user.respond(reply_showing(world, "green-square-flat"))
    assert user.gave_up
    with pytest.raises(ValueError):
        AgendaConfig(patience=0)
    drawn = {agenda(world, "red-circle-flat", seed=seed, profile="realistic").patience for seed in range(60)}
    assert drawn <= set(range(4, 11)) and len(drawn) >= 5  # drawn per user


# -- whole conversations -----------------------------------------------------------------------------------

def test_conversations_reach_the_target(world, dm) -> None:
    spec = SimulatorSpec(profile="critiquing", wrong_rate=0.1)
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
        dm = DialogueManager(shapes_catalog[0], searcher, k=2)
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
        dm = DialogueManager(shapes_catalog[0], searcher, policy=load_policy(policy), k=3)
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
    assert SimulatorSpec(kind="llm", llm="fake:x.json").profile == "llm"  # either name selects the LLM user
    assert SimulatorSpec(profile="llm", llm="fake:x.json").kind == "llm"
    for bad in ({"kind": "oracle"}, {"kind": "llm"}, {"wrong_rate": 1.5}, {"wrong_rate": 0.6, "dont_know_rate": 0.6},
                {"patience": 0}, {"profile": "mcr", "wrong_rate": 0.1}, {"profile": "llm"}, {"profile": "polite"},
                {"kind": "llm", "llm": "fake:x.json", "profile": "mcr"}):
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
    assert not shapes.redact("a square, blue and flat please").leaked  # only values a user may name
    assert shapes.redact("a blue square, flat please").leaked  # but the title's exact phrase (tests/test_leaks.py)
    assert shapes.redact("blue-square-flat please").text == f"{REDACTED} please"
    hat = LeakDetector("The Cat in the Hat", "B0001")
    assert not hat.redact("the hat one, in the category of dogs").leaked  # 'category' is not 'cat'
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
    from simulators.targets import plan_conversation
    from simulators.world import SimulationWorld

    store, catalog = shapes_catalog
    searcher = CatalogSearch.open(store, catalog, "fake")
    dm = DialogueManager(store, searcher, k=2)
    world = SimulationWorld(store, catalog, searcher.index)
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
