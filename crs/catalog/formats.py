"""Readers for catalog files: each turns its format into RawRows shaped like JSONL items.

A reader yields a RowError instead of a row it cannot read, and goes on, so one ingest reports
every bad row at once.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import UserError
from .records import RawRow, RowError, kind_of
from .schema import AttributeSpec, CatalogSchema, normalise_name



class CatalogFileError(UserError):
    """The catalog file itself cannot be read (missing, not UTF-8)."""


Reader = Callable[[Path], Iterator[RawRow | RowError]]
CSV_ITEM_COLUMNS = ("id", "title", "description", "image", "source", "license")
TAG_SEPARATOR = "|"


def read_jsonl(path: Path) -> Iterator[RawRow | RowError]:
    with _open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                yield RowError(str(path), number, "(line)", f"not valid JSON at column {exc.colno}: {exc.msg}")
                continue
            if not isinstance(data, dict):
                yield RowError(str(path), number, "(line)", f"expected a JSON object, got {type(data).__name__}")
                continue
            yield RawRow(str(path), number, data)


def read_csv(path: Path) -> Iterator[RawRow | RowError]:
    """CSV with item columns plus one column per attribute; '|' separates tags.

    Cells are typed here because CSV has no types: a column whose filled cells all parse as
    numbers is numeric, one that uses '|' anywhere is tags, anything else categorical.
    """
    with _open_text(path) as lines:
        reader = csv.DictReader(lines)
        if not reader.fieldnames:
            yield RowError(str(path), 1, "(header)", "empty file: expected a header row")
            return
        header = [normalise_name(name or "") for name in reader.fieldnames]
        duplicate = _duplicate_column(reader.fieldnames, header)
        if duplicate:  # DictReader would silently keep the last cell of the two
            yield RowError(str(path), 1, "(header)", duplicate)
            return
        missing = [c for c in ("id", "title") if c not in header]
        if missing:
            yield RowError(str(path), 1, "(header)", f"missing required column(s) {missing}; found {header}")
            return
        rows: list[tuple[int, dict[str, str]]] = []
        for cells in reader:
            extra = cells.pop(None, None)  # type: ignore[call-overload]
            if extra:
                yield RowError(str(path), reader.line_num, "(line)", f"{len(extra)} more cell(s) than header columns")
                continue
            rows.append((reader.line_num, {normalise_name(k): (v or "").strip() for k, v in cells.items()}))
    attribute_columns = [c for c in header if c not in CSV_ITEM_COLUMNS]
    kinds = {c: _csv_column_kind([cells.get(c, "") for _, cells in rows]) for c in attribute_columns}
    for line, cells in rows:
        data: dict[str, Any] = {c: cells.get(c, "") for c in CSV_ITEM_COLUMNS if c in header}
        data["attributes"] = {c: _csv_cell(cells.get(c, ""), kinds[c]) for c in attribute_columns if cells.get(c)}
        yield RawRow(str(path), line, data)


def _duplicate_column(names: Sequence[str], normalised: list[str]) -> str:
    """The problem with the first column that appears twice (after normalising names), or ''."""
    first: dict[str, int] = {}
    for position, name in enumerate(normalised, start=1):
        if name in first:
            spelled = {names[first[name] - 1], names[position - 1]}
            as_written = f" (written {' and '.join(repr(n) for n in sorted(spelled))})" if len(spelled) > 1 else ""
            what = f"duplicate column {name!r}{as_written}" if name else "two columns without a name"
            return f"{what}: columns {first[name]} and {position}; each column may appear once"
        first[name] = position
    return ""


def _csv_column_kind(cells: list[str]) -> str:
    filled = [c for c in cells if c]
    if any(TAG_SEPARATOR in c for c in filled):
        return "tags"
    if filled and all(_is_number(c) for c in filled):
        return "numeric"
    return "categorical"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_cell(cell: str, kind: str) -> Any:
    if kind == "tags":
        return [t.strip() for t in cell.split(TAG_SEPARATOR) if t.strip()]
    if kind == "numeric":
        return float(cell)
    return cell


def infer_schema(rows: list[RawRow], name: str = "") -> tuple[CatalogSchema, list[RowError]]:
    """Kinds from the values when no schema is declared: the first row that has an attribute
    fixes its kind; a string where tags were seen is one tag; other clashes are errors."""
    kinds: dict[str, tuple[str, int]] = {}
    errors: list[RowError] = []
    for row in rows:
        attributes = row.data.get("attributes")
        if not isinstance(attributes, dict):
            continue
        for key, value in attributes.items():
            kind = kind_of(value)
            if kind is None:
                if value is not None:
                    errors.append(RowError(row.file, row.line, f"attributes.{key}",
                                           f"a value must be a string, a list of strings or a number, got {value!r}"))
                continue
            seen = kinds.get(key)
            if seen is None:
                kinds[key] = (kind, row.line)
            elif seen[0] == "tags" and kind == "categorical":
                continue
            elif seen[0] == "categorical" and kind == "tags":
                kinds[key] = ("tags", seen[1])
            elif seen[0] != kind:
                errors.append(RowError(row.file, row.line, f"attributes.{key}",
                                       f"is {kind} here but {seen[0]} on line {seen[1]}; declare it in a schema file"))
    invalid = [k for k in kinds if normalise_name(k) != k]
    for key in invalid:
        errors.append(RowError(rows[0].file if rows else "", kinds[key][1], f"attributes.{key}",
                               f"attribute names are lower-case identifiers, e.g. {normalise_name(key)!r}"))
    specs = [AttributeSpec(k, kind) for k, (kind, _) in sorted(kinds.items()) if k not in invalid]  # type: ignore[arg-type]
    return CatalogSchema(name=name, attributes=specs), errors


def is_gzipped(path: Path) -> bool:
    """Catalog files may be gzip-compressed (`items.jsonl.gz`, `items.csv.gz`): shops export them
    that way, and the demo's ships so (a twelfth of the size in git)."""
    return path.suffix.lower() == ".gz"


def open_binary(path: Path) -> io.BufferedIOBase:
    """The file's bytes, decompressed when it is gzipped."""
    return gzip.open(path, "rb") if is_gzipped(path) else path.open("rb")  # type: ignore[return-value]


def catalog_bytes(path: Path) -> bytes:
    """The whole (decompressed) content: what a catalog's content hash is taken over, so a file
    and its gzipped copy are the same catalog."""
    with open_binary(path) as handle:
        try:
            return handle.read()
        except (OSError, EOFError, zlib.error) as exc:
            raise CatalogFileError(f"{path}: not a readable gzip file ({exc})") from exc


def catalog_stem(path: Path) -> str:
    """`items` for items.jsonl and items.jsonl.gz alike (the default catalog name)."""
    return Path(path.stem).stem if is_gzipped(path) else path.stem


class _open_text:
    """Opens a text file with a clear error for missing, non-UTF-8 or binary files."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self):  # type: ignore[no-untyped-def]
        try:
            raw = open_binary(self.path)
        except OSError as exc:
            raise CatalogFileError(f"{self.path}: cannot open catalog file: {exc.strerror}") from exc
        self.handle = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        return _gzip_checked(_checked_lines(self.handle, self.path), self.path)

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


def _checked_lines(handle: Any, path: Path) -> Iterator[str]:
    number = 0
    try:
        for number, line in enumerate(handle, start=1):  # noqa: B007
            if "\0" in line:
                # A NUL byte is never text: a binary file, or UTF-16 without its byte-order mark.
                # Left in, a CSV cell keeps it and it ends up in a title.
                raise CatalogFileError(f"{path}: line {number}: contains a NUL byte (0x00), so it is not UTF-8 "
                                       "text (a binary file, or UTF-16?): save it as UTF-8")
            yield line
    except UnicodeDecodeError as exc:
        # The decoder reads ahead in blocks, so `number` lags behind the bad byte (it said
        # "after line 0"): find the byte and its line in the raw file instead.
        problem = _encoding_problem(path) or f"after line {number}: not UTF-8 text ({exc.reason})"
        raise CatalogFileError(f"{path}: {problem}") from exc


def _gzip_checked(lines: Iterator[str], path: Path) -> Iterator[str]:
    # A cut-off or corrupt .gz fails part-way through reading: say so, never a raw zlib error.
    try:
        yield from lines
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise CatalogFileError(f"{path}: not a readable gzip file ({exc})") from exc


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _encoding_problem(path: Path) -> str:
    """Why ``path`` is not UTF-8, with the first bad byte and its line; '' if it is UTF-8 after all."""
    with open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):  # split on b"\n": never inside a UTF-8 sequence
            if number == 1 and raw.startswith(_UTF16_BOMS):
                return "not UTF-8 text (it is UTF-16: it starts with a UTF-16 byte-order mark): save it as UTF-8"
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {number}): save it as UTF-8"
    return ""
