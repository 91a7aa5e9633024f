"""Convex's snapshot ZIP layout and its exported-JSON line format, without any I/O.

A snapshot holds `_tables/documents.jsonl` (`{"name", "id"}` per user table), per table
`<table>/documents.jsonl` (one document per line, `_id` and `_creationTime` included) and
`<table>/generated_schema.jsonl` (`"uniform"`: the lines use the lossless exported-JSON
encoding), and with file storage `_storage/documents.jsonl` (file metadata) plus one entry
`_storage/<id>[.ext]` holding each file's bytes.

Exported JSON (Convex's `ConvexExportJSON`): int64 is a plain JSON integer, float64 a number
with a '.' or an exponent (non-finite ones as `{"$float": base64}`), bytes `{"$bytes":
base64}`; everything else is plain JSON. An object whose first key starts with '$' is read
as Convex JSON (the wire encoding), so `{"$integer": ...}` is accepted too.
"""

from __future__ import annotations

import base64
import math
import mimetypes
import re
import struct
from typing import Any

import orjson

from reactive_store import values
from reactive_store.errors import BadRequest, ReactiveStoreError
from reactive_store.ids import convex_form
from reactive_store.types import Document, Value

TABLES = "_tables"
STORAGE = "_storage"
README = "README.md"
# Present when the export found legacy ids (a deployment made before Convex's id format)
# and wrote them in Convex's format (ids.convex_form); an import here turns those back
# (ids.legacy_form), so the ids users hold keep working. Convex ignores the entry.
LEGACY_IDS = "reactive-store-legacy-ids.json"
UNIFORM = "uniform"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
README_TEXT = (
    "# Snapshot export\n\nOne folder per table: `<table>/documents.jsonl` holds one document "
    "per line (Convex's exported-JSON encoding), `_tables/documents.jsonl` lists the tables "
    "and `_storage/` the stored files. Import it with `reactive-store import` or `npx convex "
    "import`.\n")

_DOCUMENTS = re.compile(r"^(?:.*/)?([^/]+)/documents\.jsonl$")
_GENERATED = re.compile(r"^(?:.*/)?([^/]+)/generated_schema\.jsonl$")
_STORAGE_FILE = re.compile(r"^(?:.*/)?_storage/([^/.]+)(?:\.[^/]+)?$")


class SnapshotError(ReactiveStoreError):
    """A snapshot or import file is malformed, or does not fit the app; nothing was written."""

    code = "ImportFailed"


def documents_path(table: str) -> str:
    return f"{table}/documents.jsonl"


def generated_schema_path(table: str) -> str:
    return f"{table}/generated_schema.jsonl"


def storage_file_path(storage_id: str, content_type: str | None) -> str:
    """`_storage/<id>` plus an extension guessed from the content type (for people only)."""
    extension = mimetypes.guess_extension(content_type or "") or ""
    return f"{STORAGE}/{storage_id}{extension}"


def table_of_documents(name: str) -> str | None:
    """The table a `.../<table>/documents.jsonl` entry holds (None for other entries)."""
    found = _DOCUMENTS.match(name)
    return found.group(1) if found else None


def table_of_generated_schema(name: str) -> str | None:
    found = _GENERATED.match(name)
    return found.group(1) if found else None


def storage_id_of_file(name: str) -> str | None:
    """The storage id a `_storage/<id>[.ext]` entry holds the bytes of."""
    found = _STORAGE_FILE.match(name)
    if found is None or found.group(1) == "documents":
        return None
    return found.group(1)


def with_convex_ids(value: Any) -> Any:
    """`value` with every legacy id in it in Convex's format (ids.convex_form)."""
    if isinstance(value, str):
        if len(value) < 31:  # a legacy id is 28 or 29 characters; a Convex id 31 to 37
            try:
                return convex_form(value)
            except ValueError:
                return value
        return value
    if isinstance(value, list):
        return [with_convex_ids(item) for item in value]
    if isinstance(value, dict):
        return {key: with_convex_ids(item) for key, item in value.items()}
    return value


def to_export_json(value: Value) -> Any:
    """A Python value in exported JSON (ready for orjson)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"$float": base64.b64encode(struct.pack("<d", value)).decode()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, list | tuple):
        return [to_export_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_export_json(item) for key, item in value.items()}
    raise TypeError(f"{values.type_name(value)} is not a Convex value")


def from_export_json(data: Any) -> Value:
    """Exported JSON -> a Python value; BadRequest on a malformed special object."""
    kind = type(data)
    if kind is int:
        return data if INT64_MIN <= data <= INT64_MAX else float(data)
    if kind is str or kind is bool or kind is float or data is None:
        return data
    if kind is list:
        return [from_export_json(item) for item in data]
    if kind is dict:
        if data and next(iter(data)).startswith("$"):
            return values.decode(data)
        return {key: from_export_json(item) for key, item in data.items()}
    raise BadRequest(f"{kind.__name__} is not a JSON value")


def encode_line(doc: Document) -> bytes:
    """One document as a line of `documents.jsonl`, newline included."""
    return orjson.dumps(to_export_json(doc)) + b"\n"


def decode_line(line: bytes, where: str, lineno: int) -> dict[str, Any]:
    """One line of a documents file as a document (system fields included); SnapshotError
    naming the file and line when it is not a JSON object in exported JSON."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"{where}: line {lineno} is not valid JSON: {exc}") from None
    return decode_document(data, f"{where}: line {lineno}")


def decode_document(data: Any, place: str) -> dict[str, Any]:
    """A parsed JSON value as a document in exported JSON; SnapshotError naming `place`."""
    if not isinstance(data, dict):
        raise SnapshotError(f"{place} is not a JSON object")
    try:
        decoded = from_export_json(data)
    except BadRequest as exc:
        raise SnapshotError(f"{place} is not a valid value: {exc.message}") from None
    assert isinstance(decoded, dict)
    return decoded


def is_uniform(first_line: bytes) -> bool:
    """Whether a `generated_schema.jsonl` says its table uses exported JSON (current
    Convex and us); older Convex exports wrote an inferred shape and lossy clean JSON."""
    try:
        return bool(orjson.loads(first_line) == UNIFORM)
    except orjson.JSONDecodeError:
        return False
