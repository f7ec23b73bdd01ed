from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from crs.catalog.ingest import IngestOptions, ingest
from crs.catalog.records import IngestError
from crs.catalog.schema import SchemaError
from crs.cli import main as crs_main
from crs.store import Store
from crs.store.models import Attribute, Catalog, Item, ItemValue

FIXTURES = Path(__file__).parent / "fixtures" / "catalog"


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

def test_cli_ingest_and_error_exit(tmp_path: Path, catalog_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
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
