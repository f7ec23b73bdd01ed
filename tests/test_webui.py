"""The chat page's handlers, called directly on the shapes catalog with the fake embedder.

:class:`webui.session.ChatTabs` holds what the page does; :func:`webui.chat.render` turns its
state into component values. Both are driven here without a browser or a server.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from crs.understanding.parser import CritiqueParser, ParseContext
from crs.dialogue import DialogueManager
from crs.errors import StageFailure
from crs.web.services import Services
from crs.settings import Settings
from crs.turn import Critique
from retrieval.multimodal import ScoredItem
from retrieval.progress import BuildProgress
from tests.browser_support import WarmingUp  # the app during a first start, played by the test
from webui.cards import plain_markdown, reply_for_clients, reply_html
from webui.chat import MAX_OPTIONS, build_chat_ui, messages, on_arrival, on_page_load, parse_vote, render
from webui.session import ChatTabs, TabState
from webui.uploads import servable_copy, upload_folder


@pytest.fixture
def services(shapes_catalog) -> Services:
    store, _ = shapes_catalog
    return Services(Settings(db_url=store.url, catalog="shapes", embedder="fake"))


@pytest.fixture
def tabs(services: Services) -> ChatTabs:
    return ChatTabs(lambda: services.dm, services.settings.uploads)


def image_of(services: Services, external_id: str) -> str:
    """An item's picture as the page would hold it after the person uploaded it: a copy in the
    page's upload folder (the handlers read nothing else)."""
    from retrieval.multimodal import ScoredItem

    store_id = services.searcher.item_ids([external_id])[0]
    return servable_copy(services.searcher.hits([ScoredItem(store_id, 0.0)])[0].image)


def rendered(state: TabState) -> dict[str, Any]:
    """render()'s flat list, by meaning (its order is Page.outputs())."""
    values = render(state)
    assert len(values) == 5 + MAX_OPTIONS
    return {"state": values[0], "session_id": values[1], "chat": values[2], "note": values[3],
            "options_row": values[4], "options": values[5:]}


def html_of(message: dict[str, Any]) -> str:
    """The assistant message's HTML (reply text, item cards, notes): one gr.HTML part."""
    (part,) = message["content"]
    assert isinstance(part, gr.HTML)
    return part.value


def cards_of(message: dict[str, Any]) -> list[str]:
    return re.findall(r'<li class="crs-card".*?</li>', html_of(message))


def pressed(card: str) -> dict[str, bool]:
    """Which of a card's vote buttons show as pressed."""
    return {vote: state == "true" for vote, state in
            re.findall(r'data-vote="(like|dislike)"[^>]*aria-pressed="(true|false)"', card)}


def test_a_text_turn_renders_the_question_as_option_buttons(tabs: ChatTabs) -> None:
    state = tabs.send(TabState(), "a sticker")
    assert state.session_id and len(state.turns) == 1
    assert state.options[-1] == "any" and len(state.options) >= 2
    view = rendered(state)
    assert view["session_id"] == state.session_id
    assert view["options_row"].visible is True
    shown = [b for b in view["options"] if b.visible]
    assert [b.value for b in shown] == state.options
    user, assistant = view["chat"]
    assert user == {"role": "user", "content": ["a sticker"]}
    assert html_of(assistant).startswith('<div class="crs-reply"><p>Which') and cards_of(assistant) == []


def test_clicking_an_option_sends_it_as_the_message(tabs: ChatTabs, services: Services) -> None:
    state = tabs.send(TabState(), "a sticker")
    option = state.options[0]
    after = tabs.pick(state, 0)
    assert after.session_id == state.session_id
    assert [t["message"] for t in services.dm.history(state.session_id)] == ["a sticker", option]
    assert after.turns[-1].text == option
    # A button left over from an older question does nothing but say so.
    stale = tabs.pick(after, MAX_OPTIONS - 1)
    assert stale.turns == after.turns and "no longer open" in stale.note


def test_an_image_upload_gives_item_cards_with_images_titles_and_reasons(tabs: ChatTabs, services: Services) -> None:
    image = image_of(services, "blue-square-flat")
    state = tabs.send(TabState(), "", [image])
    reply = state.turns[-1].reply
    assert reply["action"] == "recommend" and reply["items"]
    assert reply["items"][0]["id"] == "blue-square-flat"  # its own picture ranks first
    user, assistant = messages(state)
    # The person's picture is in their own bubble, as a small data: URL: no upload path in the page.
    (bubble,) = user["content"]
    assert isinstance(bubble, gr.HTML) and re.search(r'<img src="data:image/(png|jpeg);base64,', bubble.value)
    assert image not in bubble.value and "/tmp" not in bubble.value
    cards = cards_of(assistant)
    assert len(cards) == len(reply["items"])
    # Pictures come through the app's item image route, never as server paths.
    assert re.findall(r'src="([^"]+)"', html_of(assistant)) == [
        f"/api/v1/items/{i['id']}/image" for i in reply["items"]]
    assert all(i["image"] not in html_of(assistant) for i in reply["items"])
    assert '<p class="crs-name">1. Blue square</p>' in cards[0]
    for card, item in zip(cards, reply["items"]):
        assert f'<p class="crs-reason">{item["reason"]}</p>' in card
        # Like and dislike are on the card, naming the item; nothing is pressed yet.
        assert f'data-item-id="{item["id"]}" aria-pressed="false" aria-label="Like {item["title"]}"' in card
        assert pressed(card) == {"like": False, "dislike": False}
    assert rendered(state)["options_row"].visible is False


def test_like_and_dislike_reach_the_dialogue_manager(tabs: ChatTabs, services: Services) -> None:
    state = tabs.send(TabState(), "", [image_of(services, "blue-square-flat")])
    first, second = (i["id"] for i in state.turns[-1].reply["items"][:2])
    liked = tabs.rate(state, first, True)
    both = tabs.rate(liked, second, False)
    belief = services.dm.belief(state.session_id)
    first_id, second_id = services.searcher.item_ids([first, second])
    assert first_id in belief.liked and second_id in belief.disliked
    assert both.ratings == {first: True, second: False}
    assert "Blue square" in liked.note
    cards = cards_of(messages(both)[1])
    assert [pressed(card) for card in cards[:3]] == [{"like": True, "dislike": False},
                                                    {"like": False, "dislike": True},
                                                    {"like": False, "dislike": False}]
    # The next turn's query uses them: the disliked item is not shown again; the earlier cards
    # keep their verdicts and can still be rated.
    after = tabs.send(both, "more like the one I liked")
    assert second not in [i["id"] for i in after.turns[-1].reply["items"]]
    assert pressed(cards_of(messages(after)[1])[0]) == {"like": True, "dislike": False}
    assert tabs.rate(after, second, True).ratings[second] is True
    # Only items this conversation showed can be rated (a forged click names another).
    unseen = next(i for i in ("red-star-outline", "green-triangle-flat", "red-circle-outline")
                  if after.shown_item(i) is None)
    assert "no such item" in tabs.rate(after, unseen, True).note.lower()
    assert "no such item" in tabs.rate(TabState(), first, True).note.lower()


def test_start_over_gives_a_new_session(tabs: ChatTabs, services: Services) -> None:
    state = tabs.send(TabState(), "a sticker")
    fresh = tabs.start_over(state)
    assert fresh == TabState() and rendered(fresh)["chat"] == [] and rendered(fresh)["session_id"] == ""
    again = tabs.send(fresh, "a star")
    assert again.session_id and again.session_id != state.session_id and len(again.turns) == 1
    assert [t["message"] for t in services.dm.history(state.session_id)] == ["a sticker"]  # the old one is kept


def test_resume_from_a_stored_session_id_re_renders_the_history(tabs: ChatTabs, services: Services) -> None:
    state = tabs.send(TabState(), "", [image_of(services, "red-star-flat")])
    state = tabs.send(state, "a sticker")
    # A reload: a new tab state, a new ChatTabs (as after a server restart), the same store.
    resumed = ChatTabs(lambda: services.dm).resume(state.session_id)
    assert resumed.session_id == state.session_id
    assert [t.reply for t in resumed.turns] == [t.reply for t in state.turns]
    assert resumed.options == state.options
    (user,) = messages(resumed)[0]["content"]
    # The upload itself is not stored, only that it was there.
    assert '<p class="crs-note">(1 picture)</p>' in user.value and "<img" not in user.value
    assert cards_of(messages(resumed)[1])
    # Feedback works on the resumed tab, against the same session, and shows after the next reload.
    second = resumed.turns[0].reply["items"][1]["id"]
    tabs.rate(resumed, second, False)
    assert services.searcher.item_ids([second])[0] in services.dm.belief(state.session_id).disliked
    again = tabs.resume(state.session_id)
    assert again.ratings == {second: False}
    assert pressed(cards_of(messages(again)[1])[1]) == {"like": False, "dislike": True}


@pytest.mark.parametrize("stored", ["", "no-such-session"])
def test_an_unknown_or_missing_session_id_starts_afresh(tabs: ChatTabs, stored: str) -> None:
    state = tabs.resume(stored)
    assert state.session_id == "" and state.turns == ()
    assert ("no longer stored" in state.note) == bool(stored)
    assert tabs.send(state, "a sticker").session_id


def test_a_fallback_to_rules_is_noted_in_the_reply(services: Services) -> None:
    class BrokenParser(CritiqueParser):
        def parse(self, text: str, context: ParseContext) -> Critique:
            raise StageFailure("the model timed out")

    dm = DialogueManager(services.store, services.searcher, parser=BrokenParser())
    tabs = ChatTabs(lambda: dm)
    state = tabs.send(TabState(), "a red star")
    assert state.turns[-1].reply["fallbacks"]
    text = html_of(messages(state)[1])
    assert "fell back to the built-in rules" in text and "timed out" in text
    plain = ChatTabs(lambda: services.dm).send(TabState(), "a red star")
    assert "fell back" not in html_of(messages(plain)[1])


def test_bad_uploads_are_refused_with_the_reason_and_no_turn(tabs: ChatTabs, tmp_path: Path) -> None:
    fake = tmp_path / "cat.png"
    fake.write_text("not a picture")
    state = tabs.send(TabState(), "like this", [servable_copy(fake)])
    assert state.turns == () and state.session_id == ""
    assert "not a PNG" in state.note and "cat.png" in state.note
    assert "empty message" in tabs.send(state, "   ").note


def test_examples_come_from_the_loaded_catalog_and_start_a_conversation(tabs: ChatTabs) -> None:
    examples = tabs.examples()
    assert len(examples) >= 3 and len({e.text for e in examples}) == len(examples)
    with_image = [e for e in examples if e.image]
    assert len(with_image) == 1 and Path(with_image[0].image).is_file()  # the catalog's file, kept server-side
    assert with_image[0].text.startswith("like this but ")
    state = tabs.run_example(TabState(), examples.index(with_image[0]))
    assert state.turns[0].text == with_image[0].text and state.turns[0].image_count == 1
    assert state.turns[0].reply["action"] in ("ask", "recommend")
    for index in range(len(examples)):
        assert tabs.run_example(TabState(), index).turns[0].reply["reply"]
    # On load they go into the empty chat, the picture as the example's icon.
    chat = render(TabState(), examples)[2]
    assert isinstance(chat, gr.Chatbot) and chat.value == []
    assert [e["text"] for e in chat.examples] == [e.text for e in examples]
    assert [bool(e.get("icon")) for e in chat.examples] == [bool(e.image) for e in examples]
    # The icon is a copy of that one picture in the page's upload folder, not its catalog folder.
    icon = next(e["icon"] for e in chat.examples if e.get("icon"))
    icon = Path(icon["path"] if isinstance(icon, dict) else icon)
    assert icon.is_relative_to(upload_folder()) and icon.read_bytes() == Path(with_image[0].image).read_bytes()


def test_the_page_on_load_names_the_catalog_and_offers_pictures_where_it_has_them(tabs: ChatTabs) -> None:
    *_, heading, title, textbox = on_page_load(tabs, "")
    assert heading == "## Coloured shapes" and title == "Coloured shapes"
    assert textbox.sources == ["upload"] and "pictures" in textbox.placeholder
    chat = on_page_load(tabs, "")[2]
    assert "picture" in chat.placeholder
    texts = [e.text for e in tabs.examples()]
    # The demo-like catalog keeps its starts: a picture with one change, a thing, a value, an open request.
    assert texts[0] == "like this but in outline" and texts[1].startswith("a ")
    assert texts[2:] == ["show me outline shapes", "help me find something"]


@pytest.fixture
def films(store, tmp_path: Path) -> Services:
    """A text-only catalog: films from the committed sample, no pictures."""
    from tests.text_catalogs import ingest_films

    ingest_films(store, tmp_path / "films", count=60)
    return Services(Settings(db_url=store.url, catalog="films", embedder="fake"))


def test_a_text_only_catalog_gets_its_title_its_own_examples_and_no_picture_hints(films: Services) -> None:
    tabs = ChatTabs(lambda: films.dm, films.settings.uploads)
    outputs = on_page_load(tabs, "")
    *_, heading, title, textbox = outputs
    assert heading == f"## {plain_markdown('Films (Wikidata, 1940-2014)')}" and title == "Films (Wikidata, 1940-2014)"
    assert textbox.sources == [] and textbox.placeholder == "Describe what you are looking for"
    chat = outputs[2]
    assert chat.placeholder == "Tell me what you are looking for, for example its genre, decade or length."
    examples = tabs.examples()
    texts = [e.text for e in examples]
    assert not any(e.image for e in examples)
    assert not any(re.search(r"picture|image|photo|like this|upload", t) for t in [*texts, chat.placeholder])
    facts = films.dm.facts
    genres = facts.value_counts("genres")
    common = max(genres, key=genres.get)
    assert f"show me {common} films" in texts  # the catalog's own values and what its items are called
    decades = facts.value_counts("decade")
    assert f"{max(decades, key=decades.get)} {common} films" in texts
    named = next(t for t in texts if t.startswith("something like "))  # film titles are names, not things
    hits = films.dm.searcher.hits([ScoredItem(int(i), 0.0) for i in facts.ids])
    assert named.removeprefix("something like ") in {h.title for h in hits}
    assert texts[-1] == "help me find something"
    for index in range(len(examples)):  # each one starts a conversation
        assert tabs.run_example(TabState(), index).turns[0].reply["reply"]


@pytest.mark.parametrize("path", ["{catalog_image}", "{repo}/pyproject.toml", "{tmp}/missing.png", "/dev/zero",
                                  "{upload}/../outside.png"])
def test_only_files_uploaded_to_the_page_are_read(tabs: ChatTabs, services: Services, tmp_path: Path,
                                                   path: str) -> None:
    """Defect: /respond and the page's events read any path a client named (a server file
    under the working directory, a catalog picture) and echoed missing paths back."""
    from retrieval.multimodal import ScoredItem

    (tmp_path / "outside.png").write_bytes(Path(image_of(services, "red-star-flat")).read_bytes())
    catalog_image = services.searcher.hits([ScoredItem(services.searcher.item_ids(["red-star-flat"])[0], 0.0)])[0].image
    named = path.format(catalog_image=catalog_image, repo=Path(__file__).parent.parent, tmp=tmp_path,
                        upload=upload_folder())
    state = tabs.send(TabState(), "like this", [named])
    assert state.turns == () and "not a file uploaded to this page" in state.note
    assert named not in state.note and str(tmp_path) not in state.note


def test_catalog_text_is_plain_text_on_the_page() -> None:
    """Defect: titles such as ![x](http://host/t.png) or "><iframe became markup on the page."""
    hostile = {"reply": "Here <img src=http://evil.example/r.png>", "action": "recommend", "question": None,
               "fallbacks": [], "items": [
                   {"id": "1", "title": "![x](http://evil.example/t.png)", "reason": "<img src=http://evil.example/a>",
                    "image": "", "score": 1.0},
                   {"id": "2", "title": '"><iframe src=http://evil.example>', "reason": "r", "image": "x.png",
                    "score": 1.0}]}
    page = reply_html(hostile)
    assert "<img src=http" not in page and "<iframe" not in page and "](http" in page  # shown, not made a link
    assert "&lt;img src=http://evil.example/r.png&gt;" in page and "&quot;&gt;&lt;iframe" in page
    assert re.findall(r"<img [^>]*>", page) == ['<img src="/api/v1/items/2/image" alt="&quot;&gt;&lt;iframe '
                                                'src=http://evil.example&gt;" loading="lazy">']
    markdown = plain_markdown("![x](http://evil.example/t.png) <b>x</b> **y**")
    assert "![" not in markdown and "<b>" not in markdown and "**" not in markdown


def test_client_json_has_image_urls_not_server_paths() -> None:
    reply = {"reply": "Here", "action": "recommend", "question": None, "fallbacks": [],
             "items": [{"id": "a b", "title": "A", "image": "/srv/secret/a.png", "score": 1.0, "reason": "r"}]}
    out = reply_for_clients(reply, "s1")
    assert out["session_id"] == "s1" and out["action"] == "recommend"
    assert out["items"] == [{"id": "a b", "title": "A", "score": 1.0, "reason": "r",
                             "image_url": "/api/v1/items/a%20b/image"}]


def test_only_the_client_api_is_public(services: Services) -> None:
    ui = build_chat_ui(services)
    public = {fn.api_name for fn in ui.fns.values() if fn.api_visibility == "public"}
    assert public == {"respond", "start", "feedback", "history"}
    assert "dm" not in services._opened  # building the page opened nothing


def arrival(values: list[Any]) -> dict[str, Any]:
    """on_arrival()'s flat list (Page.arrival(): the outputs, heading, title, box, banner, timer)."""
    assert len(values) == 5 + MAX_OPTIONS + 5
    *page, heading, title, textbox, banner, timer = values
    return {"page": page, "heading": heading, "title": title, "textbox": textbox, "banner": banner, "timer": timer}


def test_while_the_app_gets_ready_the_page_shows_progress_and_waits_for_nothing(services: Services) -> None:
    warming = WarmingUp(services)
    tabs = ChatTabs(lambda: warming.dm, services.settings.uploads)
    first = arrival(on_arrival(warming, tabs, ""))
    assert warming.warm_ups == 1  # someone must make it ready: a server started without a warm-up
    assert first["banner"].visible is True and "Loading the models" in first["banner"].value
    assert first["timer"].active is True and first["textbox"].interactive is False
    # The chat waits hidden (the banner takes its place); nothing else changes.
    assert isinstance(first["page"][2], gr.Chatbot) and first["page"][2].visible is False
    unchanged = first["page"][:2] + first["page"][3:] + [first["heading"], first["title"]]
    assert all(value == gr.skip() for value in unchanged)

    warming.progress = BuildProgress("encoding pictures", 1200, 4000, elapsed_s=60.0)
    polled = arrival(on_arrival(warming, tabs, ""))
    assert "encoding pictures: 1200/4000 items, about 140 s left" in polled["banner"].value
    assert '<progress max="4000" value="1200">' in polled["banner"].value

    warming.ready = True
    ready = arrival(on_arrival(warming, tabs, ""))
    assert ready["banner"].visible is False and ready["timer"].active is False
    assert ready["heading"] == "## Coloured shapes" and ready["textbox"].interactive is True
    chat = ready["page"][2]
    assert isinstance(chat, gr.Chatbot) and chat.examples and chat.visible is True


def test_a_failed_warm_up_is_shown_and_the_page_stays_usable(services: Services) -> None:
    warming = WarmingUp(services)
    warming.warm_up_error = "no catalog named 'stickers' <in> the store"
    failed = arrival(on_arrival(warming, ChatTabs(lambda: warming.dm), ""))
    assert warming.warm_ups == 0 and failed["timer"].active is False
    assert "Could not get ready" in failed["banner"].value and "&lt;in&gt;" in failed["banner"].value
    assert failed["textbox"].interactive is True  # a message retries, and its error shows as a toast
    assert failed["page"][2].visible is True


@pytest.mark.parametrize(("raw", "vote"), [
    ('{"item": "red-star-flat", "vote": "like", "n": 1}', ("red-star-flat", True)),
    ('{"item": "a b", "vote": "dislike", "n": 7}', ("a b", False)),
    ('{"item": "x", "vote": "love"}', None), ('{"item": 3, "vote": "like"}', None), ("[1]", None), ("", None)])
def test_card_votes_are_read_strictly(raw: str, vote: tuple[str, bool] | None) -> None:
    assert parse_vote(raw) == vote


def test_the_persons_picture_comes_back_as_a_small_thumbnail(tmp_path: Path) -> None:
    from PIL import Image

    from webui.thumbnails import SIDE, thumbnail_url

    big = tmp_path / "photo.png"
    Image.new("RGB", (1600, 900), "orange").save(big)
    url = thumbnail_url(str(big))
    assert url.startswith("data:image/jpeg;base64,")
    import base64
    import io

    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as small:
        assert small.size == (SIDE, 90)
    clear = tmp_path / "sticker.png"
    Image.new("RGBA", (40, 40), (0, 0, 0, 0)).save(clear)
    assert thumbnail_url(str(clear)).startswith("data:image/png;base64,")  # keeps its transparency
    big.unlink()
    assert thumbnail_url(str(big)) == ""  # deleted by the janitor: the bubble shows the text alone


def test_the_page_and_the_widget_draw_the_same_thumbs() -> None:
    """The page's cards copy the widget's like/dislike icons (webui.cards); a change to one must
    reach the other, or the two clients' cards drift apart."""
    from crs.config import ASSETS_DIR
    from webui.cards import DISLIKE_ICON, LIKE_ICON

    widget = re.sub(r"'\s*\+\s*'", "", (ASSETS_DIR / "widget" / "widget.js").read_text())
    assert f"up: '{LIKE_ICON}'" in widget and f"down: '{DISLIKE_ICON}'" in widget
