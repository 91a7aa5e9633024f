"""One table's documents from a JSONL file, a JSON array or a CSV file, with line numbers.

JSONL and JSON arrays use the exported-JSON encoding (as snapshot lines do). CSV cells are
read by the table's validator where it names a simple type (string, number, int64,
boolean, id) and otherwise as Convex reads them: a number when one parses, else a string.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from reactive_store.snapshot.zip_format import (
    SnapshotError,
    decode_document,
    decode_line,
)
from reactive_store.validators import ObjectValidator, OptionalValidator, Validator

FORMATS = {".jsonl": "jsonLines", ".json": "jsonArray", ".csv": "csv", ".zip": "zip"}
MAX_JSON_ARRAY_BYTES = 256 << 20  # a JSON array is parsed whole; JSONL streams

Lines = Iterator[tuple[int, dict[str, Any]]]


def format_of(path: Path, given: str | None = None) -> str:
    """The import format: `given`, else from the file's extension (as `npx convex import`)."""
    if given is not None:
        if given not in FORMATS.values():
            raise SnapshotError(f"unknown format {given!r}; use one of "
                                f"{', '.join(sorted(FORMATS.values()))}")
        return given
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise SnapshotError(f"cannot tell the format of {path.name} from its extension; "
                            "use .zip, .jsonl, .json or .csv")
    return found


def read_jsonl(path: Path, label: str) -> Lines:
    with path.open("rb") as raw:
        for lineno, line in enumerate(raw, 1):
            if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if line.strip():
                yield lineno, decode_line(line, label, lineno)


def read_json_array(path: Path, label: str) -> Lines:
    if path.stat().st_size > MAX_JSON_ARRAY_BYTES:
        raise SnapshotError(f"{label} is larger than {MAX_JSON_ARRAY_BYTES >> 20} MiB; "
                            "a JSON array is read whole, so convert it to JSONL")
    try:
        data = orjson.loads(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"{label} is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise SnapshotError(f"{label} is not a JSON array")
    for index, item in enumerate(data, 1):
        yield index, decode_document(item, f"{label}: element {index}")


def read_csv(path: Path, validator: Validator, label: str) -> Lines:
    """Rows as documents; line numbers count the header as line 1."""
    fields = validator.fields if isinstance(validator, ObjectValidator) else {}
    with path.open(newline="", encoding="utf-8-sig") as text:
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            raise SnapshotError(f"{label}: the CSV file is empty (it needs a header row)")
        names = [name.strip(" ") for name in header]
        for row in reader:
            lineno = reader.line_num
            if not row:
                continue
            if len(row) != len(names):
                raise SnapshotError(f"{label}: line {lineno} has {len(row)} values but "
                                    f"the header names {len(names)} columns")
            yield lineno, {name: _cell(cell, fields.get(name), label, lineno, name)
                           for name, cell in zip(names, row, strict=True)}


def _cell(cell: str, validator: Validator | None, where: str, lineno: int, column: str) -> Any:
    while isinstance(validator, OptionalValidator):
        validator = validator.inner
    kind = validator.to_json().get("type") if validator is not None else None
    parse = _PARSERS.get(kind or "", _convex_cell)
    try:
        return parse(cell)
    except ValueError:
        raise SnapshotError(f"{where}: line {lineno}, column {column!r}: {cell!r} is not "
                            f"{_WHAT.get(kind or '', 'a value')}") from None


def _convex_cell(cell: str) -> Any:
    try:
        return float(cell)
    except ValueError:
        return cell


def _boolean(cell: str) -> bool:
    lowered = cell.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(cell)
    return lowered == "true"


_PARSERS: dict[str, Callable[[str], Any]] = {
    "string": str, "id": str, "number": float, "bigint": int, "boolean": _boolean}
_WHAT = {"number": "a number", "bigint": "an integer (int64)", "boolean": "true or false"}

