"""The LLM stages over scripted LangChain fakes: prompts, answers, and every way an answer fails.

Every failure of the model (garbage, a value outside the vocabulary, a timeout, an exception in
the client) must come out as LLMError, the one exception the dialogue manager falls back on.
"""
from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from PIL import Image

from crs.understanding.parser import ParseContext, ShownItem
from crs.errors import StageFailure
from crs.facts import AttributeInfo, CatalogFacts
from crs.understanding.reader import ReadContext
from crs.llm.parser import LLMCritiqueParser
from crs.llm.fakes import ScriptedChatModel
from crs.llm.reader import LLMImageReader
from crs.llm.policy import LLMPolicy
from crs.llm.structured import LLMError, ask_json, call_with_timeout, extract_json, one_of
from crs.policy import Ask, Candidates, PolicyContext, Recommend
from crs.policy.base import ANY, question_options, top_new
from crs.turn import Critique, Question, Reference, Relative


def small_facts() -> CatalogFacts:
    """Six items: shape (categorical), colour (tags), style (ordered), price (numeric), keywords (not askable)."""
    attributes = {
        "shape": AttributeInfo("shape", "categorical", True, ("circle", "square", "star"), None),
        "colour": AttributeInfo("colour", "tags", True, ("red", "blue", "green"), None),
        "style": AttributeInfo("style", "categorical", True, ("outline", "flat"), ("outline", "flat")),
        "price": AttributeInfo("price", "numeric", False, (), None),
        "keywords": AttributeInfo("keywords", "tags", False, ("round", "pointy"), None),
    }
    codes = {"shape": np.array([0, 0, 1, 1, 2, 2], dtype=np.int32),
             "style": np.array([0, 1, 0, 1, 0, 1], dtype=np.int32)}
    tags = {"colour": np.eye(3, dtype=bool)[[0, 1, 2, 0, 1, 2]],
            "keywords": np.array([[1, 0], [1, 0], [0, 0], [0, 0], [0, 1], [0, 1]], dtype=bool)}
    return CatalogFacts("small", np.arange(1, 7, dtype=np.int64), attributes, codes, tags,
                        {"price": np.arange(1.0, 7.0)})


SHOWN = [ShownItem(1, "Red circle outline", {"shape": "circle", "colour": ["red"], "style": "outline"}),
         ShownItem(4, "Red square", {"shape": "square", "colour": ["red"], "style": "flat"}),
         ShownItem(6, "Green star", {"shape": "star", "colour": ["green"], "style": "flat"})]


def parser(*replies: str, sleep: float | None = None, timeout_s: float = 5.0) -> LLMCritiqueParser:
    return LLMCritiqueParser(ScriptedChatModel(responses=list(replies), sleep=sleep), spec="fake", timeout_s=timeout_s)


def context(shown: list[ShownItem] | None = None, question: Question | None = None) -> ParseContext:
    return ParseContext(small_facts(), SHOWN if shown is None else shown, question)


# -- structured: JSON out of a reply -------------------------------------------------------------------


@pytest.mark.parametrize("reply", [
    '{"a": 1}',
    'Sure! Here is the JSON:\n```json\n{"a": 1}\n```\nHope this helps.',
    '```\n{"a": 1}\n```',
    '<think>maybe {"a": 2}?</think>{"a": 1}',
    'The set {1, 2} is not an object, but {"a": 1} is.',
])
def test_the_first_json_object_is_taken_from_prose_fences_and_thinking(reply: str) -> None:
    assert extract_json(reply) == {"a": 1}


@pytest.mark.parametrize("reply, reason", [
    ("I think you want a blue star.", "no JSON in reply"),
    ("", "no JSON in reply (empty)"),
    ('{"require": {"colour": ["bl', "reply cut off or malformed"),
])
def test_a_reply_without_a_json_object_is_an_llm_error(reply: str, reason: str) -> None:
    with pytest.raises(LLMError, match="^" + re.escape(reason)):
        extract_json(reply)


@pytest.mark.parametrize("reply", [
    '{"require": {"colour": ["red"]}, "exclude": {"colour": ["bro',  # cut off by the token limit
    '{"answer": {"require": {"colour": ["red"]}}',  # the only complete object is nested in an unfinished one
    'Here it is: {"references": [{"item": 1, "liked": true}',  # a complete object inside an open list
])
def test_a_cut_off_or_nested_reply_is_an_llm_error_never_a_part_of_it(reply: str) -> None:
    with pytest.raises(LLMError, match="^reply cut off or malformed: no complete top-level JSON object"):
        extract_json(reply)


def test_a_cut_off_reply_makes_the_parser_fail_loudly_not_return_an_empty_critique() -> None:
    cut = '{"require": {"colour": ["red"]}, "exclude": {"colour": ["bro'
    with pytest.raises(LLMError, match="cut off"):
        parser(cut).parse("red, not brown", context())


def test_llm_error_is_the_stage_failure_the_dialogue_manager_catches() -> None:
    assert issubclass(LLMError, StageFailure)
    assert len(str(LLMError("x" * 1000))) <= 200  # stored on the turn: one short line


def test_out_of_vocabulary_reasons_name_the_field_and_the_choices() -> None:
    with pytest.raises(LLMError, match=r"^field colour: 'mauve' is not one of red, blue, green$"):
        one_of("colour", "mauve", ["red", "blue", "green"])
    assert one_of("colour", " Blue ", ["red", "blue"]) == "blue"  # case and spaces are forgiven


def test_call_with_timeout_gives_up_on_time() -> None:
    started = time.perf_counter()
    with pytest.raises(LLMError, match=r"^timeout after 0\.3 s$"):
        call_with_timeout(lambda: time.sleep(5), 0.3)
    assert time.perf_counter() - started < 1.3


def test_an_exception_inside_the_model_client_becomes_an_llm_error() -> None:
    class Unreachable(FakeListChatModel):
        def _call(self, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
            raise ConnectionError("connection refused")

    from pydantic import BaseModel

    class Anything(BaseModel):
        pass

    with pytest.raises(LLMError, match="^model failed: ConnectionError: connection refused"):
        ask_json(Unreachable(responses=[""]), [], Anything, timeout_s=2)


# -- the critique parser -----------------------------------------------------------------------------


def test_critique_answer_becomes_a_critique_in_catalog_terms() -> None:
    answer = {"require": {"Colour": "Blue", "shape": ["star"]}, "exclude": {"style": ["outline"]},
              "relative": [{"attribute": "price", "direction": -1, "item": 2}, {"attribute": "style", "direction": 1}],
              "references": [{"item": 1, "liked": False}, {"item": 3, "liked": True}],
              "accept": None, "reject_all": False, "dont_care": ["colour"], "text": "with sparkles"}
    critique = parser(json.dumps(answer)).parse("a blue star like #3, not #1, cheaper than #2", context())
    assert critique == Critique(
        require={"colour": ["blue"], "shape": ["star"]}, exclude={"style": ["outline"]},
        relative=[Relative("price", -1, 1), Relative("style", 1, None)],
        references=[Reference(0, False), Reference(2, True)], dont_care=["colour"], text="with sparkles",
        source="llm:fake")


def test_accept_and_reject_all_use_the_shown_numbers() -> None:
    assert parser('{"accept": 2}').parse("the second is perfect", context()).accept == 1
    assert parser('{"reject_all": true}').parse("none of these", context()).reject_all


def test_the_critique_prompt_holds_the_vocabulary_the_shown_items_and_the_question() -> None:
    p = parser('{"dont_care": ["colour"]}', "{}")
    question = Question("colour", ["red", "blue", ANY])
    assert p.parse("any", context(question=question)).dont_care == ["colour"]
    prompt = p.model.prompt_text()
    assert "- colour: any of red, blue\n" in prompt  # the question's options
    assert "- style:" not in prompt and "price" not in prompt  # the message names no style, compares nothing
    p.parse("flat ones", context())
    assert "- style: one of outline < flat (low to high)" in p.model.prompt_text()
    assert "1. Red circle outline (colour red; shape circle; style outline)" in prompt  # offered attributes first
    assert "3. Green star" in prompt
    assert "asked about colour (options: red, blue, any)" in prompt
    assert 'The shopper\'s message: "any"' in prompt


def test_answers_in_prose_and_fences_are_accepted() -> None:
    reply = 'Here you go:\n```json\n{"require": {"shape": ["circle"]}}\n```'
    assert parser(reply).parse("a circle", context()).require == {"shape": ["circle"]}


def test_the_parser_is_scripted_turn_by_turn() -> None:
    p = parser('{"require": {"shape": ["star"]}}', "no idea, sorry", '{"exclude": {"colour": ["red"]}}')
    assert p.parse("a star", context()).require == {"shape": ["star"]}
    with pytest.raises(LLMError, match="no JSON in reply"):
        p.parse("hmm", context())
    assert p.parse("not red", context()).exclude == {"colour": ["red"]}
    assert len(p.model.received) == 3


@pytest.mark.parametrize("answer, reason", [
    ({"require": {"colour": ["mauve"]}}, r"field require\.colour: 'mauve' is not one of red, blue, green"),
    ({"require": {"size": ["big"]}}, r"field require: 'size' is not one of shape, colour, style, keywords"),
    ({"exclude": {"price": ["3"]}}, r"field exclude: 'price' is not one of"),
    ({"relative": [{"attribute": "shape", "direction": 1}]}, r"shape has no order"),
    ({"relative": [{"attribute": "price", "direction": 2}]}, r"field relative\.0\.direction: 2 is not 1 or -1"),
    ({"references": [{"item": 4}]}, r"field references\.0\.item: item 4 was not shown \(1 to 3\)"),
    ({"accept": 0}, r"field accept: item 0 was not shown"),
    ({"dont_care": ["mood"]}, r"field dont_care\.0: 'mood' is not one of"),
    ({"require": "blue"}, r"field require: Input should be a valid dictionary"),
    ({"reject_all": "perhaps"}, r"field reject_all: Input should be a valid boolean"),
])
def test_answers_outside_the_vocabulary_or_the_shown_list_are_llm_errors(answer: dict, reason: str) -> None:
    with pytest.raises(LLMError, match=reason):
        parser(json.dumps(answer)).parse("whatever", context())


def test_identifier_like_attributes_stay_out_of_the_prompt_and_the_answer() -> None:
    facts = small_facts()
    codes = tuple(f"u{i:04x}" for i in range(40))  # one code per item, as the demo's concept attribute
    facts.attributes["code"] = AttributeInfo("code", "categorical", False, codes, None)
    p = parser('{"require": {"code": ["u0001"]}}')
    with pytest.raises(LLMError, match=r"field require: 'code' is not one of shape, colour, style, keywords"):
        p.parse("u0001", ParseContext(facts, SHOWN))
    assert "- code:" not in p.model.prompt_text() and "u0002" not in p.model.prompt_text()


def test_a_critique_the_model_left_empty_keeps_the_words_as_a_soft_wish() -> None:
    critique = parser("{}").parse("something with sparkles", context())
    assert critique.text == "something with sparkles" and critique.source == "llm:fake"


def test_a_slow_model_times_out_as_an_llm_error() -> None:
    p = parser('{"require": {"shape": ["star"]}}', sleep=3.0, timeout_s=0.5)
    started = time.perf_counter()
    with pytest.raises(LLMError, match=r"^timeout after 0\.5 s$"):
        p.parse("a star", context())
    assert time.perf_counter() - started < 1.5


# -- the image reader --------------------------------------------------------------------------------


def reader(*replies: str, sleep: float | None = None, timeout_s: float = 5.0) -> LLMImageReader:
    return LLMImageReader(ScriptedChatModel(responses=list(replies), sleep=sleep), spec="fake", timeout_s=timeout_s)


def red_square() -> Image.Image:
    image = Image.new("RGB", (64, 64), "white")
    image.paste((220, 30, 30), (12, 12, 52, 52))
    return image


def test_the_image_goes_to_the_model_as_a_data_url_with_the_askable_vocabulary() -> None:
    r = reader('{"attributes": {"shape": ["square"], "style": "flat"}, "caption": "A red square.", "colors": ["Red"]}')
    reading = r.read(red_square(), ReadContext(small_facts()))
    assert reading.attributes == {"shape": ["square"], "style": ["flat"], "colour": ["red"]}
    assert reading.caption == "A red square." and reading.colours == ["red"]
    assert reading.nearest == [] and reading.source == "llm:fake"
    human = r.model.received[0][-1]
    assert isinstance(human.content, list)
    image_blocks = [b for b in human.content if b["type"] == "image_url"]
    assert len(image_blocks) == 1 and image_blocks[0]["image_url"]["url"].startswith("data:image/png;base64,")
    prompt = r.model.prompt_text()
    assert "- shape: one of circle, square, star" in prompt and "keywords" not in prompt  # askable only
    assert "price" not in prompt


def test_a_reading_without_a_caption_gets_one_from_its_values() -> None:
    reading = reader('{"attributes": {"shape": ["star"]}}').read(red_square(), ReadContext(small_facts()))
    assert reading.caption == "a star picture" and reading.colours == []


@pytest.mark.parametrize("reply, reason", [
    ('{"attributes": {"shape": ["hexagon"]}}', r"field attributes\.shape: 'hexagon' is not one of"),
    ('{"attributes": {"keywords": ["round"]}}', r"field attributes: 'keywords' is not one of shape, colour, style"),
    ('{"colours": ["mauve"]}', r"field colours\.0: 'mauve' is not one of red, blue, green"),
    ("A lovely red square on white.", r"no JSON in reply"),
])
def test_readings_outside_the_vocabulary_or_without_json_are_llm_errors(reply: str, reason: str) -> None:
    with pytest.raises(LLMError, match=reason):
        reader(reply).read(red_square(), ReadContext(small_facts()))


def test_a_slow_vision_model_times_out() -> None:
    started = time.perf_counter()
    with pytest.raises(LLMError, match="^timeout after 0.5 s$"):
        reader("{}", sleep=3.0, timeout_s=0.5).read(red_square(), ReadContext(small_facts()))
    assert time.perf_counter() - started < 1.5


def test_a_large_picture_is_shrunk_before_it_is_sent() -> None:
    import base64
    import io

    r = reader('{"attributes": {}}')
    r.read(Image.new("RGB", (3000, 1500), "blue"), ReadContext(small_facts()))
    url = next(b for b in r.model.received[0][-1].content if b["type"] == "image_url")["image_url"]["url"]
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.size == (768, 384)


# -- the policy --------------------------------------------------------------------------------------


def policy_context(asked: frozenset[str] = frozenset(), settled: frozenset[str] = frozenset(),
                   ids: list[int] | None = None) -> PolicyContext:
    ids = [1, 2, 3, 4, 5, 6] if ids is None else ids
    posterior = np.linspace(2.0, 1.0, len(ids))
    return PolicyContext(small_facts(), Candidates(np.array(ids, dtype=np.int64), np.zeros(len(ids)),
                                                   posterior / posterior.sum() if len(ids) else posterior),
                         asked=asked, settled=settled, turn=2, k=3, shown=frozenset({1}),
                         summary="wishes: something pointy")


def llm_policy(*replies: str, **kwargs) -> LLMPolicy:  # type: ignore[no-untyped-def]
    return LLMPolicy(ScriptedChatModel(responses=list(replies)), spec="fake", **kwargs)


def test_the_policy_asks_what_the_model_chooses_with_options_from_the_candidates() -> None:
    p = llm_policy('{"action": "ask", "attribute": "Colour"}')
    ctx = policy_context(asked=frozenset({"shape"}))
    assert p.decide(ctx) == Ask("colour", question_options(ctx, "colour"))
    prompt = p.model.prompt_text()
    assert "- colour: red, blue, green, any" in prompt and "- style: outline, flat, any" in prompt
    assert "- shape:" not in prompt  # asked already: not offered again
    assert "wishes: something pointy" in prompt and "Turn 2. 6 items" in prompt
    assert "- item 1 (" in prompt and "shape circle" in prompt


def test_the_policy_recommends_the_top_new_items_when_the_model_says_so() -> None:
    ctx = policy_context()
    decision = llm_policy('```json\n{"action": "Recommend"}\n```').decide(ctx)
    assert isinstance(decision, Recommend) and decision.ids == top_new(ctx) and 1 not in decision.ids


def test_the_policy_describes_candidates_by_title_when_it_has_titles() -> None:
    p = llm_policy('{"action": "recommend"}', titles=lambda ids: {i: f"Sticker {i}" for i in ids})
    p.decide(policy_context())
    assert "- Sticker 1 (" in p.model.prompt_text()


@pytest.mark.parametrize("reply, reason", [
    ('{"action": "ask", "attribute": "shape"}', r"field attribute: 'shape' is not one of colour, style"),
    ('{"action": "ask", "attribute": "price"}', r"field attribute: 'price' is not one of"),
    ('{"action": "ask"}', r"an ask needs an attribute"),
    ('{"action": "dance"}', r"field action: Input should be 'ask' or 'recommend'"),
    ("Let me think about it.", r"no JSON in reply"),
])
def test_policy_answers_off_the_list_are_llm_errors(reply: str, reason: str) -> None:
    with pytest.raises(LLMError, match=reason):
        llm_policy(reply).decide(policy_context(asked=frozenset({"shape"})))


def test_the_policy_does_not_call_the_model_when_there_is_nothing_to_decide() -> None:
    p = llm_policy("garbage")
    everything = frozenset({"shape", "colour", "style"})
    assert isinstance(p.decide(policy_context(asked=everything)), Recommend)
    assert p.decide(policy_context(ids=[])) == Recommend([], "nothing matches")
    assert p.model.received == []


def test_the_policy_times_out_as_an_llm_error() -> None:
    p = LLMPolicy(ScriptedChatModel(responses=['{"action": "recommend"}'], sleep=3.0), spec="fake", timeout_s=0.5)
    started = time.perf_counter()
    with pytest.raises(LLMError, match="^timeout after 0.5 s$"):
        p.decide(policy_context())
    assert time.perf_counter() - started < 1.5
    assert p.name == "llm:fake"
