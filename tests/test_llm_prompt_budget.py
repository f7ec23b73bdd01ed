"""The LLM stages' prompts stay within their budget (crs.llm.prompts.PROMPT_CHARS, < 300 tokens)
on a wide catalog, by dropping detail in a fixed order, and keep full detail when they fit; the
image reader is offered the values a picture most likely has, not a whole large vocabulary."""
from __future__ import annotations

import numpy as np
from PIL import Image

from crs.dialogue import DialogueManager
from crs.facts import AttributeInfo, CatalogFacts
from crs.llm.fakes import ScriptedChatModel
from crs.llm.parser import LLMCritiqueParser
from crs.llm.policy import LLMPolicy
from crs.llm.prompts import PROMPT_CHARS
from crs.llm.reader import LLMImageReader
from crs.policy import Candidates, PolicyContext
from crs.search import CatalogSearch
from crs.turn import ImageReading, Message
from crs.understanding.parser import ParseContext, ShownItem
from crs.understanding.reader import ImageReader, ReadContext

N = 120
GENRES = ("drama", "comedy", "thriller", "horror", "romance", "western", "documentary", "animation", "musical",
          "war", "crime", "mystery", "fantasy", "science fiction", "adventure", "family", "biography", "history")
COUNTRIES = ("united states", "united kingdom", "france", "italy", "germany", "japan", "spain", "india", "mexico",
             "sweden", "south korea", "brazil", "canada", "australia")
DECADES = ("1950s", "1960s", "1970s", "1980s", "1990s", "2000s", "2010s", "2020s")
NUMBERS = {"year": "", "runtime_minutes": "Running time (minutes)", "rotten_tomatoes": "Rotten Tomatoes score (%)",
           "critic_rating": "Critics' average rating (0-10)", "review_count": "Number of reviews",
           "metacritic": "Metacritic score", "oscars_won": "", "oscar_nominations": ""}


def wide_facts() -> CatalogFacts:
    """A film-like catalog: three large askable vocabularies, an ordered one and eight labelled numbers."""
    rng = np.random.default_rng(0)
    attributes = {
        "genres": AttributeInfo("genres", "tags", True, GENRES, None),
        "country": AttributeInfo("country", "categorical", True, COUNTRIES, None),
        "decade": AttributeInfo("decade", "categorical", True, DECADES, DECADES),
        "length": AttributeInfo("length", "categorical", True, ("short", "feature", "long"), None),
        **{name: AttributeInfo(name, "numeric", False, (), None, label=label) for name, label in NUMBERS.items()},
    }
    codes = {"country": rng.integers(0, len(COUNTRIES), N).astype(np.int32),
             "decade": rng.integers(0, len(DECADES), N).astype(np.int32),
             "length": rng.integers(0, 3, N).astype(np.int32)}
    tags = {"genres": rng.random((N, len(GENRES))) < 0.2}
    numbers = {name: rng.uniform(1, 200, N) for name in NUMBERS}
    return CatalogFacts("wide", np.arange(1, N + 1, dtype=np.int64), attributes, codes, tags, numbers)


def shown_items(facts: CatalogFacts) -> list[ShownItem]:
    ids = [3, 17, 42, 99]
    titles = ["The Remarkable Adventures of the Night Train", "Another Rather Long Film Title, Part Two",
              "A Quiet Place by the Northern Sea", "Everything Everywhere on a Sunday"]
    return [ShownItem(i, title, values) for i, title, values in zip(ids, titles, facts.values_of(ids))]


def parser_prompt(text: str, context: ParseContext) -> str:
    parser = LLMCritiqueParser(ScriptedChatModel(responses=["{}"]), spec="fake")
    messages, _ = parser.request(text, context)
    return "".join(str(m.content) for m in messages)  # as the budget counts it (crs.llm.prompts.text_length)


def test_a_long_critique_prompt_drops_detail_until_it_fits() -> None:
    facts = wide_facts()
    full = parser_prompt("something newer", ParseContext(facts))
    assert "runtime_minutes (Running time (minutes))" in full  # short enough: the labels stay
    prompt = parser_prompt("like the second one but shorter and more recent, maybe a thriller",
                           ParseContext(facts, shown_items(facts)))
    assert len(prompt) <= PROMPT_CHARS, prompt
    assert all(item.title in prompt for item in shown_items(facts))  # titles are never dropped
    assert all(name in prompt for name in NUMBERS)  # every number the schema allows is still named
    assert "- genres: any of" in prompt and "thriller" in prompt


def policy_context(facts: CatalogFacts) -> PolicyContext:
    ids = facts.ids
    posterior = np.linspace(2.0, 1.0, len(ids))
    return PolicyContext(facts, Candidates(ids, np.zeros(len(ids)), posterior / posterior.sum()), turn=2,
                         summary="genres: drama; not country: france")


def test_a_long_policy_prompt_lists_fewer_items_and_options_until_it_fits() -> None:
    facts = wide_facts()
    titles = {int(i): f"A Film With a Fairly Long Title Number {i}" for i in facts.ids}
    policy = LLMPolicy(ScriptedChatModel(responses=['{"action": "recommend"}']), spec="fake",
                       titles=lambda ids: {i: titles[i] for i in ids})
    context = policy_context(facts)
    policy.decide(context)
    prompt = policy.model.prompt_text()
    assert len(prompt) <= PROMPT_CHARS, prompt
    for name in policy.questions(context):  # every question is still offered, some with fewer options
        assert f"- {name}: " in prompt
    assert "more)" in prompt and prompt.count("- A Film With") >= 2


def test_the_image_reader_offers_the_pictures_likely_values_from_a_large_vocabulary() -> None:
    facts = wide_facts()
    model = ScriptedChatModel(responses=['{"attributes": {"genres": ["war"]}, "caption": "a war film poster"}'])
    reader = LLMImageReader(model, spec="fake")
    likely = {"genres": ["war", "history", "drama", "biography", "adventure", "crime", "thriller", "family", "horror"],
              "country": ["japan", "south korea"]}
    reading = reader.read(Image.new("RGB", (16, 16), "grey"), ReadContext(facts, likely))
    assert reading.attributes == {"genres": ["war"]}
    prompt = model.prompt_text()
    assert "- genres: any of war, history, drama, biography, adventure, crime, thriller, family\n" in prompt
    assert "- country: one of japan, south korea\n" in prompt
    assert "- length: one of short, feature, long" in prompt  # a small vocabulary is listed whole
    assert "horror" not in prompt and "western" not in prompt and len(prompt) <= PROMPT_CHARS
    unranked = ScriptedChatModel(responses=['{"attributes": {}, "caption": "a poster"}'])
    LLMImageReader(unranked, spec="fake").read(Image.new("RGB", (16, 16)), ReadContext(facts))
    assert "- genres: any of " + ", ".join(GENRES[:8]) + "\n" in unranked.prompt_text()  # the most frequent


def test_a_value_the_prompt_did_not_offer_cannot_be_read_under_the_schema() -> None:
    """The schema's enums are the offered values (constrained backends cannot write others)."""
    from crs.llm.reader import offered_values
    from crs.llm.schema import reading_schema

    facts = wide_facts()
    offered = offered_values(ReadContext(facts, {"genres": ["war", "drama"]}))
    schema = reading_schema(offered, None)
    assert schema["properties"]["attributes"]["properties"]["genres"]["items"]["enum"] == ["war", "drama"]
    assert schema["properties"]["attributes"]["properties"]["decade"]["items"]["enum"] == list(DECADES)


class Recording(ImageReader):
    """Records the context each picture is read with; reads nothing."""

    def __init__(self) -> None:
        self.contexts: list[ReadContext] = []

    def read(self, image: Image.Image, context: ReadContext) -> ImageReading:
        self.contexts.append(context)
        return ImageReading(attributes={}, caption="a picture", source="recording")


def test_the_dialogue_manager_gives_a_model_reader_the_offline_ranking(shapes_catalog) -> None:
    store, catalog = shapes_catalog
    searcher = CatalogSearch.open(store, catalog, "fake")
    reader = Recording()
    dm = DialogueManager(store, searcher, reader=reader, k=3)
    picture = Image.new("RGB", (32, 32), "red")
    dm.respond(dm.start(), Message("", images=(picture,)))
    likely = reader.contexts[0].likely
    joint, visual = searcher.embedder.encode_images([picture])
    expected = dm.offline_reader.likely_values(joint[0], None if visual is None else visual[0], dm.facts, 8)
    assert likely == expected and likely  # the picture's ranking, per askable attribute
    for name, values in likely.items():
        assert set(values) <= set(dm.facts.attributes[name].values)


def test_a_model_that_copies_the_example_falls_back_loudly() -> None:
    """Unconstrained backends see the answer's shape in placeholders: copying it is not a reading."""
    import pytest

    from crs.llm.structured import LLMError

    copied = '{"require": {"<attribute>": ["<value>"]}, "exclude": {"<attribute>": ["<other value>"]}}'
    parser = LLMCritiqueParser(ScriptedChatModel(responses=[copied]), spec="fake")
    facts = wide_facts()
    assert "<other value>" in parser_prompt("a thriller please, not a western", ParseContext(facts))
    with pytest.raises(LLMError, match="<attribute>"):
        parser.parse("a thriller please, not a western", ParseContext(facts))
