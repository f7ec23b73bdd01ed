"""The web app in a real browser (Debian chromium driven by Playwright): the gradio chat page at
"/", and the embeddable widget on a page served from another origin, allowed and refused by CORS.

One app server (shapes catalog, fake embedder) serves every test in this file. Screenshots go
to $CRS_SCREENSHOTS (default: a pytest temporary directory).
"""
from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser_support import (ROOT, AppServer, StaticSite, WarmingUp, app_in_process, app_server, free_port,
                                   ingest_shapes, launch_chromium, require_chromium, screenshot_dir, small_png)
from tests.shapes import COLOURS, SHAPES, STYLES

if TYPE_CHECKING:  # playwright is imported in the fixtures, after the chromium check
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.network

WIDGET_TITLE = "Sticker shop assistant"
DEMO_PAGE = ROOT / "assets" / "widget" / "demo.html"
# Host page elements whose computed style must not change when the widget loads and runs.
HOST_PROBES = ["body", "#shop-title", "#tagline", "#buy-1", ".product img", ".products", "#email"]
HOST_PROPERTIES = ["font-family", "font-size", "line-height", "color", "background-color", "border-top-style",
                   "border-top-width", "padding-top", "margin-top", "width", "height", "display", "transform"]


def host_page(script_src: str | None, attributes: str = "") -> str:
    """The demo host page (aggressive global CSS), with its widget script loaded from script_src
    (None: no widget), extra `attributes` on the script tag."""
    html = DEMO_PAGE.read_text()
    tag = re.search(r"<script src=\"/widget\.js\".*?</script>", html, re.S)
    assert tag, "demo.html no longer embeds /widget.js"
    replacement = tag.group(0).replace('src="/widget.js"', f'src="{script_src}" {attributes}') if script_src else ""
    return html.replace(tag.group(0), replacement)


@pytest.fixture(scope="module")
def sites() -> Iterator[dict[str, Any]]:
    """Two "shops" on their own origins: one the app allows by CORS, one it does not."""
    pages: dict[str, str] = {}
    with StaticSite(pages) as allowed, StaticSite(pages) as refused:
        yield {"allowed": allowed, "refused": refused, "pages": pages}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, sites: dict[str, Any]) -> Iterator[AppServer]:
    require_chromium()  # no point starting a server for tests that will skip
    home = tmp_path_factory.mktemp("browser_app")
    db_url = f"sqlite:///{home / 'crs.db'}"
    ingest_shapes(db_url, home / "shapes")
    with app_server(catalog="shapes", db_url=db_url, home=home, embedder="fake",
                    cors_origins=[sites["allowed"].origin]) as server:
        sites["pages"]["/"] = host_page(f"{server.url}/widget.js")
        sites["pages"]["/bare"] = host_page(None)
        sites["pages"]["/dead"] = host_page(f"{server.url}/widget.js", f'data-api="http://127.0.0.1:{free_port()}"')
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    # expect() waits 5 s by default whatever the page's timeout says; a loaded CI machine needs
    # more. Every wait below is on something the page shows, never a fixed sleep.
    expect.set_options(timeout=60_000)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with browser_page(browser, {"width": 1200, "height": 860}) as page:
        yield page


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_dir(tmp_path_factory)


def shape_image(app: AppServer, name: str) -> Path:
    return app.log_path.parent / "shapes" / "images" / f"{name}.png"


def latest_reply(page: Page) -> dict[str, int]:
    """What the widget shows after the last user message: reply bubbles, option buttons, item cards."""
    return page.evaluate("""() => {
        const log = document.querySelector('crs-chat-widget').shadowRoot.querySelector('.log');
        const nodes = [...log.children];
        const after = nodes.slice(nodes.findLastIndex((n) => n.matches('.msg.user')) + 1);
        const count = (sel) => after.reduce(
            (n, node) => n + (node.matches(sel) ? 1 : node.querySelectorAll(sel).length), 0);
        return {replies: count('.msg.bot:not(.typing)'), options: count('.option'), cards: count('.card'),
                errors: count('.error')};
    }""")


def open_widget(page: Page) -> Any:
    """Open the widget's panel and wait until it takes a message: while it reads the catalog's
    intro (and a stored session) it is busy and ignores Enter, which under load once lost the
    message a test typed at once."""
    from playwright.sync_api import expect

    page.get_by_role("button", name=f"Open chat: {WIDGET_TITLE}").click()
    panel = page.get_by_role("dialog", name=WIDGET_TITLE)
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("aria-busy", "false")
    return panel


def computed_styles(page: Page, selectors: list[str]) -> dict[str, dict[str, str]]:
    return page.evaluate("""([selectors, properties]) => Object.fromEntries(selectors.map((s) => {
        const style = getComputedStyle(document.querySelector(s));
        return [s, Object.fromEntries(properties.map((p) => [p, style.getPropertyValue(p)]))];
    }))""", [selectors, HOST_PROPERTIES])


# ---- (a) the gradio chat page at "/" -----------------------------------------------------------

# The page's own handles: elem_ids it sets (#crs-chat, #crs-input, #crs-note, #crs-banner), the
# item cards' classes, `<html data-crs-ready>` once it has loaded, and the chat log's role. Option
# buttons are found by their names (the shapes catalog's attribute values, or "any").
OPTION_NAMES = re.compile(r"^(%s|any)$" % "|".join(SHAPES + tuple(COLOURS) + STYLES))
SIZES = {"1280": {"width": 1280, "height": 860}, "390": {"width": 390, "height": 844}}
CARDS_PER_ROW = {"1280": 5, "390": 3}  # five cards side by side on a desktop, three on a phone

# What a person would see go wrong, measured in the browser: the page scrolling sideways, cards cut
# at the chat's edge, a title or an option cut short, the message box below the fold, their own
# picture scrolled out of the chat.
LAYOUT_JS = """() => {
    const shown = document.querySelector('#crs-chat');  // hidden while the app gets ready
    const chat = shown ? shown.getBoundingClientRect() : {left: 0, right: innerWidth, top: 0, bottom: innerHeight};
    const lists = document.querySelectorAll('#crs-chat .crs-cards');
    const cards = lists.length ? [...lists[lists.length - 1].querySelectorAll('.crs-card')] : [];
    const cut = (el) => el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1;
    const thumbs = document.querySelectorAll('#crs-chat [data-testid=user] .crs-thumbs img');
    const thumb = thumbs.length ? thumbs[thumbs.length - 1].getBoundingClientRect() : null;
    const options = [...document.querySelectorAll('#crs-options button')].filter((b) => b.offsetParent);
    return {
        sideways: document.documentElement.scrollWidth - window.innerWidth,
        cards: cards.length,
        perRow: cards.filter((c) => Math.abs(c.getBoundingClientRect().top
                                             - cards[0].getBoundingClientRect().top) < 2).length,
        cardsCut: cards.filter((c) => { const r = c.getBoundingClientRect();
                                        return r.left < chat.left - 1 || r.right > chat.right + 1; }).length,
        titlesCut: cards.filter((c) => cut(c.querySelector('.crs-name'))).length,
        optionsCut: options.filter(cut).length,
        inputBottom: document.querySelector('#crs-input').getBoundingClientRect().bottom,
        height: window.innerHeight,
        thumbInView: thumb === null ? null : thumb.top >= chat.top && thumb.bottom <= chat.bottom,
    };
}"""


@contextmanager
def browser_page(browser: Browser, viewport: dict[str, int]) -> Iterator[Page]:
    """A fresh context and page at ``viewport``; JavaScript errors on it fail the test."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def open_chat(page: Page, url: str) -> None:
    """Load the page and wait for its own signal that it is usable (not a fixed sleep)."""
    page.goto(f"{url}/")
    page.wait_for_selector("html[data-crs-ready]", state="attached")


def send(page: Page, text: str, image: Path | None = None) -> None:
    """One message through the page's box; returns when the reply is shown (the log holds one
    more user and one more assistant message) with its pictures loaded."""
    from playwright.sync_api import expect

    log = page.get_by_role("log", name="chatbot conversation")
    before = log.locator("[data-testid=user]").count()
    composer = page.locator("#crs-input")
    if image is not None:
        composer.locator("input[type=file]").set_input_files(image)
        expect(composer.locator("img")).to_have_count(1)  # the upload's preview in the box
    composer.locator("textarea").fill(text)
    composer.get_by_role("button", name="Submit").click()
    expect(log.locator("[data-testid=user]")).to_have_count(before + 1)
    expect(log.locator("[data-testid=bot]")).to_have_count(before + 1)
    pictures_loaded(page)


def pictures_loaded(page: Page) -> None:
    page.wait_for_function("""() => [...document.querySelectorAll('#crs-chat img')]
        .every((img) => img.complete && img.naturalWidth > 0)""")


def click_option(page: Page, name: str | re.Pattern[str]) -> str:
    """Answer the open question with its option ``name``; returns the option's label."""
    from playwright.sync_api import expect

    log = page.get_by_role("log", name="chatbot conversation")
    before = log.locator("[data-testid=user]").count()
    option = page.locator("#crs-options").get_by_role("button", name=name).first
    label = option.inner_text().strip()
    option.click()
    expect(log.locator("[data-testid=bot]")).to_have_count(before + 1)
    pictures_loaded(page)
    return label


def like(page: Page, number: int) -> str:
    """Like the ``number``-th card (from 1) of the latest reply; returns its title."""
    from playwright.sync_api import expect

    card = page.locator("#crs-chat .crs-cards").last.locator(".crs-card").nth(number - 1)
    item_id = card.get_attribute("data-item-id")
    title = card.locator(".crs-name").inner_text().split(". ", 1)[1]
    card.get_by_role("button", name=f"Like {title}", exact=True).click()
    expect(page.locator("#crs-note")).to_contain_text(f"Noted: you like \u201c{title}\u201d")
    # The server's re-render, not only the click's own highlight, shows the verdict.
    expect(page.locator(f'#crs-chat .crs-card[data-item-id="{item_id}"] button[data-vote=like]').last) \
        .to_have_attribute("aria-pressed", "true")
    return title


def fits(page: Page, size: str) -> dict[str, Any]:
    """The page at ``size`` shows what it should without cuts (LAYOUT_JS); returns the measures."""
    fit = page.evaluate(LAYOUT_JS)
    assert fit["sideways"] <= 0 and fit["cardsCut"] == 0 and fit["titlesCut"] == 0 and fit["optionsCut"] == 0, fit
    assert fit["perRow"] >= min(fit["cards"], CARDS_PER_ROW[size]), f"cards squeezed into a column: {fit}"
    assert fit["inputBottom"] <= fit["height"], f"the message box is below the fold: {fit}"
    return fit


def screenshot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path))
    small_png(path)


@pytest.mark.parametrize("size", SIZES)
def test_chat_page_shows_cards_keeps_the_picture_and_fits_the_screen(app: AppServer, browser: Browser, shots: Path,
                                                                    size: str) -> None:
    from playwright.sync_api import expect

    with browser_page(browser, SIZES[size]) as page:
        open_chat(page, app.url)
        chat = page.locator("#crs-chat")
        log = page.get_by_role("log", name="chatbot conversation")
        # No stray controls over the conversation: gradio's clear and copy icons are gone.
        expect(chat.get_by_role("button", name=re.compile("Clear|Copy"))).to_have_count(0)

        # An image turn: the picture stays in the person's bubble (a thumbnail, no server path),
        # the items come as cards with whole pictures from the app's item route, full titles,
        # reasons and like/dislike.
        send(page, "like this but in outline", shape_image(app, "blue-circle-flat"))
        bubble = log.locator("[data-testid=user]").last
        expect(bubble).to_contain_text("like this but in outline")
        assert bubble.locator("img").get_attribute("src").startswith("data:image/")
        cards = page.locator("#crs-chat .crs-cards").last.locator(".crs-card")
        assert cards.count() == 5
        sources = [cards.nth(i).locator("img").get_attribute("src") for i in range(cards.count())]
        assert all(src.startswith("/api/v1/items/") and src.endswith("/image") for src in sources), sources
        assert cards.first.locator(".crs-name").inner_text().startswith("1. ")
        expect(cards.first.locator(".crs-reason")).not_to_be_empty()
        fit = fits(page, size)
        assert fit["thumbInView"] is True, f"the person's picture scrolled out of the chat: {fit}"

        # Like, on the card itself.
        like(page, 2)
        screenshot(page, shots / f"page-shapes-{size}.png")

        # "Start over" empties the chat and the box: nothing waiting there carries over.
        page.locator("#crs-input input[type=file]").set_input_files(shape_image(app, "red-star-flat"))
        expect(page.locator("#crs-input img")).to_have_count(1)
        page.get_by_role("button", name="Start over").click()
        expect(log.locator("[data-testid=user]")).to_have_count(0)
        expect(page.locator("#crs-input img")).to_have_count(0)

        # A text turn that asks: the options are buttons with their whole names; one answers it.
        send(page, "a sticker")
        expect(log.locator("[data-testid=user]").last).to_have_text("a sticker")
        expect(page.locator("#crs-options").get_by_role("button", name=OPTION_NAMES).first).to_be_visible()
        fits(page, size)
        option = click_option(page, OPTION_NAMES)
        expect(log.locator("[data-testid=user]").last).to_have_text(option)
        expect(page.locator(".toast-body")).to_have_count(0)  # gradio shows errors as toasts


def test_first_start_shows_the_build_progress_then_the_chat(browser: Browser, tmp_path: Path, shots: Path) -> None:
    """While the app gets ready the page shows the build's progress, takes no message and waits
    for nothing; when ready it loads by itself (a test double plays the warm-up)."""
    from playwright.sync_api import expect

    from crs.settings import Settings
    from crs.web.services import Services
    from retrieval.progress import BuildProgress

    db_url = f"sqlite:///{tmp_path / 'crs.db'}"
    ingest_shapes(db_url, tmp_path / "shapes")
    warming = WarmingUp(Services(Settings(db_url=db_url, catalog="shapes", embedder="fake")))
    warming.progress = BuildProgress("encoding pictures", 1200, 4000, elapsed_s=60.0)
    with app_in_process(warming) as url, browser_page(browser, SIZES["1280"]) as page:
        page.goto(f"{url}/")
        banner = page.locator("#crs-banner")
        expect(banner).to_contain_text("encoding pictures: 1200/4000 items, about 140 s left")
        expect(page.locator("#crs-input textarea")).to_be_disabled()
        expect(page.locator("#crs-chat")).to_be_hidden()  # nothing to talk to yet: the banner takes its place
        warming.progress = BuildProgress("encoding pictures", 3000, 4000, elapsed_s=150.0)
        expect(banner).to_contain_text("3000/4000 items, about 50 s left")  # the page polls
        screenshot(page, shots / "page-first-start-shapes.png")

        warming.real.dm  # what the warm-up does: open the models and the index
        warming.ready = True
        page.wait_for_selector("html[data-crs-ready]", state="attached")
        expect(banner).to_be_hidden()
        expect(page.locator("#crs-input textarea")).to_be_enabled()
        send(page, "a sticker")
        expect(page.locator(".toast-body")).to_have_count(0)
    assert warming.warm_ups >= 1


# ---- (b) the widget on another origin, allowed by CORS ------------------------------------------

def test_widget_on_another_origin_asks_recommends_and_takes_feedback(app: AppServer, sites: dict[str, Any],
                                                                     page: Page, shots: Path) -> None:
    from playwright.sync_api import expect

    with urllib.request.urlopen(f"{app.url}/widget.js", timeout=10) as response:
        assert "javascript" in response.headers["Content-Type"]

    shop = sites["allowed"].origin
    page.goto(f"{shop}/bare")
    host_before = computed_styles(page, HOST_PROBES)

    page.goto(f"{shop}/")
    launcher = page.get_by_role("button", name=f"Open chat: {WIDGET_TITLE}")
    panel = open_widget(page)
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()

    # A text turn: the assistant asks, with its options as buttons.
    page.get_by_role("textbox", name="Message").fill("I would like a sticker")
    page.keyboard.press("Enter")
    options = panel.locator(".option")
    expect(options.first).to_be_visible()
    option = options.first.inner_text()
    options.first.click()
    expect(panel.locator(".msg.user").last).to_have_text(option)
    expect(panel.locator(".typing")).to_have_count(0)

    # An image turn: attach through the file picker and send; answer what it asks until it shows items.
    page.locator("crs-chat-widget input[type=file]").set_input_files(shape_image(app, "blue-circle-flat"))
    expect(panel.locator(".chip img")).to_have_count(1)
    page.get_by_role("button", name="Send").click()
    expect(panel.locator(".msg.user").last.locator("img")).to_have_count(1)
    for _ in range(3):
        expect(panel.locator(".typing")).to_have_count(0)
        latest = latest_reply(page)
        if latest["cards"] or not latest["options"]:
            break
        panel.locator(".option:not([disabled])").first.click()
    assert latest_reply(page)["cards"] >= 1, f"no item cards after the image turn: {latest_reply(page)}"
    cards = panel.locator(".cards").last.locator(".card")
    first = cards.first
    expect(first.locator(".name")).not_to_be_empty()
    expect(first.locator(".reason")).not_to_be_empty()
    page.wait_for_function("""() => [...document.querySelector('crs-chat-widget').shadowRoot
        .querySelectorAll('.card img')].every((img) => img.complete && img.naturalWidth > 0)""")

    # Like the first item: the feedback endpoint answers ok, the button shows it.
    with page.expect_response(lambda r: r.url.endswith("/feedback") and r.request.method == "POST") as feedback:
        first.get_by_role("button", name=re.compile(r"^Like ")).click()
    assert feedback.value.ok and feedback.value.json() == {"ok": True}
    expect(first.get_by_role("button", name=re.compile(r"^Like "))).to_have_attribute("aria-pressed", "true")
    expect(panel.locator(".error")).to_have_count(0)

    # The widget's own look survives the host's global button/img/div/input rules.
    looks = page.evaluate("""() => {
        const root = document.querySelector('crs-chat-widget').shadowRoot;
        const style = (sel) => getComputedStyle(root.querySelector(sel));
        return {launcherRadius: style('.launcher').borderRadius, launcherBg: style('.launcher').backgroundColor,
                launcherWidth: style('.launcher').width, sendBorder: style('.send').borderTopStyle,
                sendTransform: style('.send').transform, cardImgWidth: style('.card img').width,
                cardImgRadius: style('.card img').borderTopLeftRadius, iconDisplay: style('.send svg').display,
                font: style('.root').fontFamily, inputBorder: style('.input').borderTopStyle,
                panelDisplay: style('.panel').display, logFontSize: style('.log').fontSize};
    }""")
    assert looks["launcherRadius"] == "50%" and looks["launcherBg"] == "rgb(59, 91, 219)"  # data-color #3b5bdb
    assert looks["launcherWidth"] == "56px"
    assert looks["sendBorder"] != "dashed" and looks["sendTransform"] == "none"
    assert looks["cardImgWidth"] != "200px" and looks["cardImgRadius"] == "0px"
    assert looks["iconDisplay"] != "none" and looks["panelDisplay"] == "flex"
    assert "Georgia" not in looks["font"] and looks["inputBorder"] == "solid" and looks["logFontSize"] == "14px"
    page.screenshot(path=str(shots / "widget.png"))

    # ...and the host page looks exactly as it did without the widget.
    assert computed_styles(page, HOST_PROBES) == host_before

    # Escape closes the panel and gives focus back to the launcher.
    page.get_by_role("textbox", name="Message").focus()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(launcher).to_be_focused()

    # A reload continues the same session (sessionStorage), re-rendered from GET /sessions/{id}.
    turns = page.locator("crs-chat-widget .msg.user").count()
    assert turns >= 3
    page.reload()
    page.evaluate("window.CRSWidget.open()")
    expect(page.get_by_role("dialog", name=WIDGET_TITLE).locator(".msg.user")).to_have_count(turns)
    restored = page.locator("crs-chat-widget .cards").last.locator(".card").first
    expect(restored.locator(".like")).to_have_attribute("aria-pressed", "true")  # the like, from the server

    # "Start over" forgets it.
    page.get_by_role("button", name="Start over").click()
    expect(page.locator("crs-chat-widget .msg.user")).to_have_count(0)
    assert page.evaluate("Object.keys(sessionStorage).filter((k) => k.startsWith('crs-widget:')).length") == 0


# ---- (c) the widget on an origin the app does not allow ------------------------------------------

def test_widget_on_a_refused_origin_says_so_in_the_panel(app: AppServer, sites: dict[str, Any], page: Page,
                                                         shots: Path) -> None:
    from playwright.sync_api import expect

    refused = sites["refused"].origin
    page.goto(f"{refused}/")
    open_widget(page)
    page.get_by_role("textbox", name="Message").fill("hello")
    page.keyboard.press("Enter")
    error = page.get_by_role("dialog", name=WIDGET_TITLE).get_by_role("alert")
    expect(error).to_contain_text(f"This site ({refused}) is not allowed to use the assistant at {app.url}")
    expect(error).to_contain_text(f"CORS allow-list (app.py --cors-origin {refused})")
    page.screenshot(path=str(shots / "widget-refused-origin.png"))

    # A server that is not there at all reads differently.
    page.goto(f"{sites['allowed'].origin}/dead")
    open_widget(page)
    page.get_by_role("textbox", name="Message").fill("hello")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("Cannot reach the assistant at http://127.0.0.1:")


# ---- the demo page, same origin: pasted and dropped images ---------------------------------------

def test_widget_demo_page_takes_pasted_and_dropped_images(app: AppServer, page: Page) -> None:
    from playwright.sync_api import expect

    page.goto(f"{app.url}/widget-demo")
    open_widget(page)
    panel = page.get_by_role("dialog", name=WIDGET_TITLE)
    png = list(shape_image(app, "red-star-flat").read_bytes())
    # Synthetic clipboard and drop events carrying a real PNG file, as a browser builds them.
    page.evaluate("""(bytes) => {
        const root = document.querySelector('crs-chat-widget').shadowRoot;
        const transfer = () => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes)], 'star.png', {type: 'image/png'}));
            return data;
        };
        root.querySelector('.input').dispatchEvent(
            new ClipboardEvent('paste', {clipboardData: transfer(), bubbles: true, cancelable: true}));
        root.querySelector('.panel').dispatchEvent(
            new DragEvent('drop', {dataTransfer: transfer(), bubbles: true, cancelable: true}));
    }""", png)
    expect(panel.locator(".chip")).to_have_count(2)
    panel.get_by_role("button", name="Remove star.png").first.click()
    expect(panel.locator(".chip")).to_have_count(1)
    panel.get_by_role("button", name="Send").click()
    expect(panel.locator(".msg.user img")).to_have_count(1)
    expect(panel.locator(".typing")).to_have_count(0)
    latest = latest_reply(page)
    assert latest["replies"] == 1 and latest["errors"] == 0, latest
    assert latest["cards"] or latest["options"], latest


# ---- the demo catalog, as a new user meets it: the README's screenshots --------------------------

DEMO_HOME = Path.home() / ".crs"
DEMO_SHOTS = ("first-start", "sleepy-cat", "image-3d", "second-blue", "like")


def demo_services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The demo catalog with the index cached in ~/.crs, on a copy of its database (the sessions
    this test writes stay out of it). Skips when there is no cached index for exactly these rows:
    this test never builds one (that takes a quarter of an hour)."""
    import json
    import sqlite3

    from crs.catalog_index import catalog_fingerprint
    from crs.settings import Settings
    from crs.web.services import Services

    cached = sorted((DEMO_HOME / "index" / "demo").glob("aligned-*/text.faiss.json"))
    if not (DEMO_HOME / "crs.db").is_file() or len(cached) != 1:
        pytest.skip(f"no cached demo index in {DEMO_HOME} (`crs index` builds it)")
    monkeypatch.setenv("CRS_HOME", str(DEMO_HOME))  # the index and feature caches; the database is a copy
    copy = tmp_path / "demo.db"
    with sqlite3.connect(DEMO_HOME / "crs.db") as source, sqlite3.connect(copy) as target:
        source.backup(target)
    services = Services(Settings(db_url=f"sqlite:///{copy}", catalog="demo"))
    if catalog_fingerprint(services.store, services.catalog) != json.loads(cached[0].read_text())["fingerprint"]:
        pytest.skip("the cached demo index is for other rows of the demo catalog; this test never builds one")
    return services


def until_cards(page: Page) -> None:
    """Answer what the assistant asks (its first option) until it shows items, at most twice."""
    for _ in range(2):
        if page.locator("#crs-chat .crs-cards").count() and not page.locator("#crs-options").is_visible():
            return
        if not page.locator("#crs-options").is_visible():
            return
        click_option(page, re.compile(r".+"))


@pytest.mark.slow
def test_demo_walkthrough_at_1280_and_390_px(browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             shots: Path) -> None:
    """The cases of issue 16 on the demo catalog, each saved as page-<case>-<width>.png: the first
    start (its progress from a warm-up double), 'a sleepy cat sticker', a picture with 'like this,
    but in 3D', 'the second one, but blue', and a like."""
    from playwright.sync_api import expect

    from retrieval.progress import BuildProgress
    from webui.session import catalog_examples

    services = demo_services(tmp_path, monkeypatch)
    warming = WarmingUp(services)
    with app_in_process(warming) as url:
        for size in SIZES:
            with browser_page(browser, SIZES[size]) as page:
                warming.ready = False
                warming.progress = BuildProgress("encoding pictures", 4870, 12330, elapsed_s=260.0)
                page.goto(f"{url}/")
                expect(page.locator("#crs-banner")).to_contain_text("encoding pictures: 4870/12330 items")
                expect(page.locator("#crs-chat")).to_be_hidden()
                fits(page, size)
                screenshot(page, shots / f"page-first-start-{size}.png")
                dm = services.dm  # the warm-up's work (the models load on the first open only)
                picture = next(e for e in catalog_examples(dm) if e.image).image
                warming.ready = True
                page.wait_for_selector("html[data-crs-ready]", state="attached")
                expect(page.locator("#crs-banner")).to_be_hidden()

                send(page, "a sleepy cat sticker")
                assert page.locator("#crs-chat .crs-cards").count() or page.locator("#crs-options").is_visible()
                fits(page, size)
                screenshot(page, shots / f"page-sleepy-cat-{size}.png")

                page.get_by_role("button", name="Start over").click()
                expect(page.get_by_role("log", name="chatbot conversation").locator("[data-testid=user]")) \
                    .to_have_count(0)
                send(page, "like this, but in 3D", Path(picture))
                until_cards(page)
                fits(page, size)
                screenshot(page, shots / f"page-image-3d-{size}.png")

                send(page, "the second one, but blue")
                until_cards(page)
                fits(page, size)
                screenshot(page, shots / f"page-second-blue-{size}.png")

                like(page, 1)
                fits(page, size)
                screenshot(page, shots / f"page-like-{size}.png")
                expect(page.locator(".toast-body")).to_have_count(0)
    saved = [shots / f"page-{case}-{size}.png" for case in DEMO_SHOTS for size in SIZES]
    assert all(path.is_file() for path in saved)
