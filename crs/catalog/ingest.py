"""`crs ingest`: read a catalog file, validate every row and image, then write it in one transaction.

Either the whole file lands or the store is left exactly as it was. Re-ingesting the same
file changes nothing (rows are matched by id and compared by content hash).

Progress goes to the ``progress`` callback as :class:`~retrieval.progress.BuildProgress`
values ("reading the catalog file", "checking pictures", "writing items"); ``str()`` of one is
a line to print.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, insert, select, update

from retrieval.progress import ProgressClock, ProgressFn

from ..config import image_cache_dir
from ..errors import UserError
from ..store import Store
from ..store.models import Attribute, Catalog, Item, ItemValue
from .amazon2023 import SCHEMA as AMAZON_SCHEMA
from .amazon2023 import read_amazon2023
from .formats import Reader, catalog_bytes, catalog_stem, infer_schema, read_csv, read_jsonl
from .images import ImageFetcher, ImageProblem, ResolvedImage, is_url, read_image_file, resolve_image
from .records import IngestError, ItemRecord, RawRow, RowError, parse_row
from .schema import CatalogSchema, load_schema

READERS: dict[str, Reader] = {"jsonl": read_jsonl, "csv": read_csv, "amazon2023": read_amazon2023}
IMAGE_WORKERS = 8
REPORT_EVERY = 500  # items between two progress reports of a stage


@dataclass
class IngestOptions:
    format: str = "jsonl"
    catalog: str | None = None  # default: the schema's name, else the file's stem
    schema_path: Path | None = None  # default: schema.json beside the file, if any
    images_dir: Path | None = None  # where relative image paths resolve; default: the file's folder
    fetch_images: bool = True  # fetch image URLs into the cache (False: keep URLs as references)
    replace: bool = False  # remove the catalog's items that are not in this file
    skip_invalid: bool = False  # ingest the good rows and report the bad ones instead of refusing all
    # sha1s of picture files known to decode (the demo's shipped vectors were encoded from them):
    # a local file with one of these hashes is not decoded again. Empty: every picture is decoded.
    trusted_images: frozenset[str] = frozenset()


@dataclass
class IngestReport:
    catalog: str
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[RowError] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {"catalog": self.catalog, "rows": self.rows, "added": self.added, "updated": self.updated,
                "unchanged": self.unchanged, "removed": self.removed, "skipped": [str(e) for e in self.skipped],
                "seconds": round(self.seconds, 2)}


def ingest(store: Store, path: Path, options: IngestOptions | None = None,
           progress: ProgressFn | None = None) -> IngestReport:
    options = options or IngestOptions()
    started = time.perf_counter()
    if options.format not in READERS:
        raise UserError(f"unknown format {options.format!r}; choose one of {sorted(READERS)}")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such catalog file")
    schema, schema_bytes = _schema_for(path, options)
    reading = ProgressClock(progress, "reading the catalog file", 0)
    reading.report(0)
    rows, errors = _split(READERS[options.format](path))
    if schema is None:
        schema, inference_errors = infer_schema(rows)
        errors += inference_errors
    name = options.catalog or schema.name or catalog_stem(path)
    records, row_errors = _records(rows, schema)
    errors += row_errors
    reading.total = len(rows)
    reading.report(len(rows))
    root = (options.images_dir or path.parent).resolve()
    images, image_errors = _check_images(records, root, options, progress)
    errors += image_errors
    if errors and not options.skip_invalid:
        raise IngestError(errors, "Fix these rows, or pass --skip-invalid to ingest only the good ones.")
    bad_lines = {(e.file, e.line) for e in errors}
    good = [r for r in records if (r.file, r.line) not in bad_lines]
    content_hash = catalog_content_hash(path, schema_bytes)
    report = IngestReport(catalog=name, rows=len(rows), skipped=errors)
    with store.transaction() as session:
        catalog = session.scalar(select(Catalog).where(Catalog.name == name))
        if catalog is None:
            catalog = Catalog(name=name)
            session.add(catalog)
        catalog.title = schema.title or catalog.title or name
        catalog.image_root = str(root)
        catalog.content_hash = content_hash
        catalog.updated_at = datetime.utcnow()
        session.flush()
        attribute_ids = _sync_attributes(session, catalog, schema)
        writing = ProgressClock(progress, "writing items", len(good))
        writing.report(0)
        _write_items(session, catalog.id, good, images, attribute_ids, _schema_salt(schema), options.replace, report)
        writing.report(len(good))
    report.seconds = time.perf_counter() - started
    return report


def catalog_content_hash(path: Path, schema_bytes: bytes) -> str:
    return hashlib.sha256(catalog_bytes(path) + schema_bytes).hexdigest()


def _schema_for(path: Path, options: IngestOptions) -> tuple[CatalogSchema | None, bytes]:
    if options.schema_path is not None:
        return load_schema(options.schema_path), options.schema_path.read_bytes()
    if options.format == "amazon2023":
        return AMAZON_SCHEMA, b"amazon2023"
    beside = path.parent / "schema.json"
    if beside.is_file():
        return load_schema(beside), beside.read_bytes()
    return None, b""


def _split(stream: Iterator[RawRow | RowError]) -> tuple[list[RawRow], list[RowError]]:
    rows: list[RawRow] = []
    errors: list[RowError] = []
    for entry in stream:
        (errors if isinstance(entry, RowError) else rows).append(entry)  # type: ignore[arg-type]
    return rows, errors


def _records(rows: list[RawRow], schema: CatalogSchema) -> tuple[list[ItemRecord], list[RowError]]:
    records: list[ItemRecord] = []
    errors: list[RowError] = []
    first_line: dict[str, int] = {}
    for row in rows:
        record, row_errors = parse_row(row, schema)
        errors += row_errors
        if record is None:
            continue
        if record.external_id in first_line:
            errors.append(RowError(row.file, row.line, "id",
                                   f"duplicate id {record.external_id!r} (first on line {first_line[record.external_id]})"))
            continue
        first_line[record.external_id] = row.line
        records.append(record)
    return records, errors


def _check_images(records: list[ItemRecord], root: Path, options: IngestOptions, progress: ProgressFn | None = None
                  ) -> tuple[dict[str, ResolvedImage], list[RowError]]:
    fetcher = ImageFetcher(image_cache_dir()) if options.fetch_images else None
    clock = ProgressClock(progress, "checking pictures", len(records))
    clock.report(0)

    def check(record: ItemRecord) -> ResolvedImage | RowError:
        try:
            return resolve_image(record.image_ref, root, fetcher)
        except ImageProblem as exc:
            return RowError(record.file, record.line, "image", str(exc))

    # Known pictures first, here: hashing is ~50x faster than decoding, and 12k tasks handed
    # to a thread pool cost more (~2 s) than hashing them in this thread.
    results: dict[int, ResolvedImage | RowError] = {}
    if options.trusted_images:
        for position, record in enumerate(records):
            known = _trusted_image(record.image_ref, root, options.trusted_images)
            if known is not None:
                results[position] = known
    rest = [position for position in range(len(records)) if position not in results]
    clock.report(len(results))
    # Threads: decoding and fetching release the GIL, and URL fetches wait on the network.
    with ThreadPoolExecutor(IMAGE_WORKERS) as pool:
        for done, (position, result) in enumerate(zip(rest, pool.map(check, [records[i] for i in rest])), 1):
            results[position] = result
            if done % REPORT_EVERY == 0:
                clock.report(len(results))
    clock.report(len(records))
    images: dict[str, ResolvedImage] = {}
    errors: list[RowError] = []
    for position, record in enumerate(records):
        result = results[position]
        if isinstance(result, RowError):
            errors.append(result)
        else:
            images[record.external_id] = result
    return images, errors


def _trusted_image(ref: str, root: Path, trusted: frozenset[str]) -> ResolvedImage | None:
    """The local picture ``ref`` resolved without decoding, when its bytes hash to a trusted sha1;
    None when it must be checked in full (a URL, an unknown or unreadable file: the full check
    then says what is wrong)."""
    if not ref or is_url(ref):
        return None
    path = Path(ref).expanduser()
    try:
        sha1 = hashlib.sha1(read_image_file(path if path.is_absolute() else root / path)).hexdigest()
    except ImageProblem:
        return None
    if sha1 not in trusted:
        return None
    # Stored exactly as resolve_image stores it, so the row hash does not depend on the path taken.
    return ResolvedImage(ref if not path.is_absolute() else str(path), sha1)


def _schema_salt(schema: CatalogSchema) -> str:
    # Part of every row hash, so a schema change rewrites every item's values. Labels and display
    # names are left out: they change no value, and a new row hash would also void the catalog's
    # index (keyed by row hashes) for a change of wording.
    return json.dumps([{k: v for k, v in spec.items() if k not in ("label", "display")}
                       for spec in schema.to_json()["attributes"]], sort_keys=True)


def _sync_attributes(session, catalog: Catalog, schema: CatalogSchema) -> dict[str, int]:  # type: ignore[no-untyped-def]
    existing = {a.name: a for a in session.scalars(select(Attribute).where(Attribute.catalog_id == catalog.id))}
    for name, attribute in existing.items():
        if schema.get(name) is None:
            session.delete(attribute)
    for position, spec in enumerate(schema.attributes):
        attribute = existing.get(spec.name) or Attribute(catalog_id=catalog.id, name=spec.name)
        attribute.kind = spec.kind
        attribute.description = spec.description
        attribute.askable = spec.askable
        attribute.allowed_values = list(spec.values) if spec.values is not None else None
        attribute.value_order = list(spec.order) if spec.order is not None else None
        attribute.label = spec.label
        attribute.display = dict(spec.display) if spec.display is not None else None
        attribute.position = position
        session.add(attribute)
    session.flush()
    return {a.name: a.id for a in session.scalars(select(Attribute).where(Attribute.catalog_id == catalog.id))}


def _write_items(session, catalog_id: int, records: list[ItemRecord], images: dict[str, ResolvedImage],  # type: ignore[no-untyped-def]
                 attribute_ids: dict[str, int], salt: str, replace: bool, report: IngestReport) -> None:
    existing = {external_id: (item_id, row_hash) for item_id, external_id, row_hash in session.execute(
        select(Item.id, Item.external_id, Item.row_hash).where(Item.catalog_id == catalog_id))}
    new_rows, changed_rows, changed_ids = [], [], []
    value_owners: list[tuple[ItemRecord, int | None]] = []
    for record in records:
        image = images.get(record.external_id, ResolvedImage(None, None))
        row = {
            "catalog_id": catalog_id, "external_id": record.external_id, "title": record.title,
            "description": record.description, "image_ref": record.image_ref, "image_file": image.file,
            "image_sha1": image.sha1, "source": record.source, "license": record.license, "extra": record.extra,
            "row_hash": record.content_hash(salt + (image.sha1 or "")),
        }
        known = existing.get(record.external_id)
        if known is None:
            new_rows.append(row)
            value_owners.append((record, None))
        elif known[1] != row["row_hash"]:
            changed_rows.append({"id": known[0], **row})
            changed_ids.append(known[0])
            value_owners.append((record, known[0]))
        else:
            report.unchanged += 1
    if changed_rows:
        session.execute(update(Item), changed_rows)
        for chunk in _chunks(changed_ids):
            session.execute(delete(ItemValue).where(ItemValue.item_id.in_(chunk)))
    # Core inserts on the tables, not ORM bulk inserts: the ORM path took ~5 s for the demo's
    # 12k items and 147k values (a statement per few rows); Core batches them (~1 s).
    items = Item.__table__
    new_ids = iter(session.scalars(insert(items).returning(items.c.id, sort_by_parameter_order=True), new_rows).all()
                   if new_rows else [])
    values = []
    for record, item_id in value_owners:
        owner = item_id if item_id is not None else next(new_ids)
        for name, value in record.attributes.items():
            if isinstance(value, float):
                values.append({"item_id": owner, "attribute_id": attribute_ids[name], "value": None, "number": value})
            else:
                for text in [value] if isinstance(value, str) else value:
                    values.append({"item_id": owner, "attribute_id": attribute_ids[name], "value": text, "number": None})
    if values:
        session.execute(insert(ItemValue.__table__), values)
    if replace:
        keep = {r.external_id for r in records}
        gone = [item_id for external_id, (item_id, _) in existing.items() if external_id not in keep]
        for chunk in _chunks(gone):
            session.execute(delete(Item).where(Item.id.in_(chunk)))
        report.removed = len(gone)
    report.added, report.updated = len(new_rows), len(changed_rows)


def _chunks(ids: list[int], size: int = 500) -> Iterator[list[int]]:
    # Keeps IN (...) lists under SQLite's bound-parameter limit.
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def item_image_path(catalog: Catalog, item: Item) -> Path | None:
    """Where an item's image file is on disk, or None when it has no local image."""
    if not item.image_file:
        return None
    path = Path(item.image_file)
    return path if path.is_absolute() else Path(catalog.image_root) / path
