"""The compact critique prompt, the JSON schema its answer is held to, and how each backend gets it."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from crs.facts import AttributeInfo, CatalogFacts
from crs.llm.local_chat import Completion, LocalChatModel
from crs.llm.parser import LLMCritiqueParser
from crs.llm.relevance import Relevance
from crs.llm.schema import critique_schema
from crs.llm.structured import with_json_schema
from crs.turn import Question
from crs.understanding.parser import ParseContext
from tests.test_llm import SHOWN, parser, small_facts

GENRES = ("action", "adventure", "animation", "comedy", "crime", "drama", "fantasy", "horror", "music", "mystery",
          "romance", "sci-fi", "thriller", "war", "western")
PEOPLE = tuple(f"{first} {last}" for first in ("tom", "ann", "joe", "meg", "sam", "liz") for last in
               ("hanks", "ryan", "pesci", "lopez", "smith", "jones", "brown", "white", "green", "black"))


def film_facts() -> CatalogFacts:
    """The small facts plus a genre vocabulary too large to list whole and 60 names of people."""
    facts = small_facts()
    rows = len(facts.ids)
    facts.attributes["genres"] = AttributeInfo("genres", "tags", True, GENRES, None, label="Genre")
    facts.attributes["cast"] = AttributeInfo("cast", "tags", False, PEOPLE, None)
    facts._tags["genres"] = np.zeros((rows, len(GENRES)), dtype=bool)
    facts._tags["cast"] = np.zeros((rows, len(PEOPLE)), dtype=bool)
    return facts


def fits(value: Any, schema: dict[str, Any]) -> bool:
    """A JSON value against the subset of JSON schema that crs.llm.schema writes."""
    if "enum" in schema:
        return value in schema["enum"]
    kind = schema.get("type")
    if kind == "object":
        return isinstance(value, dict) and all(
            key in schema["properties"] and fits(v, schema["properties"][key]) for key, v in value.items()) and all(
            key in value for key in schema.get("required", ()))
    if kind == "array":
        return isinstance(value, list) and schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", 10**9) \
            and all(fits(v, schema["items"]) for v in value)
    if kind == "string":
        return isinstance(value, str) and len(value) <= schema.get("maxLength", 10**9)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == ["number", "null"]:
        return value is None or isinstance(value, (int, float))
    raise AssertionError(f"unexpected schema {schema}")


# -- which values a message is offered ------------------------------------------------------------


def test_a_message_is_offered_the_values_it_comes_near_and_the_small_vocabularies_it_names() -> None:
    relevance = Relevance(film_facts())
    offer = relevance.offer("a blue comdey, not westerns")  # a typo, a plural
    assert offer.values["colour"] == ["red", "blue", "green"]  # named: the whole small vocabulary
    assert set(offer.values["genres"]) >= {"comedy", "western"} and len(offer.values["genres"]) <= 4
    assert "shape" not in offer.values and "cast" not in offer.values and offer.numbers == []


def test_names_are_offered_only_when_the_message_names_someone() -> None:
    relevance = Relevance(film_facts())
    assert relevance.offer("anything with tom hanks").values["cast"][0] == "tom hanks"
    assert "cast" in relevance.offer("pesci films").values  # a surname alone
    assert "cast" not in relevance.offer("a comedy").values


def test_numbers_and_comparing_keys_only_for_messages_that_compare() -> None:
    relevance = Relevance(film_facts())
    assert relevance.offer("cheaper than the second").numbers == ["price"]
    assert relevance.offer("under 5").comparing
    assert not relevance.offer("a star").comparing and relevance.offer("a star").numbers == []


def test_a_message_naming_no_value_is_offered_none_and_a_question_its_options() -> None:
    relevance = Relevance(film_facts())
    assert relevance.offer("hmm, something nice").values == {}
    assert relevance.offer("none of these").values == {}
    offer = relevance.offer("whichever", Question("genres", ["drama", "horror", "any"]))
    assert offer.values["genres"] == ["drama", "horror"] and offer.indifferent


def test_an_encoder_adds_the_values_nearest_in_meaning() -> None:
    def encode(texts):  # a deterministic toy encoder: "scary" lands on horror
        return np.array([[1.0, 0.0] if t in ("horror", "something scary") else [0.0, 1.0] for t in texts])

    offer = Relevance(film_facts(), encode).offer("something scary")
    assert offer.values["genres"][0] == "horror"


# -- the schema -----------------------------------------------------------------------------------


def test_the_schema_allows_only_offered_names_values_and_shown_numbers() -> None:
    facts = film_facts()
    offer = Relevance(facts).offer("a sci-fi comedy, cheaper than the second one")
    schema = critique_schema(offer, facts, shown=3)
    good = {"require": {"genres": ["sci-fi", "comedy"]}, "all_of": ["genres"],
            "relative": [{"attribute": "price", "direction": -1, "item": 2}], "ranges": {"price": [None, 4]}}
    assert fits(good, schema)
    for bad in ({"require": {"genres": ["any"]}}, {"require": {"category": ["comedy"]}}, {"attribute": "genres"},
                {"require": {"genres": ["comedy"] * 4}}, {"references": [{"item": 4}]}, {"text": "x" * 200}):
        assert not fits(bad, schema), bad
    assert "references" not in critique_schema(offer, facts, shown=0)["properties"]
    assert "dont_care" not in schema["properties"]  # nobody shrugged and nothing was asked


def test_the_prompt_stays_compact_for_a_catalog_with_large_vocabularies() -> None:
    p = parser('{"require": {"genres": ["comedy"]}}')
    facts = film_facts()
    assert p.parse("a funny comedy please", ParseContext(facts, SHOWN)).require == {"genres": ["comedy"]}
    prompt = p.model.prompt_text()
    assert "- genres (Genre): any of comedy" in prompt and "western" not in prompt and "hanks" not in prompt
    assert len(prompt) / 4 < 300  # ~4 characters a token; measured with llama.cpp in benchmarks/llm_parser.py


# -- the new Critique fields and lenient readings ----------------------------------------------------


def test_all_of_and_ranges_reach_the_critique() -> None:
    answer = {"require": {"genres": ["sci-fi", "comedy"]}, "all_of": ["genres"], "ranges": {"price": [5, 2]}}
    critique = parser(json.dumps(answer)).parse("a sci-fi comedy from 2 to 5", ParseContext(film_facts(), SHOWN))
    assert critique.require == {"genres": ["sci-fi", "comedy"]} and critique.all_of == ["genres"]
    assert critique.ranges == {"price": [2, 5]}  # ends in the wrong order are swapped


def test_any_written_as_a_value_means_no_preference() -> None:
    critique = parser('{"require": {"shape": ["any"], "colour": ["red", "any"]}}').parse("any shape, red", ParseContext(
        film_facts(), SHOWN))
    assert critique.require == {"colour": ["red"]} and critique.dont_care == ["shape"]


def test_a_range_that_is_not_two_ends_is_an_llm_error() -> None:
    from crs.llm.structured import LLMError

    with pytest.raises(LLMError, match=r"field ranges\.price: expected \[low, high\]"):
        parser('{"ranges": {"price": [1, 2, 3]}}').parse("under 3", ParseContext(film_facts(), SHOWN))


# -- how the schema reaches each backend ------------------------------------------------------------


class RecordingLocalChat(LocalChatModel):
    """A local backend that records what it was asked to decode to, and reports token counts."""

    seen: list = []
    decodes_json_schema = True

    @property
    def _llm_type(self) -> str:
        return "recording"

    def complete(self, messages, stop, json_schema=None):  # type: ignore[no-untyped-def]
        self.seen.append(json_schema)
        return Completion('{"require": {"colour": ["red"]}}', prompt_tokens=42, completion_tokens=9)


def test_local_backends_get_the_schema_and_report_prompt_tokens() -> None:
    from langchain_core.callbacks import get_usage_metadata_callback

    model = RecordingLocalChat(seen=[])
    p = LLMCritiqueParser(model, spec="recording")
    with get_usage_metadata_callback() as usage:
        assert p.parse("red", ParseContext(film_facts(), SHOWN)).require == {"colour": ["red"]}
    assert model.seen[0]["properties"]["require"]["properties"]["colour"]["items"]["enum"] == ["red", "blue", "green"]
    assert usage.usage_metadata["recording"]["input_tokens"] == 42


def test_the_llamacpp_request_carries_the_schema_as_a_response_format(monkeypatch: pytest.MonkeyPatch) -> None:
    from crs.llm import llamacpp_chat

    class Server:
        requests: list = []

        def handle_chat_completions(self, request, callback):  # type: ignore[no-untyped-def]
            self.requests.append(request)  # streamed: the reply's pieces, then the usage
            callback({"choices": [{"delta": {"content": "{"}}]})
            callback({"choices": [{"delta": {"content": "}"}}]})
            callback({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}})

    fake = Server()
    monkeypatch.setattr(llamacpp_chat, "server", lambda *a: fake)
    model = llamacpp_chat.LlamaCppChat(model_path="x.gguf", json_mode=True)
    schema = {"type": "object", "properties": {}}
    assert model.complete([{"role": "user", "content": "hi"}], [], json_schema=schema) == Completion("{}", 7, 2)
    assert fake.requests[0]["response_format"] == {"type": "json_schema",
                                                   "json_schema": {"name": "answer", "schema": schema}}
    model.complete([{"role": "user", "content": "hi"}], [])
    assert fake.requests[1]["response_format"] == {"type": "json_object"}  # no schema: still JSON


def test_server_backends_get_their_structured_output_and_others_the_plain_model(monkeypatch) -> None:
    pytest.importorskip("langchain_openai")
    pytest.importorskip("langchain_ollama")
    from langchain_ollama import ChatOllama
    from langchain_openai import ChatOpenAI

    schema = {"type": "object", "properties": {}}
    # LangChain's with_structured_output(method="json_schema", include_raw=True): the raw reply
    # comes back beside the parse, and our own parser reads it
    ollama = with_json_schema(ChatOllama(model="m"), schema, "critique")
    assert ollama.first.steps__["raw"].kwargs["format"] == {"title": "critique", **schema}
    openai = with_json_schema(ChatOpenAI(model="m", api_key="k"), schema, "critique")
    assert openai.first.steps__["raw"].kwargs["response_format"]["json_schema"] == {
        "name": "critique", "strict": False, "schema": schema}
    local_server = ChatOpenAI(model="m", api_key="k", base_url="http://127.0.0.1:8080/v1")
    assert with_json_schema(local_server, schema) is local_server  # llama.cpp servers answer HTTP 500 to it
    fake = parser("{}").model
    assert with_json_schema(fake, schema) is fake

    class Transformers(RecordingLocalChat):  # a local backend without constrained decoding (hf:)
        decodes_json_schema = False

    plain = Transformers(seen=[])
    assert with_json_schema(plain, schema) is plain and not LLMCritiqueParser(plain).constrained


def test_a_structured_output_reply_is_read_from_its_raw_message() -> None:
    from langchain_core.messages import AIMessage
    from langchain_core.runnables import RunnableLambda

    from crs.llm.structured import invoke_text

    structured = RunnableLambda(lambda _: {"raw": AIMessage('{"accept": 1}'), "parsed": {"accept": 1},
                                           "parsing_error": None})
    assert invoke_text(structured, [], timeout_s=2) == '{"accept": 1}'


def test_the_policy_and_the_reader_are_held_to_schemas_of_what_their_prompts_list() -> None:
    import numpy as np
    from PIL import Image

    from crs.llm.policy import LLMPolicy
    from crs.llm.reader import LLMImageReader
    from crs.policy import Candidates, PolicyContext
    from crs.understanding.reader import ReadContext

    facts = film_facts()

    class Answers(RecordingLocalChat):
        reply: str = "{}"

        def complete(self, messages, stop, json_schema=None):  # type: ignore[no-untyped-def]
            self.seen.append(json_schema)
            return Completion(self.reply, 10, 3)

    policy_model = Answers(seen=[], reply='{"action": "ask", "attribute": "colour"}')
    policy = LLMPolicy(policy_model, spec="recording")
    ids = facts.ids
    context = PolicyContext(facts, Candidates(ids, np.zeros(len(ids)), np.full(len(ids), 1 / len(ids))), turn=1)
    decision = policy.decide(context)
    schema = policy_model.seen[0]
    assert schema["properties"]["action"] == {"enum": ["ask", "recommend"]} and schema["required"] == ["action"]
    assert schema["properties"]["attribute"]["enum"] == list(policy.questions(context))
    assert getattr(decision, "attribute", None) == "colour"

    reader_model = Answers(seen=[], reply='{"attributes": {"colour": ["red"]}, "caption": "a red thing"}')
    reading = LLMImageReader(reader_model, spec="recording").read(Image.new("RGB", (8, 8)), ReadContext(facts))
    schema = reader_model.seen[0]
    listed = {info.name for info in facts.askable() if info.kind != "numeric"}
    assert set(schema["properties"]["attributes"]["properties"]) == listed
    assert schema["properties"]["attributes"]["properties"]["colour"]["items"]["enum"] == ["red", "blue", "green"]
    assert reading.attributes == {"colour": ["red"]}
