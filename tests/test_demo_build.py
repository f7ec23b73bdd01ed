"""The pure pieces of the demo-catalog builder, on tiny in-memory fixtures (no network)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from demo_build import build as demo_build, licenses as demo_licenses
from demo_build.build import Candidate, Thumbnail, catalog_item, json_line, plan_size, size_drop_order
from demo_build.metadata import (
    CATEGORIES,
    CLIPART_FOLDER,
    EMOJI_CATEGORY,
    EMOJI_SUBCATEGORY,
    clean_clipart_title,
    clean_keywords,
    clipart_category,
    clipart_id,
    clipart_subcategory,
    codepoint_key,
    emoji_category,
    emoji_records,
    fluent_key,
    index_emojibase,
    parse_svg_meta,
    slug,
    title_from_file_name,
    unique_ids,
)

# What the pinned packages contain (emoji-datasource 16.0.0 categories, openclipart folders).
EMOJI_SOURCE_CATEGORIES = [
    "Smileys & Emotion", "People & Body", "Component", "Animals & Nature", "Food & Drink",
    "Travel & Places", "Activities", "Objects", "Symbols", "Flags",
]
CLIPART_TOP_FOLDERS = [
    "animals", "buildings", "buttons", "computer", "containers", "decorations", "education",
    "electronics", "food", "geography", "logos", "office", "people", "plants", "recreation",
    "science", "shapes", "signs_and_symbols", "special", "tools", "transportation", "unsorted",
]
FILENAME_SAFE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


# ------------------------------------------------------------------------- categories


def test_unified_vocabulary_is_shopper_sized() -> None:
    assert 12 <= len(CATEGORIES) <= 20
    assert len(set(CATEGORIES)) == len(CATEGORIES)


@pytest.mark.parametrize("category", EMOJI_SOURCE_CATEGORIES)
def test_every_emoji_category_is_mapped(category: str) -> None:
    assert category in EMOJI_CATEGORY
    assert EMOJI_CATEGORY[category] in (*CATEGORIES, None)


@pytest.mark.parametrize("folder", CLIPART_TOP_FOLDERS)
def test_every_clipart_folder_is_mapped(folder: str) -> None:
    assert clipart_category(folder) in (*CATEGORIES, None)
    assert clipart_category(f"{folder}/a/deeper/folder") == clipart_category(folder)


def test_mapping_tables_only_name_vocabulary_categories() -> None:
    targets = set(EMOJI_SUBCATEGORY.values()) | {value for value in CLIPART_FOLDER.values() if value}
    assert targets <= set(CATEGORIES)


def test_both_kinds_of_source_feed_the_shared_categories() -> None:
    from_emoji = {value for value in EMOJI_CATEGORY.values() if value} | set(EMOJI_SUBCATEGORY.values())
    from_clipart = {value for value in CLIPART_FOLDER.values() if value}
    assert from_emoji | from_clipart == set(CATEGORIES)
    assert len(from_emoji & from_clipart) >= 12


def test_subcategory_overrides_and_longest_folder_prefix_win() -> None:
    assert emoji_category("Travel & Places", "transport-air") == "vehicles & transport"
    assert emoji_category("Travel & Places", "place-map") == "travel & places"
    assert emoji_category("Objects", "clothing") == "clothing & accessories"
    assert emoji_category("Component", "skin-tone") is None
    assert clipart_category("signs_and_symbols/flags/europe/spain") == "flags"
    assert clipart_category("signs_and_symbols/map_symbols") == "symbols & signs"
    assert clipart_category("people/clothing/pantyhose") == "clothing & accessories"
    with pytest.raises(KeyError):
        clipart_category("a-folder-no-release-has")
    with pytest.raises(KeyError):
        emoji_category("A New Category", "x")


def test_clipart_subcategory_is_the_readable_second_folder() -> None:
    assert clipart_subcategory("food/meats_and_eggs") == "meats and eggs"
    assert clipart_subcategory("computer/icons/flat-theme/action") == "icons"
    assert clipart_subcategory("signs_and_symbols") == "signs and symbols"


# ------------------------------------------------------------------------- emoji join


def test_join_key_ignores_the_variation_selector() -> None:
    assert codepoint_key("2764-FE0F") == codepoint_key("2764") == "2764"
    assert codepoint_key("1f636-200d-1f32b-fe0f") == "1F636-200D-1F32B"
    assert codepoint_key("0023-FE0F-20E3") == "0023-20E3"


def test_fluent_file_names_join_and_skin_tones_are_left_out() -> None:
    assert fluent_key("2716-fe0f") == "2716"
    assert fluent_key("1f615") == "1F615"
    assert fluent_key("1f9d1-1f3fb-200d-1f3eb") is None


def test_emoji_records_join_emojibase_without_fe0f() -> None:
    emoji_json = [
        {"unified": "2764-FE0F", "name": "HEAVY BLACK HEART", "category": "Smileys & Emotion",
         "subcategory": "heart", "added_in": "1.1"},
        {"unified": "1F615", "name": "CONFUSED FACE", "category": "Smileys & Emotion",
         "subcategory": "face-concerned", "added_in": "1.0"},
        {"unified": "1F3FB", "name": "EMOJI MODIFIER FITZPATRICK TYPE-1-2", "category": "Component",
         "subcategory": "skin-tone", "added_in": "1.0"},
    ]
    emojibase = index_emojibase([
        {"hexcode": "2764", "label": "red heart", "tags": ["Heart", "love", "heart"]},
        {"hexcode": "1F615", "label": "confused face", "tags": ["confused", "face"]},
    ])
    records, skipped = emoji_records(emoji_json, emojibase)
    heart, confused = records
    assert (heart.unified, heart.title, heart.tags) == ("2764-fe0f", "red heart", ("heart", "love"))
    assert heart.category == "smileys & emotion" and heart.added_in == 1.1
    assert confused.subcategory == "face concerned"
    assert skipped == ["skin-tone swatch"]


def test_emoji_without_emojibase_entry_falls_back_to_its_name() -> None:
    entry = {"unified": "1F600", "name": "GRINNING FACE", "category": "Smileys & Emotion",
             "subcategory": "face-smiling", "added_in": "1.0"}
    (record,), _ = emoji_records([entry], {})
    assert record.title == "grinning face" and record.tags == ()


# ------------------------------------------------------------------------- clip-art text


SVG = b"""<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:cc="http://web.resource.org/cc/"
     xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
 <metadata><rdf:RDF><cc:Work rdf:about="">
  <dc:title>siringa</dc:title>
  <dc:subject><rdf:Bag><rdf:li>medicine</rdf:li><rdf:li>hash</rdf:li><rdf:li></rdf:li>
   <rdf:li>architetto francesco rollandin</rdf:li><rdf:li>hash(0x874e7bc)</rdf:li>
   <rdf:li>Syringe</rdf:li><rdf:li>medicine</rdf:li></rdf:Bag></dc:subject>
  <dc:publisher><cc:Agent><dc:title>Open Clip Art Library</dc:title></cc:Agent></dc:publisher>
  <dc:creator><cc:Agent><dc:title>Architetto Francesco Rollandin</dc:title></cc:Agent></dc:creator>
 </cc:Work></rdf:RDF></metadata>
</svg>"""


def test_svg_metadata_comes_from_the_work_not_the_publisher() -> None:
    meta = parse_svg_meta(SVG)
    assert meta.title == "siringa"
    assert meta.creator == "Architetto Francesco Rollandin"
    assert clean_keywords(meta.keywords, meta.creator) == ["medicine", "syringe"]


@pytest.mark.parametrize(
    ("raw", "stem", "creator", "shared", "expected"),
    [
        ("Fall Coloured Leaf", "fall_coloured_leaf_geral_02", "Gerald G.", 1, "Fall Coloured Leaf"),
        ("Tigre02", "tigre02_architetto_f", "Architetto Francesco Rollandin", 1, "Tigre"),
        ("AK47", "ak47_01", "", 1, "AK47"),
        ("alerta_for_manuals", "alerta_for_manuals_01", "", 1, "alerta for manuals"),
        ("Part of the Flat Icon Collection (Wed Aug 25 23:29:46 2004)", "fileimport", "Danny Allen", 552,
         "fileimport"),
        ("Clipart by Nicu Buculei - arrow08_4", "arrow07_1", "Nicu Buculei", 40, "arrow"),
        ("Various Cliparts", "Pittura_con_pennello", "", 115, "pittura con pennello"),
        ("", "siringa_architetto_franc_01", "Architetto Francesco Rollandin", 62, "siringa"),
        ("Danny Allen", "gnome-fs-directory", "Danny Allen", 1, "gnome fs directory"),
        ("AIGA_Symbol_Signs", "aiga_toilet_women", "", 122, "aiga toilet women"),
        ("stick man", "sm_003", "Nicu Buculei", 23, "stick man"),
        ("card", "simple_h_q", "Nicu Buculei", 226, "queen of hearts playing card"),
        ("card", "bordered_c_10", "Nicu Buculei", 226, "10 of clubs playing card"),
        ("gramastar", "star_89pt36step", "codifiedivining", 1375, "89-point star, step 36"),
        ("Etiquette Icons", "70a001", "Andy Fitzsimon", 207, None),
    ],
)
def test_clipart_titles_are_cleaned(raw: str, stem: str, creator: str, shared: int, expected: str | None) -> None:
    assert clean_clipart_title(raw, stem, creator, shared) == expected


def test_file_name_titles_lose_artist_fragments_and_counters() -> None:
    assert title_from_file_name("chemistry_flask_matthew__02", "Matthew Gates") == "chemistry flask"
    assert title_from_file_name("bus1_bw_jarno_vasamaa_01", "Jarno Vasamaa") == "bus 1 bw"
    assert title_from_file_name("large_braces.svg_amos_01", "Amos") == "large braces"
    assert title_from_file_name("01_02", "") is None


# ------------------------------------------------------------------------- ids


def test_ids_are_filename_safe_and_deterministic() -> None:
    paths = [
        "computer/icons/flat-theme/applications/kconfigure.svg",
        "recreation/games/cards/simple/simple_h_q.svg",
        "unsorted/Attaccapanni_con_vestito_da_donna.svg",
        "signs_and_symbols/flags/europe/Åland Islands (FI).svg",
        "food/fruit/apple.v2.svg",
    ]
    ids = [clipart_id(path) for path in paths]
    assert ids == [clipart_id(path) for path in paths]
    for item_id in ids:
        assert item_id.startswith("clipart-")
        assert FILENAME_SAFE.match(item_id), item_id
    assert ids[0] == "clipart-computer-icons-flat-theme-applications-kconfigure"
    assert slug("flag: Côte d’Ivoire") == "flag-c-te-d-ivoire"


def test_colliding_slugs_get_stable_suffixes() -> None:
    bases = [clipart_id("shapes/star.svg"), clipart_id("shapes/Star.svg"), clipart_id("shapes/star_.svg")]
    assert unique_ids(bases) == ["clipart-shapes-star", "clipart-shapes-star-2", "clipart-shapes-star-3"]


# ------------------------------------------------------------------------- items


def _candidate(style_set: demo_build.StyleSet, **overrides: object) -> Candidate:
    values: dict = {
        "id": "emoji-twitter-1f615", "image": Path("1f615.png"), "style_set": style_set,
        "title": "confused face", "category": "smileys & emotion", "subcategory": "face concerned",
        "tags": ("confused", "face"), "concept": "1f615", "added_in": 1.0,
    }
    values.update(overrides)
    return Candidate(**values)


def test_emoji_item_matches_the_catalog_format() -> None:
    thumbnail = Thumbnail(webp={}, shares={"yellow": 0.8, "brown": 0.15, "black": 0.05})
    item = catalog_item(_candidate(demo_build.TWEMOJI), thumbnail)
    assert list(item) == ["id", "title", "description", "image", "source", "license", "attributes"]
    assert item["image"] == "images/emoji-twitter-1f615.webp"
    assert item["source"] == "emoji-datasource-twitter@16.0.0" and item["license"] == "CC-BY-4.0"
    assert item["attributes"] == {
        "category": "smileys & emotion", "subcategory": "face concerned", "style": "flat",
        "colour": ["yellow", "brown"], "tags": ["confused", "face"], "concept": "1f615",
        "set": "twemoji", "added_in": 1.0,
    }
    assert item["description"] == (
        "A confused face emoji sticker in flat Twemoji style, in smileys & emotion. "
        "Yellow and brown. Keywords: confused, face."
    )
    assert json_line(item) == json_line(json.loads(json_line(item)))


def test_clipart_style_is_line_art_when_it_has_almost_no_colour() -> None:
    clipart = _candidate(demo_build.OPENCLIPART, id="clipart-animals-cat", title="cat", concept=None,
                         added_in=None, category="animals", folder="animals")
    grey = catalog_item(clipart, Thumbnail(webp={}, shares={"white": 0.6, "black": 0.35, "orange": 0.05}))
    coloured = catalog_item(clipart, Thumbnail(webp={}, shares={"orange": 0.6, "black": 0.4}))
    assert grey["attributes"]["style"] == "line-art"
    assert coloured["attributes"]["style"] == "clip-art"
    assert "concept" not in grey["attributes"] and "added_in" not in grey["attributes"]
    assert grey["license"] == "CC-PDDC"


def test_schema_declares_every_attribute_items_use() -> None:
    schema = demo_build.schema()
    names = [attribute["name"] for attribute in schema["attributes"]]
    assert names == ["category", "subcategory", "style", "colour", "tags", "concept", "set", "added_in"]
    not_askable = {attribute["name"] for attribute in schema["attributes"] if attribute.get("askable") is False}
    assert not_askable == {"tags", "concept"}


# ------------------------------------------------------------------------- size budget


def test_plan_keeps_everything_at_the_best_quality_that_fits() -> None:
    lines = {"a": 10, "b": 10}
    images = {"a": {q: q for q in demo_build.QUALITIES}, "b": {q: q for q in demo_build.QUALITIES}}
    plan = plan_size(lines, images, ["a"], fixed_bytes=0, budget=20 + 2 * 65, min_items=1)
    assert (plan.quality, plan.dropped, plan.fits) == (65, (), True)


def test_plan_drops_in_order_below_the_quality_floor_but_keeps_the_minimum() -> None:
    floor = demo_build.QUALITIES[-1]
    lines = {name: 10 for name in "abcd"}
    images = {name: {q: 100 for q in demo_build.QUALITIES} for name in "abcd"}
    plan = plan_size(lines, images, ["c", "a", "b"], fixed_bytes=0, budget=230, min_items=1)
    assert (plan.quality, plan.dropped, plan.fits) == (floor, ("c", "a"), True)
    capped = plan_size(lines, images, ["c", "a", "b"], fixed_bytes=0, budget=0, min_items=3)
    assert (capped.dropped, capped.fits) == (("c",), False)


def test_drop_order_takes_from_the_largest_droppable_folder_first() -> None:
    folders = {f"star{i}": "shapes/stars" for i in range(4)}
    folders |= {"icon0": "computer/icons/flat-theme", "icon1": "computer/icons", "cat": "animals"}
    order = size_drop_order(folders)
    assert order == size_drop_order(dict(reversed(list(folders.items()))))
    assert "cat" not in order and len(order) == 6
    assert all(item.startswith("star") for item in order[:2])


# ------------------------------------------------------------------------- licences


def test_licenses_block_is_replaced_and_other_sections_kept() -> None:
    first = demo_licenses.merge_licenses("# Licences\n\n## Trained weights\nMIT, ours.\n")
    again = demo_licenses.merge_licenses(first)
    assert again == first
    assert "## Trained weights\nMIT, ours." in again
    assert again.count(demo_licenses.BLOCK_BEGIN) == 1
    assert demo_licenses.TWEMOJI_ATTRIBUTION in again
    assert demo_licenses.merge_licenses(None).count(demo_licenses.BLOCK_END) == 1


# ------------------------------------------------------------------------- sharp emoji thumbnails

def test_the_committed_schema_is_what_the_build_writes() -> None:
    from crs.config import DEMO_DIR

    written = json.dumps(demo_build.schema(), indent=2, ensure_ascii=False) + "\n"
    assert (DEMO_DIR / "schema.json").read_text(encoding="utf-8") == written


def test_svg_files_join_twemoji_names_without_leading_zeros(tmp_path: Path) -> None:
    for name in ("23-20e3", "1f431", "1f3c3-1f3fb-200d-2640-fe0f"):
        (tmp_path / f"{name}.svg").write_text("<svg/>")
    files = demo_build._svg_files(tmp_path)
    assert set(files) == {codepoint_key("0023-FE0F-20E3"), codepoint_key("1F431"),
                          codepoint_key("1F3C3-1F3FB-200D-2640-FE0F")}


CAT_BODY = '<circle cx="64" cy="64" r="60" fill="#ffcc00"/><rect x="40" y="50" width="10" height="10" fill="#000"/>'


def test_noto_drawings_are_written_from_the_iconify_set_and_rendered_at_128_px(tmp_path: Path) -> None:
    package = tmp_path / "package"
    package.mkdir()
    (package / "icons.json").write_text(json.dumps({"width": 128, "height": 128, "icons": {"cat-face": {"body": CAT_BODY}}}))
    (package / "chars.json").write_text(json.dumps({"1f431": "cat-face", "1f408": "missing-alias"}))
    files = demo_build.noto_svg_files(package)
    assert set(files) == {codepoint_key("1F431")}
    image = demo_build.render_svg(files[codepoint_key("1F431")])
    assert image.size == (demo_build.MAX_SIDE, demo_build.MAX_SIDE) == (128, 128)
    assert image.getpixel((64, 64))[:3] == (255, 204, 0) and image.getpixel((1, 1))[3] == 0


def test_a_drawn_emoji_names_its_colours_from_its_png(tmp_path: Path) -> None:
    from PIL import Image

    drawing = tmp_path / "1f431.svg"
    drawing.write_text(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 128 128">{CAT_BODY}</svg>')
    png = tmp_path / "1f431.png"
    Image.new("RGBA", (64, 64), (20, 60, 220, 255)).save(png)  # a blue square: the colours come from here
    thumbnail = demo_build.make_thumbnail(drawing, png)
    assert max(thumbnail.shares, key=thumbnail.shares.get) == "blue"
    with Image.open(__import__("io").BytesIO(thumbnail.webp[70])) as webp:
        assert webp.size == (128, 128)
