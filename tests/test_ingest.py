from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from crs.catalog.ingest import IngestOptions, ingest
from crs.catalog.records import IngestError
from crs.catalog.schema import SchemaError
from crs.cli import main as crs_main
from crs.errors import UserError
from crs.store import Store
from crs.store.models import Attribute, Catalog, Item, ItemValue

FIXTURES = Path(__file__).parent / "fixtures" / "catalog"
# Every test here runs on SQLite and on PostgreSQL (the `store` fixture follows store_url).
pytestmark = pytest.mark.usefixtures("store_url")


def dump(store: Store) -> dict[str, list[tuple]]:
    """Every row of every catalog table, for 'the store is exactly as it was' checks."""
    with store.engine.connect() as conn:
        return {t: list(conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))) for t in
                ("catalogs", "attributes", "items", "item_values")}


def values_of(store: Store, external_id: str) -> dict[str, list]:
    with store.session() as session:
        rows = session.execute(
            select(Attribute.name, ItemValue.value, ItemValue.number).join(ItemValue.__table__, ItemValue.attribute_id == Attribute.id)
            .join(Item, Item.id == ItemValue.item_id).where(Item.external_id == external_id)).all()
    out: dict[str, list] = {}
    for name, value, number in rows:
        out.setdefault(name, []).append(value if number is None else number)
    return {k: sorted(v) for k, v in out.items()}


def write_lines(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


# --- JSONL -----------------------------------------------------------------------------------

def test_jsonl_ingest_reads_items_schema_and_images(store: Store, catalog_dir: Path) -> None:
    report = ingest(store, catalog_dir / "items.jsonl")
    assert (report.catalog, report.added, report.unchanged) == ("tiny", 4, 0)
    with store.session() as session:
        catalog = session.scalar(select(Catalog).where(Catalog.name == "tiny"))
        kinds = {a.name: a.kind for a in session.scalars(select(Attribute).where(Attribute.catalog_id == catalog.id))}
        apple = session.scalar(select(Item).where(Item.external_id == "apple"))
        size = session.scalar(select(Attribute).where(Attribute.name == "size"))
    assert catalog.title == "A tiny test shop"
    assert kinds == {"category": "categorical", "colour": "tags", "size": "categorical", "price": "numeric", "tags": "tags"}
    assert size.value_order == ["small", "medium", "large"]
    assert apple.title == "Red apple sticker" and apple.license == "CC0"
    assert apple.image_file == "images/red-apple.png" and len(apple.image_sha1) == 40
    assert values_of(store, "apple") == {"category": ["food"], "colour": ["red"], "price": [1.5], "size": ["small"],
                                         "tags": ["apple", "fruit"]}
    assert values_of(store, "sun")["colour"] == ["yellow"]  # a lone string in a tags attribute is one tag


def test_reingest_is_idempotent(store: Store, catalog_dir: Path) -> None:
    ingest(store, catalog_dir / "items.jsonl")
    before = dump(store)
    report = ingest(store, catalog_dir / "items.jsonl")
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 0, 4, 0)
    after = dump(store)
    assert after["items"] == before["items"] and after["item_values"] == before["item_values"]


def test_changed_rows_update_and_replace_removes_missing_items(store: Store, catalog_dir: Path) -> None:
    ingest(store, catalog_dir / "items.jsonl")
    rows = [json.loads(line) for line in (catalog_dir / "items.jsonl").read_text().splitlines()]
    rows[0]["attributes"]["colour"] = ["green"]
    write_lines(catalog_dir / "items.jsonl", rows[:3])
    report = ingest(store, catalog_dir / "items.jsonl", IngestOptions(replace=True))
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 1, 2, 1)
    assert values_of(store, "apple")["colour"] == ["green"]
    with store.session() as session:
        assert sorted(session.scalars(select(Item.external_id))) == ["apple", "leaf", "shirt"]
        assert session.scalar(select(ItemValue.id).where(ItemValue.item_id.not_in(select(Item.id)))) is None


def test_schema_is_inferred_without_a_schema_file(store: Store, catalog_dir: Path) -> None:
    (catalog_dir / "schema.json").unlink()
    report = ingest(store, catalog_dir / "items.jsonl", IngestOptions(catalog="inferred"))
    assert report.added == 4
    with store.session() as session:
        kinds = dict(session.execute(select(Attribute.name, Attribute.kind)).all())
    assert kinds == {"category": "categorical", "colour": "tags", "size": "categorical", "price": "numeric", "tags": "tags"}


def test_inference_reports_a_kind_clash(store: Store, catalog_dir: Path) -> None:
    (catalog_dir / "schema.json").unlink()
    rows = [{"id": "a", "title": "A", "attributes": {"price": 3}}, {"id": "b", "title": "B", "attributes": {"price": "cheap"}}]
    write_lines(catalog_dir / "x.jsonl", rows)
    with pytest.raises(IngestError, match=r"x.jsonl:2: field 'attributes.price': is categorical here but numeric on line 1"):
        ingest(store, catalog_dir / "x.jsonl")


# --- bad rows and bad images leave the store exactly as it was -------------------------------

BAD_ROWS = [
    ('{"id": "a", "title": "A"', "(line)", "not valid JSON"),
    ('{"id": "b"}', "title", "required"),
    ('{"id": "c", "title": "C", "attributes": {"price": "lots"}}', "attributes.price", "numeric attribute, got 'lots'"),
    ('{"id": "d", "title": "D", "attributes": {"flavour": "sweet"}}', "attributes.flavour", "not declared"),
    ('{"id": "e", "title": "E", "attributes": {"colour": ["mauve"]}}', "attributes.colour", "not in the declared vocabulary"),
    ('{"id": "apple", "title": "again"}', "id", "duplicate id 'apple' (first on line 1)"),
    ('{"id": "f", "title": "F", "image": "images/nope.png"}', "image", "image file not found"),
    ('{"id": "g", "title": "G", "colour": "red"}', "colour", "unknown field"),
]


@pytest.mark.parametrize("line, field, message", BAD_ROWS, ids=[b[1] + "-" + b[2][:12] for b in BAD_ROWS])
def test_a_bad_row_names_file_line_and_field_and_writes_nothing(store: Store, catalog_dir: Path, line: str,
                                                                field: str, message: str) -> None:
    ingest(store, catalog_dir / "items.jsonl")
    before = dump(store)
    path = catalog_dir / "items.jsonl"
    path.write_text(path.read_text() + line + "\n")
    with pytest.raises(IngestError) as caught:
        ingest(store, path)
    assert [(e.line, e.field) for e in caught.value.errors] == [(5, field)]
    assert message in str(caught.value) and f"{path}:5: field '{field}'" in str(caught.value)
    assert dump(store) == before


@pytest.mark.parametrize("content, message", [
    (b"this is not an image", "not an image (unrecognised format)"),
    (None, "truncated or corrupt image data"),
    (b"", "empty input, not an image"),
])
def test_a_bad_image_is_refused_and_writes_nothing(store: Store, catalog_dir: Path, content: bytes | None,
                                                   message: str) -> None:
    ingest(store, catalog_dir / "items.jsonl")
    before = dump(store)
    image = catalog_dir / "images" / "red-apple.png"
    data = image.read_bytes()
    image.write_bytes(content if content is not None else data[: len(data) // 2])
    with pytest.raises(IngestError) as caught:
        ingest(store, catalog_dir / "items.jsonl")
    assert [(e.line, e.field) for e in caught.value.errors] == [(1, "image")]
    assert message in str(caught.value) and "red-apple.png" in str(caught.value)
    assert dump(store) == before


def test_skip_invalid_ingests_good_rows_and_reports_bad(store: Store, catalog_dir: Path) -> None:
    path = catalog_dir / "items.jsonl"
    path.write_text(path.read_text() + '{"id": "bad"}\n')
    report = ingest(store, path, IngestOptions(skip_invalid=True))
    assert report.added == 4 and [(e.line, e.field) for e in report.skipped] == [(5, "title")]


def test_schema_file_errors_name_the_key(store: Store, catalog_dir: Path) -> None:
    schema = json.loads((catalog_dir / "schema.json").read_text())
    schema["attributes"][0]["kinds"] = "categorical"
    (catalog_dir / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(SchemaError, match=r"attributes\[0\]: unknown key\(s\) \['kinds'\]"):
        ingest(store, catalog_dir / "items.jsonl")


# --- CSV ---------------------------------------------------------------------------------------

def test_csv_ingest_types_columns_and_resolves_images_dir(store: Store) -> None:
    report = ingest(store, FIXTURES / "csv" / "items.csv", IngestOptions(format="csv", images_dir=FIXTURES))
    assert (report.catalog, report.added) == ("items", 3)
    with store.session() as session:
        kinds = dict(session.execute(select(Attribute.name, Attribute.kind)).all())
        shirt = session.scalar(select(Item).where(Item.external_id == "shirt"))
    assert kinds == {"colour": "tags", "main_category": "categorical", "price": "numeric"}
    assert shirt.title == "Blue shirt, cotton"
    assert values_of(store, "shirt") == {"colour": ["blue", "white"], "main_category": ["clothing"], "price": [20.0]}
    assert "price" not in values_of(store, "leaf")  # an empty cell is no value


def test_csv_missing_required_column(store: Store, tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("name,colour\nfoo,red\n")
    with pytest.raises(IngestError, match=r"x.csv:1: field '\(header\)': missing required column\(s\) \['id', 'title'\]"):
        ingest(store, tmp_path / "x.csv", IngestOptions(format="csv"))


# --- Amazon Reviews 2023 ------------------------------------------------------------------------

@pytest.fixture
def image_server() -> Iterator[str]:
    """Serves tests/fixtures/catalog/amazon over loopback HTTP, like a CDN would."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(FIXTURES / "amazon"))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def amazon_file(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "meta_Toys.jsonl"
    path.write_text((FIXTURES / "amazon" / "meta_Toys.jsonl").read_text().replace("{BASE_URL}", base_url))
    return path


@pytest.mark.network
def test_amazon2023_maps_fields_and_fetches_main_image(store: Store, tmp_path: Path, image_server: str) -> None:
    path = amazon_file(tmp_path, image_server)
    report = ingest(store, path, IngestOptions(format="amazon2023", catalog="toys"))
    assert report.added == 2
    with store.session() as session:
        dino = session.scalar(select(Item).where(Item.external_id == "B000DINO01"))
    assert dino.title == "Plush Dinosaur, Green"
    assert dino.image_ref.endswith("/dino.png")  # the MAIN variant, not the first listed
    assert dino.description == "A cuddly green dinosaur. Features: Soft fabric; 12 inches"
    assert Path(dino.image_file).is_file()
    assert values_of(store, "B000DINO01") == {
        "average_rating": [4.6], "brand": ["dinoworks"], "categories": ["stuffed animals & plush toys", "toys & games"],
        "colour": ["green"], "main_category": ["toys & games"], "material": ["polyester"], "price": [19.99],
        "rating_number": [1287.0], "store": ["dinoworks"]}
    blocks = values_of(store, "B000BLOCK2")
    assert "price" not in blocks and blocks["material"] == ["beech wood"]  # "None" price; details as a JSON string
    again = ingest(store, path, IngestOptions(format="amazon2023", catalog="toys"))
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)


def test_amazon2023_offline_images_fail_per_item_unless_not_fetched(store: Store, tmp_path: Path) -> None:
    path = amazon_file(tmp_path, "http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(IngestError) as caught:
        ingest(store, path, IngestOptions(format="amazon2023"))
    assert [(e.line, e.field) for e in caught.value.errors] == [(1, "image"), (2, "image")]
    assert "could not fetch image http://127.0.0.1:9/dino.png" in str(caught.value)
    assert dump(store)["items"] == []
    report = ingest(store, path, IngestOptions(format="amazon2023", fetch_images=False))
    assert report.added == 2
    with store.session() as session:
        assert session.scalar(select(Item.image_file).where(Item.external_id == "B000DINO01")) is None


def test_amazon2023_bad_price_names_the_field(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "meta.jsonl"
    path.write_text(json.dumps({"parent_asin": "X1", "title": "Thing", "price": "free!"}) + "\n")
    with pytest.raises(IngestError, match=r"meta.jsonl:1: field 'price': expected a number, got 'free!'"):
        ingest(store, path, IngestOptions(format="amazon2023", fetch_images=False))


# --- CLI -----------------------------------------------------------------------------------------

def test_cli_ingest_and_error_exit(store_url: str, catalog_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = store_url
    assert crs_main(["ingest", str(catalog_dir / "items.jsonl"), "--format", "jsonl", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 4
    assert crs_main(["catalog", "info", "--db", db, "--catalog", "tiny", "--json", "--verify-images"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["items"] == 4 and info["images"]["readable"] == 4 and info["images"]["coverage"] == 1.0
    colour = next(a for a in info["attributes"] if a["name"] == "colour")
    assert colour["distinct_values"] == 5 and colour["top_values"][0] == ["blue", 1]
    (catalog_dir / "images" / "blue-shirt.png").write_bytes(b"garbage")
    assert crs_main(["ingest", str(catalog_dir / "items.jsonl"), "--format", "jsonl", "--db", db]) == 1
    err = capsys.readouterr().err
    assert "error: 1 problem(s), nothing was written:" in err and "red-apple.png" not in err and "not an image" in err and "items.jsonl:2: field 'image'" in err
    assert crs_main(["catalog", "info", "--db", db, "--catalog", "nope"]) == 1
    assert "no catalog named 'nope'" in capsys.readouterr().err


# --- hostile files: devices, FIFOs, huge images, bad encodings, NULs, duplicate columns ----------

def ingest_cli(path: Path, db: str, fmt: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`crs ingest` in its own process, with a timeout: a hang (a FIFO) fails the test instead of
    hanging it, and a runaway read (/dev/zero) meets the process's own memory, not pytest's."""
    return subprocess.run([sys.executable, "-m", "crs.cli", "ingest", str(path), "--format", fmt, "--db", db,
                           "--catalog", "tiny", *extra], capture_output=True, text=True, timeout=60)


@pytest.fixture
def filled(store: Store, catalog_dir: Path) -> Store:
    """The store with the tiny catalog in it, so that 'unchanged' compares real rows."""
    ingest(store, catalog_dir / "items.jsonl")
    return store


@pytest.mark.parametrize("make, message", [
    (lambda tmp: Path("/dev/zero"), "/dev/zero: not a regular file (it is a character device)"),
    (lambda tmp: (os.mkfifo(tmp / "pipe.png"), tmp / "pipe.png")[1], "pipe.png: not a regular file (it is a FIFO"),
    (lambda tmp: tmp, "not a regular file (it is a folder)"),
], ids=["dev-zero", "fifo", "folder"])
def test_an_image_that_is_not_a_regular_file_is_refused_without_reading_it(
        filled: Store, catalog_dir: Path, tmp_path: Path, make, message: str) -> None:
    """Replays: /dev/zero as an image ran to 2.9 GB and a MemoryError; a FIFO hung forever."""
    image = make(tmp_path)
    rows = [json.loads(line) for line in (catalog_dir / "items.jsonl").read_text().splitlines()]
    rows[1]["image"] = str(image)
    write_lines(catalog_dir / "items.jsonl", rows)
    before = dump(filled)
    done = ingest_cli(catalog_dir / "items.jsonl", filled.url, "jsonl")
    assert done.returncode == 1, done.stderr
    assert f"items.jsonl:2: field 'image': {image}" in done.stderr and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "nothing was written" in done.stderr
    assert dump(filled) == before


def test_an_image_over_the_size_limit_is_refused(filled: Store, catalog_dir: Path) -> None:
    big = catalog_dir / "images" / "big.png"
    with big.open("wb") as handle:  # sparse: 64 MiB on paper, nothing on disk
        handle.truncate(64 << 20)
    rows = [json.loads(line) for line in (catalog_dir / "items.jsonl").read_text().splitlines()]
    rows[0]["image"] = "images/big.png"
    write_lines(catalog_dir / "items.jsonl", rows)
    before = dump(filled)
    with pytest.raises(IngestError, match=r"items.jsonl:1: field 'image': .*big.png: too large: more than the "
                                          r"limit of 25.0 MiB \(26,214,400 bytes\) per image"):
        ingest(filled, catalog_dir / "items.jsonl")
    assert dump(filled) == before


def test_read_image_file_reads_at_most_the_limit_plus_one_byte(tmp_path: Path) -> None:
    from crs.catalog.images import ImageProblem, read_image_file

    path = tmp_path / "ten.bin"
    path.write_bytes(b"x" * 10)
    assert read_image_file(path, max_bytes=10) == b"x" * 10
    with pytest.raises(ImageProblem, match="too large: more than the limit of 9 bytes"):
        read_image_file(path, max_bytes=9)


CSV_HEADER = "id,title,category,colour,size,price\n"


@pytest.mark.parametrize("data, message", [
    ((CSV_HEADER.rstrip("\n") + ",colour\n" + "pear,Green pear,food,green,small,1,red\n").encode(),
     "items.csv:1: field '(header)': duplicate column 'colour': columns 4 and 7; each column may appear once"),
    ("id,title,Colour,colour\npear,Green pear,green,red\n".encode(),
     "duplicate column 'colour' (written 'Colour' and 'colour'): columns 3 and 4"),
    ((CSV_HEADER + "pear,Green\x00pear,food,green,small,1\n").encode(),
     "items.csv: line 2: contains a NUL byte (0x00), so it is not UTF-8 text (a binary file, or UTF-16?): "
     "save it as UTF-8"),
    ((CSV_HEADER + "pear,Green pear,food,green,small,1\ncafe,Caf\u00e9 sign,food,red,small,2\n").encode("latin-1"),
     "items.csv: not UTF-8 text (byte 0xe9 at line 3): save it as UTF-8"),
    ((CSV_HEADER + "pear,Green pear,food,green,small,1\n").encode("utf-16"),
     "items.csv: not UTF-8 text (it is UTF-16: it starts with a UTF-16 byte-order mark): save it as UTF-8"),
    ((CSV_HEADER + "pear,Green pear,food,green,small,1\n").encode("utf-16-le"),  # no byte-order mark
     "items.csv: line 1: contains a NUL byte (0x00)"),
], ids=["duplicate-column", "duplicate-column-by-case", "nul", "latin-1", "utf-16", "utf-16-no-bom"])
def test_csv_that_is_not_clean_utf8_text_with_unique_columns_is_refused(
        filled: Store, tmp_path: Path, data: bytes, message: str) -> None:
    """Replays: `style,style` kept the last cell, NULs reached titles, Latin-1 and UTF-16 files
    were refused "after line 0"."""
    path = tmp_path / "items.csv"
    path.write_bytes(data)
    before = dump(filled)
    done = ingest_cli(path, filled.url, "csv")
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "after line 0" not in done.stderr
    assert dump(filled) == before


@pytest.mark.parametrize("data, message", [
    (b'{"id": "pear", "title": "Green\\u0000pear"}\n', "items.jsonl:1: field 'title': contains a NUL character"),
    (b'{"id": "pear", "title": "Pear", "attributes": {"category": ["a\\u0000"]}}\n',
     "items.jsonl:1: field 'attributes': contains a NUL character"),
    (b'{"id": "pear", "title": "Green\x00pear"}\n', "items.jsonl: line 1: contains a NUL byte (0x00)"),
    ('{"id": "pear", "title": "Pear"}\n{"id": "cafe", "title": "Caf\u00e9"}\n'.encode("latin-1"),
     "items.jsonl: not UTF-8 text (byte 0xe9 at line 2): save it as UTF-8"),
    ('{"id": "pear", "title": "Pear"}\n'.encode("utf-16"), "it is UTF-16"),
], ids=["escaped-nul-title", "escaped-nul-value", "raw-nul", "latin-1", "utf-16"])
def test_jsonl_gets_the_same_nul_and_encoding_checks(filled: Store, tmp_path: Path, data: bytes,
                                                      message: str) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes(data)
    before = dump(filled)
    with pytest.raises(UserError) as raised:
        ingest(filled, path, IngestOptions(catalog="tiny"))
    assert message in str(raised.value)
    assert dump(filled) == before
