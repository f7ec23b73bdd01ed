"""Build the bundled demo catalog: a sticker and clip-art shop from real, freely licensed images.

`build_demo(out_dir, cache_dir)` fetches the pinned packages (demo_sources), turns their metadata
into catalog items (demo_metadata), makes a small WebP thumbnail per item, names its colours from
the pixels (colours), and writes into `out_dir` (the project's assets/demo/ folder):

    catalog.jsonl.gz  items sorted by id (docs/catalog-format.md), gzipped (mtime 0: reproducible)
    schema.json       the attribute schema
    images/<id>.webp  thumbnails, at most MAX_SIDE px, transparency kept
    ATTRIBUTION.md, licenses/Apache-2.0.txt, and a section of ../LICENSES.md (assets/LICENSES.md)

The whole of assets/ must stay under ASSETS_BUDGET (it is committed; trained weights need room
too), so the WebP quality is chosen to fit and, only below the quality floor, the most redundant
clip-art is left out. Same inputs give byte-identical outputs.

Long on purpose: the build is one pipeline (candidates, thumbnails, colours, rows, schema, files) that reads top to bottom; its parts that stand alone are in sources.py, metadata.py and licenses.py.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import multiprocessing
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from xml.etree.ElementTree import ParseError

from PIL import Image

from demo_build import licenses as demo_licenses
from crs.catalog.demo import DEMO_ROWS
from crs.catalog.colours import PALETTE, chromatic_share, colour_shares, dominant_from_shares
from demo_build.metadata import (
    CATEGORIES,
    EmojiRecord,
    SvgMeta,
    clean_clipart_title,
    clean_keywords,
    clean_tags,
    clipart_category,
    clipart_id,
    clipart_subcategory,
    codepoint_key,
    emoji_records,
    fluent_key,
    index_emojibase,
    parse_svg_meta,
    unique_ids,
)
from demo_build.sources import (
    CLIPART_PNG,
    FLUENT,
    GOOGLE,
    NOTO_SVG,
    TWEMOJI_SVG,
    TWITTER,
    Package,
    SourceDirs,
    default_cache_dir,
    fetch_sources,
)

MAX_SIDE = 128
# WebP qualities tried, best first; 60 is the floor. 70 is the ceiling since the seed vectors
# shipped: a higher quality would change every picture, and so every shipped vector, for a
# difference not visible at 128 px.
QUALITIES = (70, 65, 60)
# All of assets/ (the project limit is 40 MiB). The shipped seed vectors (demo/vectors/, written
# later by `crs catalog export-vectors`) count as fixed bytes, as found on disk.
ASSETS_BUDGET = 40 * 2**20
BUDGET_MARGIN = 64 * 2**10  # room for small files others add to assets/ later
MIN_ITEMS = 8000
LINE_ART_MAX_CHROMATIC = 0.10  # drawings with less real colour than this are black/grey line art
# Over-represented clip-art, dropped first when the budget demands it: 1,375 near-identical
# generated star polygons and ~1,700 desktop-theme icons.
DROPPABLE_FOLDERS = ("shapes/stars", "computer/icons")
MAX_SOURCE_PIXELS = 700_000_000  # two road signs are 21k x 30k px PNGs: real drawings, not bombs
WORKERS = 2
DESCRIPTION_TAGS = 8


@dataclass(frozen=True)
class StyleSet:
    """One artist's set: the `set` attribute, its id prefix, style and package."""

    name: str
    id_prefix: str
    style: str
    phrase: str
    package: Package


NOTO = StyleSet("google-noto", "emoji-google", "cartoon", "cartoon Google Noto style", GOOGLE)
TWEMOJI = StyleSet("twemoji", "emoji-twitter", "flat", "flat Twemoji style", TWITTER)
FLUENT_3D = StyleSet("fluent-3d", "emoji-fluent3d", "3d", "3D Fluent style", FLUENT)
OPENCLIPART = StyleSet("openclipart", "clipart", "clip-art", "clip-art", CLIPART_PNG)
STYLES = ("flat", "cartoon", "3d", "clip-art", "line-art")


@dataclass(frozen=True)
class Candidate:
    """An item before its image is processed."""

    id: str
    image: Path  # the thumbnail's source: a raster, or an .svg rendered at MAX_SIDE
    style_set: StyleSet
    title: str
    category: str
    subcategory: str
    tags: tuple[str, ...]
    concept: str | None = None  # emoji only: the code points, shared by every style
    added_in: float | None = None  # emoji only
    folder: str = ""  # clip-art only: the path under svg/, for the drop order
    # Where colours are read, when not from `image`: emoji drawn from SVG keep reading their set's
    # 64 px PNG, so sharper thumbnails left the catalog's colour words (and its text) unchanged.
    colour_image: Path | None = None


@dataclass(frozen=True)
class Thumbnail:
    """A processed image: WebP bytes at each candidate quality, and its colour shares."""

    webp: dict[int, bytes]
    shares: dict[str, float]


@dataclass
class BuildReport:
    """What a build produced; `main` prints it and the CLI shows it."""

    items: int = 0
    per_set: Counter[str] = field(default_factory=Counter)
    per_category: Counter[str] = field(default_factory=Counter)
    per_style: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    dropped_for_size: int = 0
    webp_quality: int = 0
    max_side: int = MAX_SIDE
    image_bytes: int = 0
    catalog_bytes: int = 0
    assets_bytes: int = 0
    within_budget: bool = True
    seconds: float = 0.0

    def summary(self) -> str:
        def table(counts: Counter[str]) -> str:
            return ", ".join(f"{name} {count}" for name, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

        return "\n".join(
            [
                f"demo catalog: {self.items} items in {self.seconds:.0f} s",
                f"  sets: {table(self.per_set)}",
                f"  styles: {table(self.per_style)}",
                f"  categories: {table(self.per_category)}",
                f"  skipped: {table(self.skipped) or 'none'}",
                f"  dropped to fit the size budget: {self.dropped_for_size}",
                f"  images: WebP quality {self.webp_quality}, at most {self.max_side} px, "
                f"{self.image_bytes / 2**20:.2f} MiB; {DEMO_ROWS} {self.catalog_bytes / 2**20:.2f} MiB",
                f"  assets/ total {self.assets_bytes / 2**20:.2f} MiB (file sizes) of {ASSETS_BUDGET / 2**20:.0f} MiB "
                f"({'within' if self.within_budget else 'OVER'} budget)",
            ]
        )


# ---------------------------------------------------------------------------------- candidates


def emoji_candidates(sources: SourceDirs) -> tuple[list[Candidate], Counter[str]]:
    """One candidate per base emoji per set that has an image of it."""
    emoji_json = json.loads((sources.google / "emoji.json").read_text(encoding="utf-8"))
    emojibase = index_emojibase(json.loads((sources.emojibase / "en" / "data.json").read_text(encoding="utf-8")))
    records, skipped_reasons = emoji_records(emoji_json, emojibase)
    skipped = Counter(skipped_reasons)
    fluent_files = _fluent_files(sources.fluent / "assets")
    drawings = {NOTO: noto_svg_files(sources.noto_svg), TWEMOJI: _svg_files(sources.twemoji_svg)}
    candidates: list[Candidate] = []
    for record in records:
        images = {
            NOTO: sources.google / "img" / "google" / "64" / f"{record.unified}.png",
            TWEMOJI: sources.twitter / "img" / "twitter" / "64" / f"{record.unified}.png",
            FLUENT_3D: fluent_files.pop(codepoint_key(record.unified), None),
        }
        for style_set, image in images.items():
            if image is None or not image.exists():
                skipped[f"{style_set.name}: no image of this emoji"] += 1
                continue
            drawing = drawings.get(style_set, {}).get(codepoint_key(record.unified))
            if style_set in drawings and drawing is None:
                skipped[f"{style_set.name}: no SVG drawing (64 px PNG kept)"] += 1
            candidates.append(_emoji_candidate(record, style_set, image, drawing))
    skipped["fluent-3d: rendering of no listed emoji"] += len(fluent_files)
    return candidates, skipped


def _svg_files(root: Path) -> dict[str, Path]:
    """A folder of `<code points>.svg` by join key; Twemoji writes code points without leading
    zeros ("23-20e3" for keycap #), emoji.json with four digits ("0023-FE0F-20E3")."""
    return {codepoint_key("-".join(f"{int(point, 16):04x}" for point in path.stem.split("-"))): path
            for path in sorted(root.glob("*.svg"))}


def noto_svg_files(package: Path) -> dict[str, Path]:
    """Noto's drawings by join key, written out once as files from the Iconify JSON set.

    Iconify keeps every drawing's inner markup in icons.json and maps code points to icon names
    in chars.json; each file gets the set's own 128-unit view box.
    """
    folder = package / "svg"
    done = folder / ".complete"
    if not done.exists():
        icons = json.loads((package / "icons.json").read_text(encoding="utf-8"))
        chars = json.loads((package / "chars.json").read_text(encoding="utf-8"))
        folder.mkdir(exist_ok=True)
        default_width, default_height = icons.get("width", 16), icons.get("height", 16)
        for sequence, name in sorted(chars.items()):
            icon = icons["icons"].get(name)
            if icon is None:  # an alias of another icon: its own drawing is written under that code point
                continue
            width, height = icon.get("width", default_width), icon.get("height", default_height)
            markup = (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
                      f'viewBox="{icon.get("left", 0)} {icon.get("top", 0)} {width} {height}">{icon["body"]}</svg>')
            (folder / f"{codepoint_key(sequence).lower()}.svg").write_text(markup, encoding="utf-8")
        done.write_text("")
    return _svg_files(folder)


def _emoji_candidate(record: EmojiRecord, style_set: StyleSet, image: Path, drawing: Path | None = None) -> Candidate:
    return Candidate(
        id=f"{style_set.id_prefix}-{record.unified}",
        image=drawing or image,
        colour_image=image if drawing else None,
        style_set=style_set,
        title=record.title,
        category=record.category,
        subcategory=record.subcategory,
        tags=record.tags,
        concept=record.unified,
        added_in=record.added_in,
    )


def _fluent_files(assets: Path) -> dict[str, Path]:
    """Fluent renderings by join key, skin-tone variants left out."""
    files = {}
    for path in sorted(assets.glob("*.webp")):
        key = fluent_key(path.stem)
        if key is not None:
            files[key] = path
    return files


def clipart_candidates(sources: SourceDirs) -> tuple[list[Candidate], Counter[str]]:
    """One candidate per distinct openclipart drawing with a title and a category.

    The Debian packages repeat drawings through symlinks (same file in several folders) and a few
    as copies; only real files are read, and a drawing whose PNG or SVG was already seen is a
    duplicate.
    """
    svgs = sorted(
        path for path in sources.clipart_svg.rglob("*.svg") if path.is_file() and not path.is_symlink()
    )
    pngs = _png_index(sources.clipart_png)
    parsed = [(path, path.read_bytes()) for path in svgs]
    metas = [_svg_meta_or_blank(data) for _, data in parsed]
    shared = Counter(meta.title.lower() for meta in metas)
    skipped: Counter[str] = Counter()
    seen_png: set[Path] = set()
    seen_svg: set[str] = set()
    kept: list[tuple[str, Path, Candidate]] = []
    for (path, data), meta in zip(parsed, metas):
        relative = path.relative_to(sources.clipart_svg).as_posix()
        folder = str(Path(relative).parent)
        png = pngs.get(_drawing_key(relative))
        digest = hashlib.sha1(data).hexdigest()
        if png is None:
            skipped["clip-art: no PNG"] += 1
            continue
        if png.resolve() in seen_png or digest in seen_svg:
            skipped["clip-art: duplicate drawing"] += 1
            continue
        seen_png.add(png.resolve())
        seen_svg.add(digest)
        try:
            category = clipart_category(folder)
        except KeyError:
            skipped["clip-art: unmapped folder"] += 1
            continue
        if category is None:
            skipped["clip-art: uncategorised folder"] += 1
            continue
        title = clean_clipart_title(meta.title, path.stem, meta.creator, shared[meta.title.lower()])
        if title is None:
            skipped["clip-art: no usable title"] += 1
            continue
        keywords = clean_keywords(meta.keywords, meta.creator) or clean_tags(title.lower().split())
        candidate = Candidate(
            id="",  # assigned below, once all slugs are known
            image=png,
            style_set=OPENCLIPART,
            title=title,
            category=category,
            subcategory=clipart_subcategory(folder),
            tags=tuple(keywords),
            folder=folder,
        )
        kept.append((clipart_id(relative), png, candidate))
    ids = unique_ids(base for base, _, _ in kept)
    return [replace(candidate, id=item_id) for item_id, (_, _, candidate) in zip(ids, kept)], skipped


def _svg_meta_or_blank(data: bytes) -> SvgMeta:
    """Metadata of an SVG; a drawing whose XML does not parse falls back to its file name."""
    try:
        return parse_svg_meta(data)
    except ParseError:
        return SvgMeta("", (), "")


def _drawing_key(relative: str) -> str:
    """Match key of a drawing's SVG and PNG paths: a few PNG names keep a ".svg" the SVG lost."""
    stem = relative.rsplit(".", 1)[0]
    return stem.replace(".svg", "")


def _png_index(png_root: Path) -> dict[str, Path]:
    return {_drawing_key(path.relative_to(png_root).as_posix()): path for path in sorted(png_root.rglob("*.png"))}


# ---------------------------------------------------------------------------------- images


def make_thumbnail(source: Path, colour_source: Path | None = None) -> Thumbnail:
    """Decode (or render an SVG at MAX_SIDE), shrink to MAX_SIDE (never enlarge), name colours
    (from `colour_source` when given), encode WebP at each quality."""
    image = render_svg(source) if source.suffix == ".svg" else _raster(source)
    shares = colour_shares(image if colour_source is None else _raster(colour_source))
    webp = {}
    for quality in QUALITIES:
        buffer = io.BytesIO()
        image.save(buffer, "WEBP", quality=quality, alpha_quality=quality, method=6)
        webp[quality] = buffer.getvalue()
    return Thumbnail(webp=webp, shares=shares)


def _raster(source: Path) -> Image.Image:
    with Image.open(source) as opened:
        image = opened
        if image.mode not in ("RGBA", "RGB", "LA", "L"):
            # Palette images must be expanded first: resizing a palette picks nearest colours.
            image = image.convert("RGBA")
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        return image.convert("RGB" if image.mode in ("RGB", "L") else "RGBA")


def render_svg(source: Path) -> Image.Image:
    """An emoji drawing rendered at MAX_SIDE x MAX_SIDE (emoji view boxes are square) by resvg,
    a maintained SVG renderer with prebuilt wheels (the `demo-build` extra)."""
    try:
        import resvg_py
    except ImportError as error:
        raise SystemExit("building the demo renders SVG with resvg: pip install -e '.[demo-build]'") from error
    png = resvg_py.svg_to_bytes(svg_path=str(source), width=MAX_SIDE, height=MAX_SIDE)
    with Image.open(io.BytesIO(png)) as opened:
        return opened.convert("RGBA")


def _thumbnail_job(job: tuple[str, str | None]) -> Thumbnail | str:
    """Worker entry point: a Thumbnail, or the reason the image was skipped."""
    source, colour_source = job
    try:
        thumbnail = make_thumbnail(Path(source), None if colour_source is None else Path(colour_source))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        return f"image does not decode ({type(error).__name__})"
    if not thumbnail.shares:
        return "image is blank (fully transparent)"  # a few Debian PNGs are failed renders
    return thumbnail


def _init_worker() -> None:
    Image.MAX_IMAGE_PIXELS = MAX_SOURCE_PIXELS


def render_all(candidates: Sequence[Candidate], workers: int = WORKERS) -> list[Thumbnail | str]:
    """Thumbnails in candidate order, using `workers` processes, with progress on stdout."""
    sources = [(str(candidate.image), None if candidate.colour_image is None else str(candidate.colour_image))
               for candidate in candidates]
    results: list[Thumbnail | str] = []
    with multiprocessing.Pool(workers, initializer=_init_worker) as pool:
        for done, result in enumerate(pool.imap(_thumbnail_job, sources, chunksize=8), start=1):
            results.append(result)
            if done % 1000 == 0 or done == len(sources):
                print(f"  images {done}/{len(sources)}", flush=True)
    return results


# ---------------------------------------------------------------------------------- items


def catalog_item(candidate: Candidate, thumbnail: Thumbnail) -> dict:
    """The catalog.jsonl object of one item (key order fixed, so lines are reproducible)."""
    style = candidate.style_set.style
    if candidate.style_set is OPENCLIPART and chromatic_share(thumbnail.shares) < LINE_ART_MAX_CHROMATIC:
        style = "line-art"
    colours = dominant_from_shares(thumbnail.shares)
    attributes: dict[str, object] = {
        "category": candidate.category,
        "subcategory": candidate.subcategory,
        "style": style,
        "colour": colours,
        "tags": list(candidate.tags),
    }
    if candidate.concept is not None:
        attributes["concept"] = candidate.concept
    attributes["set"] = candidate.style_set.name
    if candidate.added_in is not None:
        attributes["added_in"] = candidate.added_in
    return {
        "id": candidate.id,
        "title": candidate.title,
        "description": describe(candidate, style, colours),
        "image": f"images/{candidate.id}.webp",
        "source": candidate.style_set.package.label,
        "license": candidate.style_set.package.license,
        "attributes": attributes,
    }


def describe(candidate: Candidate, style: str, colours: Sequence[str]) -> str:
    """One or two sentences a text encoder and a shopper can both use."""
    # CLDR labels such as "flag: Japan" read badly inside a sentence unless quoted.
    title = f'"{candidate.title}"' if ":" in candidate.title else candidate.title
    if candidate.style_set is OPENCLIPART:
        kind = "colour clip-art drawing" if style == "clip-art" else "black-and-white line-art drawing"
        first = f"{_article(title)} {title} {kind}, in {candidate.category}."
    else:
        first = f"{_article(title)} {title} emoji sticker in {candidate.style_set.phrase}, in {candidate.category}."
    parts = [first]
    if colours:
        parts.append(_sentence_case(_join_words(colours)) + ".")
    if candidate.tags:
        parts.append("Keywords: " + ", ".join(candidate.tags[:DESCRIPTION_TAGS]) + ".")
    return " ".join(parts)


def _article(word: str) -> str:
    return "An" if word.lstrip('"')[:1].lower() in "aeiou8" else "A"


def _join_words(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def json_line(item: dict) -> bytes:
    return (json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def schema() -> dict:
    """schema.json: the attributes the demo catalog declares, with the labels and value names
    questions and buttons show (docs/catalog-format.md)."""
    return {
        "name": "demo",
        "title": "Sticker and clip-art shop",
        "attributes": [
            {"name": "category", "kind": "categorical", "values": list(CATEGORIES),
             "description": "what the picture shows", "label": "Category"},
            {"name": "subcategory", "kind": "categorical",
             "description": "the source's own finer group (emoji subgroup or clip-art folder)", "label": "Group"},
            {"name": "style", "kind": "categorical", "values": list(STYLES),
             "description": "drawing style: flat (Twemoji), cartoon (Noto), 3d (Fluent), "
                            "clip-art (coloured drawing), line-art (black and grey drawing)",
             "label": "Style",
             "display": {"3d": "3D", "clip-art": "Clip art", "line-art": "Line art", "flat": "Flat",
                         "cartoon": "Cartoon"}},
            {"name": "colour", "kind": "tags", "values": list(PALETTE),
             "description": "dominant colours, computed from the pixels", "label": "Colour"},
            {"name": "tags", "kind": "tags", "askable": False, "description": "keywords", "label": "Keywords"},
            {"name": "concept", "kind": "categorical", "askable": False,
             "description": "emoji code points, the same emoji in every style", "label": "Emoji"},
            {"name": "set", "kind": "categorical",
             "values": [NOTO.name, TWEMOJI.name, FLUENT_3D.name, OPENCLIPART.name],
             "description": "the artwork set the picture comes from", "label": "Artwork set",
             "display": {NOTO.name: "Google Noto", TWEMOJI.name: "Twemoji", FLUENT_3D.name: "Fluent 3D",
                         OPENCLIPART.name: "Openclipart"}},
            {"name": "added_in", "kind": "numeric", "description": "Emoji version that added it",
             "label": "Emoji version"},
        ],
    }


# ---------------------------------------------------------------------------------- size budget


def size_drop_order(folders: dict[str, str]) -> list[str]:
    """Ids of droppable clip-art (id -> folder), in the order to drop them.

    Always from the currently largest droppable folder, so the folders shrink towards the same
    size; within a folder by a hash of the id, so what is left is spread over the whole folder.
    """
    pools: dict[str, list[str]] = {prefix: [] for prefix in DROPPABLE_FOLDERS}
    for item_id, folder in folders.items():
        for prefix in DROPPABLE_FOLDERS:
            if folder == prefix or folder.startswith(prefix + "/"):
                pools[prefix].append(item_id)
    for ids in pools.values():
        ids.sort(key=lambda item_id: hashlib.sha1(item_id.encode()).hexdigest(), reverse=True)
    order = []
    while any(pools.values()):
        largest = max(pools, key=lambda prefix: (len(pools[prefix]), prefix))
        order.append(pools[largest].pop())
    return order


@dataclass(frozen=True)
class SizePlan:
    quality: int
    dropped: tuple[str, ...]
    total_bytes: int
    fits: bool


def plan_size(
    line_bytes: dict[str, int],
    image_bytes: dict[str, dict[int, int]],
    drop_order: Sequence[str],
    fixed_bytes: int,
    budget: int,
    min_items: int = MIN_ITEMS,
) -> SizePlan:
    """Best quality whose total fits `budget`; below the floor, drop items in `drop_order`."""
    def total(quality: int) -> int:
        return fixed_bytes + sum(line_bytes.values()) + sum(sizes[quality] for sizes in image_bytes.values())

    for quality in QUALITIES:
        if total(quality) <= budget:
            return SizePlan(quality, (), total(quality), True)
    floor = QUALITIES[-1]
    remaining = total(floor)
    dropped: list[str] = []
    for item_id in drop_order:
        if len(line_bytes) - len(dropped) <= min_items:
            break
        dropped.append(item_id)
        remaining -= line_bytes[item_id] + image_bytes[item_id][floor]
        if remaining <= budget:
            return SizePlan(floor, tuple(dropped), remaining, True)
    return SizePlan(floor, tuple(dropped), remaining, False)


# ---------------------------------------------------------------------------------- writing


def disk_bytes(root: Path) -> int:
    """Bytes of the files under `root`, as the size test (tests/test_demo_catalog.py) counts them."""
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def _bytes_not_written(demo_dir: Path) -> int:
    """Bytes of assets/ this build does not write: others' files and the demo's seed vectors
    (exported after the build) count against the budget."""
    assets = demo_dir.parent
    written = (demo_dir / "images", demo_dir / DEMO_ROWS, *_text_files(demo_dir, QUALITIES[-1]))
    if not assets.exists():
        return 0
    return sum(path.stat().st_size for path in assets.rglob("*")
               if path.is_file() and not any(path == w or w in path.parents for w in written))


def _text_files(demo_dir: Path, quality: int) -> dict[Path, bytes]:
    """Everything written besides the catalog and the images, by path."""
    licenses_path = demo_dir.parent / "LICENSES.md"
    existing = licenses_path.read_text(encoding="utf-8") if licenses_path.exists() else None
    return {
        demo_dir / "schema.json": (json.dumps(schema(), indent=2, ensure_ascii=False) + "\n").encode(),
        demo_dir / "ATTRIBUTION.md": demo_licenses.attribution_markdown(quality, MAX_SIDE).encode(),
        demo_dir / demo_licenses.APACHE_COPY: demo_licenses.APACHE_TEXT.read_bytes(),
        licenses_path: demo_licenses.merge_licenses(existing).encode(),
    }


def _write_images(images_dir: Path, webp: dict[str, bytes]) -> None:
    """Write thumbnails and remove those of items no longer in the catalog."""
    images_dir.mkdir(parents=True, exist_ok=True)
    for stale in images_dir.glob("*.webp"):
        if stale.stem not in webp:
            stale.unlink()
    for item_id, data in webp.items():
        path = images_dir / f"{item_id}.webp"
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)


def build_demo(out_dir: Path, cache_dir: Path, workers: int = WORKERS) -> BuildReport:
    """Fetch the sources (cached), build the catalog and write it into `out_dir` (assets/demo/).

    The size budget covers `out_dir`'s parent (assets/), where LICENSES.md is also updated.
    """
    started = time.monotonic()
    report = BuildReport()
    sources = fetch_sources(cache_dir)
    emoji, emoji_skipped = emoji_candidates(sources)
    clipart, clipart_skipped = clipart_candidates(sources)
    report.skipped.update(emoji_skipped)
    report.skipped.update(clipart_skipped)
    candidates = emoji + clipart
    print(f"processing {len(candidates)} images ({len(emoji)} emoji, {len(clipart)} clip-art)", flush=True)
    results = render_all(candidates, workers)

    items: dict[str, dict] = {}
    thumbnails: dict[str, Thumbnail] = {}
    folders: dict[str, str] = {}
    for candidate, result in zip(candidates, results):
        if isinstance(result, str):
            report.skipped[result] += 1
            continue
        items[candidate.id] = catalog_item(candidate, result)
        thumbnails[candidate.id] = result
        if candidate.folder:
            folders[candidate.id] = candidate.folder

    lines = {item_id: json_line(item) for item_id, item in items.items()}
    # The rows ship gzipped: each line costs what it adds to the compressed file, about this share.
    everything = b"".join(lines.values())
    compressed_share = len(gzip.compress(everything, mtime=0)) / max(1, len(everything))
    fixed = (
        _bytes_not_written(out_dir)
        + sum(len(data) for data in _text_files(out_dir, QUALITIES[-1]).values())
    )
    plan = plan_size(
        {item_id: int(len(line) * compressed_share) + 1 for item_id, line in lines.items()},
        {item_id: {q: len(data) for q, data in thumb.webp.items()} for item_id, thumb in thumbnails.items()},
        size_drop_order(folders),
        fixed,
        ASSETS_BUDGET - BUDGET_MARGIN,
    )
    kept = sorted(set(items) - set(plan.dropped))

    _write_images(out_dir / "images", {item_id: thumbnails[item_id].webp[plan.quality] for item_id in kept})
    catalog = gzip.compress(b"".join(lines[item_id] for item_id in kept), compresslevel=9, mtime=0)
    (out_dir / DEMO_ROWS).write_bytes(catalog)
    (out_dir / "catalog.jsonl").unlink(missing_ok=True)  # the uncompressed file of older builds
    for path, data in _text_files(out_dir, plan.quality).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    for item_id in kept:
        attributes = items[item_id]["attributes"]
        report.per_set[attributes["set"]] += 1
        report.per_category[attributes["category"]] += 1
        report.per_style[attributes["style"]] += 1
    report.items = len(kept)
    report.dropped_for_size = len(plan.dropped)
    report.webp_quality = plan.quality
    report.image_bytes = sum(len(thumbnails[item_id].webp[plan.quality]) for item_id in kept)
    report.catalog_bytes = len(catalog)
    report.assets_bytes = disk_bytes(out_dir.parent)
    report.within_budget = report.assets_bytes <= ASSETS_BUDGET and report.items >= MIN_ITEMS
    report.seconds = time.monotonic() - started
    return report


def main(out: Path, cache: Path) -> int:
    """Build the demo catalog into `out` (assets/demo/), print a summary; 0 when it fits the budget."""
    report = build_demo(out, cache)
    print(report.summary())
    return 0 if report.within_budget else 1

