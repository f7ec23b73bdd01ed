"""Reply writers (crs/replies.py): the shared contract every registered writer passes, the
templates' exact wording, the fake, and how the dialogue manager uses a writer."""
from __future__ import annotations

from dataclasses import asdict

import pytest

from crs.dialogue import DialogueManager
from crs.errors import StageFailure
from crs.replies import (REPLY_WRITERS, FakeReplyWriter, ReplyDraft, ReplyWriter, TemplateReplyWriter,
                         load_reply_writer)
from crs.search import CatalogSearch
from crs.turn import Message, Question, ReplyItem

ITEMS = (ReplyItem("red-star", "Red star", "", 0.5, "Red", 1), ReplyItem("blue-star", "Blue star", "", 0.4, "", 2),
         ReplyItem("red-circle", "Red circle", "", 0.3, "", 3))
QUESTION = Question("colour", ["red", "blue", "any"], "Which colour would you like?.")
DRAFTS = {
    "ask": ReplyDraft("ask", question=QUESTION),
    "ask after a picture": ReplyDraft("ask", caption="a red flat star sticker", question=QUESTION),
    "recommend": ReplyDraft("recommend", items=ITEMS),
    "recommend one": ReplyDraft("recommend", items=ITEMS[:1]),
    "recommend nothing": ReplyDraft("recommend"),
    "recommend after none of these": ReplyDraft("recommend", items=ITEMS[1:], reject_all=True),
    "recommend with notes": ReplyDraft("recommend", ("I could not read image 1 (not an image).",),
                                       "a blue square", items=ITEMS),
    "answer": ReplyDraft("answer", items=ITEMS[:1]),
}
# A conversation on the shapes catalog that asks, shows, is told "none of these", gets a broken
# image and a picture, and ends with a choice: every kind of reply.
SCRIPT = ["a sticker", "red", "none of these", "#2 but in outline", "that's it"]


def conversation(dm: DialogueManager, searcher: CatalogSearch) -> list:
    from retrieval.multimodal import ScoredItem

    picture = searcher.hits([ScoredItem(searcher.item_ids(["blue-square-flat"])[0], 0.0)])[0].image
    session = dm.start()
    replies = [dm.respond(session, Message(text)) for text in SCRIPT]
    replies.append(dm.respond(session, Message("like this", ("/no/such/picture.png", picture))))
    return replies + [session]


class ReplyWriterContract:
    """What every reply writer guarantees. Subclasses provide ``make_writer``."""

    def make_writer(self) -> ReplyWriter:
        raise NotImplementedError

    def test_is_a_registered_reply_writer(self) -> None:
        writer = self.make_writer()
        assert isinstance(writer, ReplyWriter)
        assert writer.name in REPLY_WRITERS

    @pytest.mark.parametrize("kind", list(DRAFTS))
    def test_every_kind_of_draft_gets_some_text(self, kind: str) -> None:
        text = self.make_writer().write(DRAFTS[kind])
        assert isinstance(text, str) and text.strip() == text and text

    def test_the_same_draft_reads_the_same(self) -> None:
        writer = self.make_writer()
        first = [writer.write(draft) for draft in DRAFTS.values()]
        assert [writer.write(draft) for draft in DRAFTS.values()] == first
        assert [self.make_writer().write(draft) for draft in DRAFTS.values()] == first  # a fresh one, too

    def test_writing_leaves_the_draft_as_it_was(self) -> None:
        before = {kind: asdict(draft) for kind, draft in DRAFTS.items()}
        writer = self.make_writer()
        for draft in DRAFTS.values():
            writer.write(draft)
        assert {kind: asdict(draft) for kind, draft in DRAFTS.items()} == before

    def test_in_a_conversation_only_the_reply_text_is_the_writers(self, shapes_catalog) -> None:
        searcher = CatalogSearch.open(*shapes_catalog, "fake")
        writer = self.make_writer()
        written: list[str] = []
        write = writer.write
        writer.write = lambda draft: written.append(write(draft)) or written[-1]  # type: ignore[method-assign]
        dm = DialogueManager(shapes_catalog[0], searcher, writer=writer, k=3)
        *replies, session = conversation(dm, searcher)
        *reference, _ = conversation(DialogueManager(shapes_catalog[0], searcher, k=3), searcher)
        assert [r.text for r in replies] == written
        assert {r.action for r in replies} == {"ask", "recommend", "answer"}
        assert [{**r.to_json(), "reply": ""} for r in replies] == [{**r.to_json(), "reply": ""} for r in reference]
        assert [t["reply"]["reply"] for t in dm.history(session)] == written  # stored as sent


class TestTemplateReplyWriter(ReplyWriterContract):
    def make_writer(self) -> ReplyWriter:
        return load_reply_writer("templates")

    def test_is_the_dialogue_managers_default(self, shapes_catalog) -> None:
        dm = DialogueManager(shapes_catalog[0], CatalogSearch.open(*shapes_catalog, "fake"))
        assert isinstance(dm.writer, TemplateReplyWriter) and dm.writer is dm.default_writer

    @pytest.mark.parametrize("kind, text", [
        ("ask", "Which colour would you like?."),
        ("ask after a picture", "I see a red flat star sticker. Which colour would you like?."),
        ("recommend", "Here are 3 I think you will like."),
        ("recommend one", "Here is 1 I think you will like."),
        ("recommend nothing", "Nothing in the catalog matches all of that. Could you drop one of your wishes?"),
        ("recommend after none of these", "Sorry about those. How about these 2?"),
        ("recommend with notes", "I could not read image 1 (not an image). I see a blue square. "
                                 "Here are 3 I think you will like."),
        ("answer", "Great choice: \u201cRed star\u201d. Anything else I can find for you?"),
    ])
    def test_the_wording(self, kind: str, text: str) -> None:
        assert self.make_writer().write(DRAFTS[kind]) == text


class TestFakeReplyWriter(ReplyWriterContract):
    def make_writer(self) -> ReplyWriter:
        return load_reply_writer("fake")

    def test_echoes_the_draft_and_keeps_it(self) -> None:
        writer = self.make_writer()
        assert isinstance(writer, FakeReplyWriter)
        assert writer.write(DRAFTS["ask"]) == "ask colour"
        assert writer.write(DRAFTS["recommend"]) == "recommend 3: red-star, blue-star, red-circle"
        assert writer.write(DRAFTS["recommend nothing"]) == "recommend 0"
        assert writer.drafts == [DRAFTS["ask"], DRAFTS["recommend"], DRAFTS["recommend nothing"]]

    def test_a_fixed_text(self) -> None:
        writer = load_reply_writer("fake:Hello there.")
        assert {writer.write(draft) for draft in DRAFTS.values()} == {"Hello there."}


def test_an_unknown_writer_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown reply writer 'llm'; choose one of templates, fake\[:TEXT\]"):
        load_reply_writer("llm")


def test_a_writer_needs_its_one_method() -> None:
    class Unfinished(ReplyWriter):
        pass

    with pytest.raises(TypeError, match="write"):
        Unfinished()  # type: ignore[abstract]


def test_a_failing_writer_leaves_the_turn_to_the_templates(shapes_catalog) -> None:
    class Broken(ReplyWriter):
        name = "broken"

        def write(self, draft: ReplyDraft) -> str:
            raise StageFailure("the model timed out")

    searcher = CatalogSearch.open(*shapes_catalog, "fake")
    dm = DialogueManager(shapes_catalog[0], searcher, writer=Broken(), k=3)
    session = dm.start()
    reply = dm.respond(session, Message("a red star"))
    plain = DialogueManager(shapes_catalog[0], searcher, k=3)
    assert reply.text == plain.respond(plain.start(), Message("a red star")).text
    assert reply.fallbacks == ["writer: the model timed out"]
    assert dm.history(session)[0]["fallbacks"] == ["writer: the model timed out"]
