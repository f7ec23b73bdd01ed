"""Metadata of the demo catalog: categories, titles, tags and ids from the source packages.

Pure functions over already-loaded data (no network, no images), so each rule is testable with
tiny fixtures. The emoji sets bring clean metadata (emoji.json + emojibase labels and keywords);
the openclipart drawings bring a title and keywords inside each SVG, which are often the name of
the collection or the artist rather than of the drawing, so they are cleaned here.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

MAX_TAGS = 10
VARIATION_SELECTOR = "FE0F"  # emoji presentation selector: present in some files' names, not others
SKIN_TONES = frozenset({"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"})

# The one category vocabulary shared by emoji and clip-art: what a shopper would browse by.
CATEGORIES: tuple[str, ...] = (
    "smileys & emotion",
    "people",
    "clothing & accessories",
    "animals",
    "nature & plants",
    "food & drink",
    "travel & places",
    "buildings",
    "vehicles & transport",
    "sky & weather",
    "activities & sports",
    "celebrations & holidays",
    "music",
    "objects",
    "office & school",
    "computer & technology",
    "symbols & signs",
    "flags",
    "shapes & patterns",
)

# emoji.json category -> unified category; None drops the category. "Component" holds the five
# skin-tone swatches, modifiers rather than pictures anyone would pick as a sticker.
EMOJI_CATEGORY: dict[str, str | None] = {
    "Smileys & Emotion": "smileys & emotion",
    "People & Body": "people",
    "Animals & Nature": "animals",
    "Food & Drink": "food & drink",
    "Travel & Places": "travel & places",
    "Activities": "activities & sports",
    "Objects": "objects",
    "Symbols": "symbols & signs",
    "Flags": "flags",
    "Component": None,
}

# emoji.json subcategory -> unified category, where it differs from its category's default.
EMOJI_SUBCATEGORY: dict[str, str] = {
    "person-sport": "activities & sports",
    "plant-flower": "nature & plants",
    "plant-other": "nature & plants",
    "place-building": "buildings",
    "place-religious": "buildings",
    "transport-air": "vehicles & transport",
    "transport-ground": "vehicles & transport",
    "transport-water": "vehicles & transport",
    "sky & weather": "sky & weather",
    "time": "objects",
    "event": "celebrations & holidays",
    "clothing": "clothing & accessories",
    "computer": "computer & technology",
    "phone": "computer & technology",
    "light & video": "computer & technology",
    "music": "music",
    "musical-instrument": "music",
    "sound": "music",
    "book-paper": "office & school",
    "office": "office & school",
    "writing": "office & school",
    "mail": "office & school",
    "geometric": "shapes & patterns",
}

# openclipart folder -> unified category; the longest matching folder prefix wins. None drops the
# folder: "unsorted" is uncategorised by definition (mostly untitled Italian file names).
CLIPART_FOLDER: dict[str, str | None] = {
    "animals": "animals",
    "buildings": "buildings",
    "buildings/furniture": "objects",
    "buttons": "computer & technology",
    "computer": "computer & technology",
    "containers": "objects",
    "decorations": "shapes & patterns",
    "education": "office & school",
    "electronics": "computer & technology",
    "food": "food & drink",
    "geography": "travel & places",
    "geography/astronomy": "sky & weather",
    "logos": "symbols & signs",
    "office": "office & school",
    "people": "people",
    "people/clothing": "clothing & accessories",
    "people/smilies": "smileys & emotion",
    "plants": "nature & plants",
    "recreation": "activities & sports",
    "recreation/holiday": "celebrations & holidays",
    "recreation/party": "celebrations & holidays",
    "recreation/music": "music",
    "recreation/religion": "symbols & signs",
    "science": "objects",
    "science/astronomy": "sky & weather",
    "shapes": "shapes & patterns",
    "signs_and_symbols": "symbols & signs",
    "signs_and_symbols/flags": "flags",
    "signs_and_symbols/weather": "sky & weather",
    "signs_and_symbols/clocks": "objects",
    "special": "shapes & patterns",
    "tools": "objects",
    "transportation": "vehicles & transport",
    "transportation/roadsigns": "symbols & signs",
    "transportation/aiga-symbols": "symbols & signs",
    "unsorted": None,
}


# ---------------------------------------------------------------------------------- emoji


@dataclass(frozen=True)
class EmojiRecord:
    """One base emoji, the same concept in every emoji style."""

    unified: str  # lower-case code points as in emoji.json's `unified`, e.g. "1f468-200d-1f4bb"
    title: str
    category: str
    subcategory: str
    added_in: float
    tags: tuple[str, ...]


def codepoint_key(sequence: str) -> str:
    """Join key of an emoji across packages: upper-case code points without FE0F.

    emoji.json writes "2764-FE0F", emojibase "2764-FE0F" or "2764", Fluent files "2764-fe0f":
    the selector only asks for colour presentation and does not change which emoji it is.
    """
    points = [point for point in sequence.upper().replace("_", "-").split("-") if point]
    return "-".join(point for point in points if point != VARIATION_SELECTOR)


def index_emojibase(entries: Iterable[dict]) -> dict[str, dict]:
    """emojibase `data.json` entries by join key."""
    return {codepoint_key(entry["hexcode"]): entry for entry in entries}


def emoji_category(category: str, subcategory: str) -> str | None:
    """Unified category of an emoji; None for dropped ones; KeyError for an unknown category."""
    default = EMOJI_CATEGORY[category]
    if default is None:
        return None
    return EMOJI_SUBCATEGORY.get(subcategory, default)


def emoji_records(emoji_json: Iterable[dict], emojibase: dict[str, dict]) -> tuple[list[EmojiRecord], list[str]]:
    """Records for the base emoji of emoji.json (skin-tone variants are nested, so never listed),
    and a skip reason for each entry left out."""
    records: list[EmojiRecord] = []
    skipped: list[str] = []
    for entry in emoji_json:
        try:
            category = emoji_category(entry["category"], entry["subcategory"])
        except KeyError:
            skipped.append("unmapped emoji category")
            continue
        if category is None:
            skipped.append("skin-tone swatch")
            continue
        labels = emojibase.get(codepoint_key(entry["unified"]), {})
        title = _spaces(labels.get("label") or (entry.get("name") or "").lower())
        if not title:
            skipped.append("no usable title")
            continue
        records.append(
            EmojiRecord(
                unified=entry["unified"].lower(),
                title=title,
                category=category,
                subcategory=readable(entry["subcategory"]),
                added_in=float(entry["added_in"]),
                tags=tuple(clean_tags(labels.get("tags", []))),
            )
        )
    return records, skipped


def fluent_key(file_stem: str) -> str | None:
    """Join key of a Fluent 3D file name such as "2716-fe0f"; None for skin-tone variants."""
    key = codepoint_key(file_stem)
    if any(point in SKIN_TONES for point in key.split("-")):
        return None
    return key


# ---------------------------------------------------------------------------------- clip-art


@dataclass(frozen=True)
class SvgMeta:
    """The metadata openclipart embeds in each SVG (RDF inside <metadata>)."""

    title: str
    keywords: tuple[str, ...]
    creator: str


_DC = "{http://purl.org/dc/elements/1.1/}"


def parse_svg_meta(svg: bytes) -> SvgMeta:
    """Title, keywords and creator of the drawing (the cc:Work), not of the publisher/agent."""
    root = ET.fromstring(svg)
    work = next(root.iter("{http://web.resource.org/cc/}Work"), None)
    if work is None:
        return SvgMeta("", (), "")
    title = work.find(f"{_DC}title")
    creator = work.find(f"{_DC}creator//{_DC}title")
    keywords = tuple((item.text or "").strip() for item in work.findall(f"{_DC}subject//*"))
    return SvgMeta(
        title=_spaces(title.text if title is not None else ""),
        keywords=keywords,
        creator=_spaces(creator.text if creator is not None else ""),
    )


def clipart_category(folder: str) -> str | None:
    """Unified category of a drawing in `folder` (its path under svg/); KeyError if unmapped."""
    parts = PurePosixPath(folder).parts
    for end in range(len(parts), 0, -1):
        prefix = "/".join(parts[:end])
        if prefix in CLIPART_FOLDER:
            return CLIPART_FOLDER[prefix]
    raise KeyError(folder)


def clipart_subcategory(folder: str) -> str:
    """The drawing's second-level folder ("meats and eggs"), else its top-level one."""
    parts = PurePosixPath(folder).parts
    return readable(parts[1] if len(parts) > 1 else parts[0])


# A title matching this names a collection, a theme, a tool or a licence, not the drawing.
_COLLECTION_TITLE = re.compile(
    r"collection|theme|icons\b|icon ?set|cliparts?\b|clip ?art|public domain|\bsvg\b|\.svg|"
    r"submission|sibmission|^untitled|^layer ?\d*$|^drawing ?\d*$|^image ?\d*$|^\W*$",
    re.IGNORECASE,
)
# "Tigre02", "guitar2", "Stickyman 001": a counter glued on, or zero-padded, ends many titles.
_TRAILING_COUNTER = re.compile(r"(?<=[A-Za-z]{2})\d+$|\s+0\d*$")
# Titles shared by this many drawings are collection names too ("gramastar", "people").
COLLECTION_TITLE_MIN_SHARED = 15
_SUITS = {"c": "clubs", "d": "diamonds", "h": "hearts", "s": "spades"}
_RANKS = {"a": "ace", "k": "king", "q": "queen", "j": "jack"}
_PLAYING_CARD = re.compile(r"^[a-z]+_([cdhs])_(10|[2-9]|[akqj])$")
_GENERATED_STAR = re.compile(r"^star_(\d+)pt(\d+)step$")  # "gramastar" polygons: points, step


def clean_clipart_title(raw_title: str, file_stem: str, creator: str, shared_by: int) -> str | None:
    """A readable title for a drawing, or None when neither the SVG nor the file name gives one.

    The SVG title wins unless it names a collection or the artist; then the file name is used,
    minus the artist fragments and counters the Debian packaging appended to it.
    """
    generated = _generated_title(file_stem)
    if generated:
        return generated
    title = readable(raw_title)
    named_by_title = (
        bool(title)
        and not _COLLECTION_TITLE.search(title)
        and title.lower() != creator.lower()
        and shared_by < COLLECTION_TITLE_MIN_SHARED
    )
    if named_by_title:
        stripped = _TRAILING_COUNTER.sub("", title)
        return stripped if sum(char.isalpha() for char in stripped) >= 3 else title  # "AK47"
    from_file = title_from_file_name(file_stem, creator)
    if from_file:
        return from_file
    if title and not _COLLECTION_TITLE.search(title):
        return title  # a shared but plain title ("stick man") beats a file name like "sm_003"
    return None


def title_from_file_name(file_stem: str, creator: str) -> str | None:
    """"siringa_architetto_franc_01" by Architetto Francesco Rollandin -> "siringa"."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", file_stem.replace(".svg", " "))
    spaced = re.sub(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", spaced)
    words = [word for word in re.split(r"[\s_\-.]+", spaced.lower()) if word]
    artist = [word for word in re.split(r"\W+", creator.lower()) if len(word) >= 3]
    while words and (words[-1].isdigit() or _is_artist_fragment(words[-1], artist)):
        words.pop()
    words = [word for word in words if not _is_artist_fragment(word, artist)]
    if not any(len(word) >= 3 and word.isalpha() for word in words):
        return None
    return " ".join(words)


def clean_keywords(raw: Iterable[str], creator: str) -> list[str]:
    """SVG keywords without the blanks, hashes, ids and artist names mixed into them."""
    artist = {word for word in re.split(r"\W+", creator.lower()) if len(word) >= 3}
    kept = []
    for keyword in raw:
        words = readable(keyword).lower()
        if words in _JUNK_KEYWORDS or _ID_LIKE.search(words) or len(words) > 30:
            continue
        if artist and artist & set(words.split()):
            continue
        kept.append(words)
    return clean_tags(kept)


_JUNK_KEYWORDS = frozenset({"", "hash", "unsorted", "clipart", "clip art", "svg", "image", "theme"})
# Object ids an export tool left in the keywords: "0x935a874", "hash(0x874e7bc)", "1234".
_ID_LIKE = re.compile(r"^[0-9a-f]*\d[0-9a-f]*$|0x[0-9a-f]+")


def _is_artist_fragment(word: str, artist: list[str]) -> bool:
    """File names truncate the artist ("franc" for Francesco), so prefixes count."""
    return len(word) >= 3 and any(name.startswith(word) for name in artist)


def _generated_title(file_stem: str) -> str | None:
    """Titles for the two big generated series, whose SVG title is just the series name:
    card decks ("simple_h_q" -> "queen of hearts playing card") and star polygons."""
    stem = file_stem.lower()
    card = _PLAYING_CARD.match(stem)
    if card:
        suit, rank = card.groups()
        return f"{_RANKS.get(rank, rank)} of {_SUITS[suit]} playing card"
    star = _GENERATED_STAR.match(stem)
    if star:
        points, step = (int(group) for group in star.groups())
        return f"{points}-point star, step {step}"  # the step tells otherwise identical titles apart
    return None


# ---------------------------------------------------------------------------------- shared


def clean_tags(tags: Iterable[str]) -> list[str]:
    """Lower-cased, stripped, de-duplicated (first wins), at most MAX_TAGS."""
    seen: list[str] = []
    for tag in tags:
        value = _spaces(tag).lower()
        if value and value not in seen:
            seen.append(value)
    return seen[:MAX_TAGS]


def readable(name: str) -> str:
    """A folder, file or keyword name as words: "meats_and_eggs" -> "meats and eggs"."""
    return _spaces(re.sub(r"(?<=\w)[_-](?=\w)|_", " ", name.replace(".svg", "")))


def slug(text: str) -> str:
    """Lower-case ASCII letters, digits and single hyphens: safe in file names and URLs."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def clipart_id(relative_path: str) -> str:
    """Id from the drawing's path under svg/: "clipart-food-fruit-apple-01"."""
    return "clipart-" + slug(str(PurePosixPath(relative_path).with_suffix("")))


def unique_ids(ids: Iterable[str]) -> list[str]:
    """Suffix "-2", "-3"... to repeats, in input order, so slug collisions stay deterministic."""
    taken: set[str] = set()
    result = []
    for base in ids:
        candidate, number = base, 1
        while candidate in taken:
            number += 1
            candidate = f"{base}-{number}"
        taken.add(candidate)
        result.append(candidate)
    return result


def _spaces(text: str | None) -> str:
    return " ".join((text or "").split())
