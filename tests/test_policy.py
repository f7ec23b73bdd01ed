"""Policies on hand-made candidates: the information-gain arithmetic and each baseline."""
from __future__ import annotations

import numpy as np
import pytest

from crs.facts import AttributeInfo, CatalogFacts
from crs.policy import Ask, Candidates, PolicyContext, Recommend, load_policy
from crs.policy.baselines import AlwaysRecommend, AskNThenRecommend, RandomAsk
from crs.policy.eig import EIGPolicy, entropy_bits


def toy_facts() -> CatalogFacts:
    """8 items; 'colour' splits them 4/4, 'shape' 7/1, 'size' is the same for all."""
    ids = np.arange(1, 9, dtype=np.int64)
    attributes = {
        "colour": AttributeInfo("colour", "categorical", True, ("red", "blue"), None),
        "shape": AttributeInfo("shape", "categorical", True, ("circle", "star"), None),
        "size": AttributeInfo("size", "categorical", True, ("small", "large"), None),
        "hidden": AttributeInfo("hidden", "categorical", False, ("a", "b"), None),
    }
    codes = {"colour": np.array([0, 0, 0, 0, 1, 1, 1, 1], dtype=np.int32),
             "shape": np.array([0, 0, 0, 0, 0, 0, 0, 1], dtype=np.int32),
             "size": np.zeros(8, dtype=np.int32),
             "hidden": np.array([0, 1, 0, 1, 0, 1, 0, 1], dtype=np.int32)}
    return CatalogFacts("toy", ids, attributes, codes, {}, {})


def context(posterior=None, **kwargs) -> PolicyContext:
    facts = toy_facts()
    p = np.full(8, 1 / 8) if posterior is None else np.asarray(posterior, dtype=float)
    return PolicyContext(facts, Candidates(facts.ids, np.zeros(8), p / p.sum()), **kwargs)


def test_gain_of_an_even_split_is_one_bit_without_noise() -> None:
    policy = EIGPolicy(noise=0.0)
    ctx = context()
    assert policy.gain(ctx, "colour", ["red", "blue", "any"]) == pytest.approx(1.0)
    # 7/1 split: H(1/8) = 0.5436 bits
    assert policy.gain(ctx, "shape", ["circle", "star", "any"]) == pytest.approx(
        float(entropy_bits(np.array([7 / 8, 1 / 8]))), abs=1e-9)
    # Noise makes answers less informative.
    assert EIGPolicy(noise=0.2).gain(ctx, "colour", ["red", "blue", "any"]) < 1.0


def test_eig_asks_the_most_informative_askable_attribute() -> None:
    decision = EIGPolicy(horizon=0).decide(context(k=2))
    assert isinstance(decision, Ask) and decision.attribute == "colour"
    assert decision.options == ["red", "blue", "any"]


def test_eig_never_repeats_a_question_and_skips_settled_or_useless_ones() -> None:
    decision = EIGPolicy(horizon=0).decide(context(asked=frozenset({"colour"}), k=2))
    assert isinstance(decision, Ask) and decision.attribute == "shape"
    # colour asked, shape settled, size has one value, hidden is not askable: nothing left to ask.
    decision = EIGPolicy().decide(context(asked=frozenset({"colour"}), settled=frozenset({"shape"}), k=2))
    assert isinstance(decision, Recommend)


def test_lookahead_weighs_a_question_against_showing_pages() -> None:
    # 8 equally likely items, one shown per page. Asking colour (4/4, 10% noise) leaves each
    # answer's 4 items with 0.2414 each: E[top-1 after] = 0.2375, E[top-2 after] = 0.4750.
    ctx = context(k=1)
    assert EIGPolicy().expected_top_mass(ctx, "colour", ["red", "blue", "any"], 1) == pytest.approx(0.2375, abs=1e-4)
    assert EIGPolicy().expected_top_mass(ctx, "colour", ["red", "blue", "any"], 2) == pytest.approx(0.4750, abs=1e-4)
    # Two turns: two pages hold 2/8 = 0.25 > 0.2375, so show. Three turns: 3/8 = 0.375 < 0.4750, so ask.
    assert isinstance(EIGPolicy(horizon=2).decide(ctx), Recommend)
    decision = EIGPolicy(horizon=3).decide(ctx)
    assert isinstance(decision, Ask) and decision.attribute == "colour"


def test_eig_recommends_when_the_top_k_hold_the_belief() -> None:
    decision = EIGPolicy(recommend_mass=0.5).decide(context([20, 20, 1, 1, 1, 1, 1, 1], k=2))
    assert isinstance(decision, Recommend) and decision.ids == [1, 2]


def test_recommendations_prefer_items_not_shown_before() -> None:
    decision = AlwaysRecommend().decide(context([8, 7, 6, 5, 4, 3, 2, 1], k=3, shown=frozenset({1, 2})))
    assert decision.ids == [3, 4, 5]


def test_ask_n_then_recommend() -> None:
    policy = AskNThenRecommend(n=1)
    first = policy.decide(context())
    assert isinstance(first, Ask) and first.attribute == "colour"  # the catalog's order
    assert isinstance(policy.decide(context(asked=frozenset({"colour"}))), Recommend)


def test_random_ask_is_reproducible_and_does_both() -> None:
    decisions = [type(RandomAsk(seed=3).decide(context(turn=t))).__name__ for t in range(1, 30)]
    again = [type(RandomAsk(seed=3).decide(context(turn=t))).__name__ for t in range(1, 30)]
    assert decisions == again and {"Ask", "Recommend"} == set(decisions)


def test_load_policy_by_name() -> None:
    assert load_policy("eig").name == "eig"
    assert load_policy("ask-2").n == 2
    assert load_policy("always-recommend").name == "always-recommend"
    with pytest.raises(ValueError, match="unknown policy"):
        load_policy("smart")
    with pytest.raises(ValueError, match="needs an LLM"):
        load_policy("llm")


def test_sharpening_judges_with_a_power_of_the_posterior_without_reordering() -> None:
    # Top 2 hold 4/10 of the belief: below recommend_mass 0.5, so the plain policy asks; squared,
    # they hold 8/14 = 0.57 and the policy shows them, in the same order.
    ctx = context([2, 2, 1, 1, 1, 1, 1, 1], k=2)
    assert isinstance(EIGPolicy(sharpen=1.0, horizon=0).decide(ctx), Ask)
    decision = EIGPolicy(sharpen=2.0, horizon=0).decide(ctx)
    assert isinstance(decision, Recommend) and decision.ids == [1, 2]
    assert "57%" in decision.why


def test_free_answers_count_every_value_not_only_the_offered_ones() -> None:
    # 8 items, 4 kinds (2 each). Offering only "a" (+ any): with free answers a person whose item
    # is b, c or d says so (2 bits); limited to the buttons, "any" lumps b, c, d: H(1/4) bits.
    ids = np.arange(1, 9, dtype=np.int64)
    kinds = AttributeInfo("kind", "categorical", True, ("a", "b", "c", "d"), None)
    facts = CatalogFacts("toy", ids, {"kind": kinds}, {"kind": np.array([0, 0, 1, 1, 2, 2, 3, 3], dtype=np.int32)},
                         {}, {})
    ctx = PolicyContext(facts, Candidates(ids, np.zeros(8), np.full(8, 1 / 8)))
    assert EIGPolicy(noise=0.0).gain(ctx, "kind", ["a", "any"]) == pytest.approx(2.0)
    assert EIGPolicy(noise=0.0, free_answers=False).gain(ctx, "kind", ["a", "any"]) == pytest.approx(
        float(entropy_bits(np.array([1 / 4, 3 / 4]))))


class PolicyContract:
    """What every policy promises, whatever it weighs (implicit's RecommenderBaseTestMixin style):
    a subclass gives ``make_policy`` and inherits the suite. A new policy adds a 3-line class."""

    def make_policy(self):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    @pytest.mark.parametrize("turn", [1, 2, 5])
    def test_a_decision_is_an_answerable_question_or_a_valid_page(self, turn: int) -> None:
        facts = toy_facts()
        ctx = context(turn=turn, k=3, asked=frozenset({"shape"}))
        decision = self.make_policy().decide(ctx)
        assert isinstance(decision, (Ask, Recommend))
        if isinstance(decision, Ask):
            info = facts.attributes[decision.attribute]
            assert info.askable and decision.attribute not in ctx.asked and decision.attribute not in ctx.settled
            assert decision.options[-1] == "any" and set(decision.options[:-1]) <= set(info.values)
        else:
            assert 1 <= len(decision.ids) <= ctx.k and len(set(decision.ids)) == len(decision.ids)
            assert set(decision.ids) <= {int(i) for i in facts.ids}

    def test_with_nothing_left_to_ask_it_recommends_the_likeliest_new_items(self) -> None:
        posterior = [0.02, 0.02, 0.5, 0.02, 0.3, 0.02, 0.1, 0.02]
        ctx = context(posterior, k=2, asked=frozenset({"colour", "shape", "size"}), shown=frozenset({3}))
        decision = self.make_policy().decide(ctx)
        assert isinstance(decision, Recommend) and decision.ids[0] == 5 and 3 not in decision.ids

    def test_the_same_context_gets_the_same_decision(self) -> None:
        ctx = context([0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], k=2, turn=3)
        assert self.make_policy().decide(ctx) == self.make_policy().decide(ctx)


@pytest.mark.parametrize("name", ["eig", "eig-greedy", "eig-no-lookahead", "always-recommend", "ask-3", "random-ask",
                                  "fake:ask,recommend", "max-entropy"])
def test_every_registered_policy_is_covered_by_the_contract(name: str) -> None:
    assert load_policy(name).name == name.partition(":")[0]
    suites, seen = [PolicyContract], set()
    while suites:
        suite = suites.pop()
        seen.add(getattr(suite, "spec", None))
        suites += suite.__subclasses__()
    assert name in seen


class TestEIG(PolicyContract):
    spec = "eig"

    def make_policy(self):  # type: ignore[no-untyped-def]
        return load_policy(self.spec)


class TestEIGGreedy(TestEIG):
    spec = "eig-greedy"


class TestEIGNoLookahead(TestEIG):
    spec = "eig-no-lookahead"


class TestAlwaysRecommend(TestEIG):
    spec = "always-recommend"


class TestAskThree(TestEIG):
    spec = "ask-3"


class TestRandomAsk(TestEIG):
    spec = "random-ask"


class TestFakePolicy(TestEIG):
    spec = "fake:ask,recommend"


def test_the_fake_policy_plays_its_script() -> None:
    policy = load_policy("fake:ask,ask,recommend")
    assert isinstance(policy.decide(context(turn=1, k=2)), Ask)
    assert isinstance(policy.decide(context(turn=2, k=2, asked=frozenset({"colour"}))), Ask)
    assert isinstance(policy.decide(context(turn=3, k=2)), Recommend)
    assert isinstance(policy.decide(context(turn=9, k=2)), Recommend)  # the last step repeats
    with pytest.raises(ValueError, match="ask/recommend steps"):
        load_policy("fake:maybe")


# -- max-entropy (EAR / SCPR's baseline) -------------------------------------------------------------

from crs.policy.max_entropy import MaxEntropyPolicy, live_ids, value_entropy  # noqa: E402


class TestMaxEntropy(TestEIG):
    spec = "max-entropy"


def test_max_entropy_asks_the_even_split_over_the_lopsided_one() -> None:
    # colour splits the 8 live items 4/4 (1 bit), shape 7/1 (0.54 bits); size has one value.
    decision = load_policy("max-entropy").decide(context(k=2))
    assert isinstance(decision, Ask) and decision.attribute == "colour"
    assert decision.options == ["red", "blue", "any"]  # question_options, as every policy
    # Live candidates count equally: a posterior leaning on the red items changes nothing.
    decision = load_policy("max-entropy").decide(context([5, 5, 5, 5, 1, 1, 1, 1], k=2))
    assert isinstance(decision, Ask) and decision.attribute == "colour"
    decision = load_policy("max-entropy").decide(context(k=2, asked=frozenset({"colour"})))
    assert isinstance(decision, Ask) and decision.attribute == "shape"


def test_max_entropy_stops_asking_after_n_questions() -> None:
    assert load_policy("max-entropy").n == 3 and load_policy("max-entropy:5").n == 5
    asked_one = context(k=2, asked=frozenset({"colour"}))
    assert isinstance(load_policy("max-entropy:1").decide(asked_one), Recommend)
    assert isinstance(load_policy("max-entropy:2").decide(asked_one), Ask)
    assert isinstance(load_policy("max-entropy:0").decide(context(k=2)), Recommend)
    asked_three = context(k=1, asked=frozenset({"colour", "size", "hidden"}))  # shape still open
    decision = load_policy("max-entropy").decide(asked_three)
    assert isinstance(decision, Recommend) and decision.why == "asked 3 questions"
    with pytest.raises(ValueError, match="max-entropy:N needs a number"):
        load_policy("max-entropy:lots")


def test_max_entropy_recommends_when_the_live_candidates_fit_on_a_page() -> None:
    # Items 3..8 hold 1/20 of the best's posterior: below live_ratio 0.1, so 2 items are live.
    ctx = context([20, 20, 1, 1, 1, 1, 1, 1], k=2)
    assert list(live_ids(ctx)) == [1, 2]
    decision = load_policy("max-entropy").decide(ctx)
    assert isinstance(decision, Recommend) and decision.ids == [1, 2]
    # With one item per page the two live items do not fit, but both are red circles: nothing
    # splits them, so it recommends for want of a question.
    decision = load_policy("max-entropy").decide(context([20, 20, 1, 1, 1, 1, 1, 1], k=1))
    assert isinstance(decision, Recommend) and "no attribute splits the 2 live" in decision.why
    # Shown items (not taken) are not live, and the ratio is to the best unshown item.
    ctx = context([20, 20, 20, 1, 1, 1, 1, 1], k=2, shown=frozenset({1}))
    assert list(live_ids(ctx)) == [2, 3]
    decision = load_policy("max-entropy").decide(ctx)
    assert isinstance(decision, Recommend) and decision.ids == [2, 3]


def test_max_entropy_splits_only_the_live_candidates() -> None:
    # The 4 red circles are live, the blue items (and the star) are not: nothing splits the live
    # ones, though colour would split all 8.
    ctx = context([10, 10, 10, 10, 0.5, 0.5, 0.5, 0.5], k=2)
    assert list(live_ids(ctx)) == [1, 2, 3, 4]
    assert value_entropy(ctx, "colour", live_ids(ctx)) == 0.0
    decision = MaxEntropyPolicy().decide(ctx)
    assert isinstance(decision, Recommend) and decision.ids == [1, 2]


def test_value_entropy_arithmetic_on_a_hand_made_case() -> None:
    ctx = context()
    assert value_entropy(ctx, "colour", ctx.facts.ids) == pytest.approx(1.0)
    assert value_entropy(ctx, "shape", ctx.facts.ids) == pytest.approx(
        -(7 / 8) * np.log2(7 / 8) - (1 / 8) * np.log2(1 / 8))
    assert value_entropy(ctx, "size", ctx.facts.ids) == 0.0  # one value: nothing to split
    # Tags: item 1 has dots and stripes, 2 dots, 3 checks, 4 none. Each value an item has counts
    # once, items with none count in a "no value" bucket: dots 2, stripes 1, checks 1, none 1.
    ids = np.arange(1, 5, dtype=np.int64)
    pattern = AttributeInfo("pattern", "tags", True, ("dots", "stripes", "checks"), None)
    tags = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1], [0, 0, 0]], dtype=bool)
    facts = CatalogFacts("toy", ids, {"pattern": pattern}, {}, {"pattern": tags}, {})
    tagged = PolicyContext(facts, Candidates(ids, np.zeros(4), np.full(4, 1 / 4)), k=1)
    p = np.array([2, 1, 1, 1]) / 5
    assert value_entropy(tagged, "pattern", ids) == pytest.approx(float(-(p * np.log2(p)).sum()))  # 1.922 bits
    # One value present (plus items without it) is no split.
    assert value_entropy(tagged, "pattern", np.array([2, 4])) == 0.0
    decision = MaxEntropyPolicy().decide(tagged)
    assert isinstance(decision, Ask) and decision.attribute == "pattern"
    assert decision.options[-1] == "any" and set(decision.options[:-1]) == {"dots", "stripes", "checks"}


def test_max_entropy_runs_a_whole_evaluation(shapes_catalog, capsys) -> None:
    import json

    from crs.cli import main

    store, _ = shapes_catalog
    code = main(["eval", "--catalog", "shapes", "--db", store.url, "--embedder", "fake",
                 "--policy", "max-entropy", "--n", "5", "--max-turns", "6", "--json", "--run-id", "maxent"])
    out, err = capsys.readouterr()
    assert code == 0, err
    figures = json.loads(out)
    assert (figures["policy"], figures["n"]) == ("max-entropy", 5)
    assert 0 <= figures["questions_per_conversation"] <= 3 and 0 <= figures["success_rate"] <= 1
