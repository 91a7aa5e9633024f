"""Our export checked against what Convex's snapshot import checks of a ZIP (read from
get-convex/convex-backend crates/application/src/snapshot_import: parse.rs, mod.rs,
import_file_storage.rs; crates/database/src/bootstrap_model/import_facing.rs, table.rs).

Ids are decoded with the tests' own codec (tests/id_formats.py, written from Convex's id
specification), never with reactive_store.ids: if ids.py drifted from Convex's format these
tests would fail. Each rule names the Convex check it stands for.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import uuid
import zipfile
from pathlib import Path
from typing import Any

import orjson

from reactive_store.engine.engine import Engine
from reactive_store.snapshot.exporter import export_snapshot
from tests.id_formats import decode_convex_id

# parse.rs: entry name patterns (an optional prefix is a component path; we write none).
DOCUMENTS = re.compile(r"^([^/]+)/documents\.jsonl$")
GENERATED = re.compile(r"^([^/]+)/generated_schema\.jsonl$")
STORAGE_FILE = re.compile(r"^_storage/([^/.]+)(?:\.[^/]+)?$")
# A Convex table name: an identifier, at most 64 characters.
TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
CONVEX_STORAGE_NUMBER = 540  # Convex's default number of its `_storage` (virtual) table
FLOAT_LITERAL = re.compile(rb'"_creationTime":(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)')


class Snapshot:
    """A snapshot ZIP's entries, classified as Convex's parser classifies them."""

    def __init__(self, path: Path) -> None:
        with zipfile.ZipFile(path) as z:
            self.entries = {name: z.read(name) for name in z.namelist()}
        self.documents: dict[str, list[bytes]] = {}
        self.generated: dict[str, bytes] = {}
        self.files: dict[str, bytes] = {}
        for name, data in self.entries.items():
            if found := DOCUMENTS.match(name):
                self.documents[found.group(1)] = [line for line in data.split(b"\n") if line]
            elif found := GENERATED.match(name):
                self.generated[found.group(1)] = data
            elif (found := STORAGE_FILE.match(name)) and found.group(1) != "documents":
                self.files[found.group(1)] = data


async def library_with_everything(engine: Engine) -> None:
    ada = (await engine.run_mutation("library:add_author", {"name": "Ada"})).value
    grace = (await engine.run_mutation("library:add_author", {"name": "Grace"})).value
    for i, author in enumerate([ada, grace, ada]):
        await engine.run_mutation("library:add_book",
                                  {"title": f"B{i}", "author": author, "copies": 2**40 + i})
    file_id = (await engine.run_action("library:store_text", {"text": "hello"})).value
    await engine.run_mutation("library:add_book_with_cover",
                              {"title": "Covered", "author": grace, "cover": file_id})


async def exported(engine: Engine, tmp_path: Path) -> Snapshot:
    await library_with_everything(engine)
    await export_snapshot(engine, tmp_path / "s.zip", include_storage=True)
    return Snapshot(tmp_path / "s.zip")


def tables_table(snapshot: Snapshot) -> dict[str, int]:
    """mod.rs import_tables_table: each line an object with a valid `name` and an `id`
    that is a table number (a u32, not 0); prepare_table_for_import refuses a system name
    (`_storage` included: only `_file_storage` would pass); table.rs check_can_activate
    refuses two tables with one number."""
    numbers: dict[str, int] = {}
    for line in snapshot.documents["_tables"]:
        entry = orjson.loads(line)
        assert isinstance(entry, dict) and isinstance(entry["name"], str)
        assert TABLE_NAME.match(entry["name"]), entry
        number = entry["id"]
        assert isinstance(number, int) and 0 < number < 2**32, entry
        numbers[entry["name"]] = number
    assert len(set(numbers.values())) == len(numbers)
    return numbers


async def test_entries_are_what_convex_reads(library: Engine, tmp_path: Path) -> None:
    """parse.rs: `<table>/documents.jsonl` with a valid table name (system tables other than
    `_tables` and `_storage` are skipped, so nothing of ours may depend on one), one
    `generated_schema.jsonl` per table whose first line is "uniform" (exported JSON)."""
    snapshot = await exported(library, tmp_path)
    assert set(snapshot.documents) == {"_tables", "_storage", "authors", "books"}
    for table in ("authors", "books"):
        assert TABLE_NAME.match(table)
        assert orjson.loads(snapshot.generated[table].split(b"\n")[0]) == "uniform"
    assert set(tables_table(snapshot)) == {"authors", "books"}


async def test_document_ids_decode_to_their_tables_number(library: Engine,
                                                          tmp_path: Path) -> None:
    """import_facing.rs insert: `_id` must decode as a Convex id (InvalidId) whose table
    number is the table's, as `_tables` gives it (ImportConflict); mod.rs
    insert_import_objects: no `_id` twice in a table (DuplicateId)."""
    snapshot = await exported(library, tmp_path)
    numbers = tables_table(snapshot)
    assert all(n > 10000 for n in numbers.values())  # never a Convex system number
    for table, number in numbers.items():
        ids = [orjson.loads(line)["_id"] for line in snapshot.documents[table]]
        assert ids and len(set(ids)) == len(ids)
        for doc_id in ids:
            assert decode_convex_id(doc_id)[0] == number, (table, doc_id)


async def test_documents_fields_and_creation_times(library: Engine, tmp_path: Path) -> None:
    """import_facing.rs: `_creationTime` is used only when it is a Float64 (exported JSON:
    a number with '.' or an exponent; else Convex silently makes a new one) and must be a
    finite, non-negative CreationTime; the only system fields are `_id` and
    `_creationTime`; schema enforcement then checks `v.id` fields against the table numbers
    of the import: each reference decodes to its target table's number."""
    snapshot = await exported(library, tmp_path)
    numbers = tables_table(snapshot)
    storage_number = decode_convex_id(next(iter(snapshot.files)))[0]
    for table in numbers:
        for line in snapshot.documents[table]:
            literal = FLOAT_LITERAL.search(line)
            assert literal and re.search(rb"[.eE]", literal.group(1)), line
            doc: dict[str, Any] = orjson.loads(line)
            created = doc["_creationTime"]
            assert isinstance(created, float) and math.isfinite(created) and created >= 0
            assert {k for k in doc if k.startswith(("_", "$"))} == {"_id", "_creationTime"}
            if table == "books":
                assert decode_convex_id(doc["author"])[0] == numbers["authors"]
                assert isinstance(doc["copies"], int)  # int64: a plain JSON integer
                if "cover" in doc:
                    assert decode_convex_id(doc["cover"])[0] == storage_number


async def test_storage_metadata_and_files(library: Engine, tmp_path: Path) -> None:
    """import_file_storage.rs: each `_storage/documents.jsonl` line parses as
    FileStorageZipMetadata (`_id` string, `_creationTime` f64, `sha256` base64 of the
    digest, `size` an i64, `contentType` string, `internalId` a UUID), every `_id` has the
    `_storage` table's number (one table, created with the first id's number); the upload
    checks the bytes against `sha256`; parse.rs: a `_storage/<id>[.ext]` entry's id must
    decode (InvalidStorageId). The number is Convex's own for `_storage`, so `v.id
    ("_storage")` references stay valid in a Convex deployment."""
    snapshot = await exported(library, tmp_path)
    metas = [orjson.loads(line) for line in snapshot.documents["_storage"]]
    assert len(metas) == 1 and set(snapshot.files) == {m["_id"] for m in metas}
    for meta in metas:
        assert decode_convex_id(meta["_id"])[0] == CONVEX_STORAGE_NUMBER
        data = snapshot.files[meta["_id"]]
        assert base64.b64decode(meta["sha256"]) == hashlib.sha256(data).digest()
        assert isinstance(meta["size"], int) and meta["size"] == len(data) == 5
        assert meta["contentType"] == "text/plain"
        assert isinstance(meta["_creationTime"], float) and meta["_creationTime"] >= 0
        assert str(uuid.UUID(meta["internalId"])) == meta["internalId"]
    assert "_storage" not in tables_table(snapshot)
