"""Import a snapshot or one table's file: validated against the schema, all in one transaction.

Three steps. First the ids: a document keeps its `_id` when the id is one of its target
table here (Convex's ids too, when its numbering matches ours); any other (another
deployment's table numbering, no id at all) gets a new id, and every string equal to an
old id is rewritten to the new one, so references stay valid; legacy ids our export wrote
in Convex's format turn back into themselves; a table file repeating an `_id` is refused
before anything is written. Then the files' bytes are stored (before the documents, as
uploads do; if the import fails they are deleted at once, else the sweep would). Last, one
SERIALIZABLE transaction through `Engine.transact` checks the mode, clears replaced tables,
and writes every document with its id and creation time through `DatabaseWriter.restore`,
so each is validated like a mutation's write and the commit reaches every subscriber. A
violation raises before COMMIT: nothing of the import is visible, ever.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reactive_store.engine.db import DatabaseWriter, SystemTableWriter
from reactive_store.engine.engine import Engine
from reactive_store.errors import ReactiveStoreError
from reactive_store.ids import legacy_form, new_id, table_number_of
from reactive_store.limits import Limits
from reactive_store.schema import BY_CREATION_TIME
from reactive_store.snapshot.sources import Source
from reactive_store.snapshot.zip_format import STORAGE, SnapshotError
from reactive_store.storage import Transaction
from reactive_store.storage.files import Blob

BATCH = 500  # documents checked for existing ids (append) per round trip
UNBOUNDED = 1 << 62
IMPORT_LIMITS = Limits(documents_scanned=UNBOUNDED, index_ranges_read=UNBOUNDED,
                       documents_written=UNBOUNDED, bytes_read=UNBOUNDED,
                       bytes_written=UNBOUNDED)
Progress = Callable[[int, int], None]  # (documents written, documents in the import)


class Mode(StrEnum):
    """What happens to tables that already hold documents (Convex's import modes)."""

    REQUIRE_EMPTY = "requireEmpty"  # refuse: the default, as `npx convex import`
    APPEND = "append"
    REPLACE = "replace"


@dataclass
class ImportReport:
    """What an import wrote: documents per table, files, the commit timestamp."""

    rows: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    files: int = 0
    ts: int | None = None

    @property
    def written(self) -> int:
        return sum(self.rows.values())


async def import_source(engine: Engine, source: Source, mode: Mode,
                        progress: Progress | None = None) -> ImportReport:
    """Import everything `source` holds; SnapshotError (nothing written) when it cannot."""
    remap, total = await asyncio.to_thread(_plan_ids, engine, source)
    blobs, written = await _store_files(engine, source, remap)
    try:
        report = ImportReport()

        async def body(db: DatabaseWriter, tx: Transaction) -> tuple[Any, Any]:
            report.rows.clear()
            report.deleted.clear()
            writer = _Writer(engine, db, source, remap, blobs, report, progress, total)
            for table in source.tables:
                await writer.prepare(table, mode)
            for table in source.tables:
                await writer.write(table, mode)
            return report, None

        outcome = await engine.transact(f"import {source.path.name}", body,
                                        timestamp=True, limits=IMPORT_LIMITS)
    except BaseException:
        await asyncio.shield(_forget(engine, written))
        raise
    report.files = len(blobs)
    report.ts = outcome.ts
    return report


def _plan_ids(engine: Engine, source: Source) -> tuple[dict[str, str], int]:
    """Old id -> new id for every document that cannot keep its id; and the row count.
    SnapshotError (before anything is written) when a table's file repeats an `_id`."""
    remap: dict[str, str] = {}
    total = 0
    restore = source.archive is not None and source.archive.legacy_ids
    for table in source.tables:
        number = engine.store.table_numbers[table]
        seen: dict[str, int] = {}  # _id -> the line it is on (this table only)
        for lineno, doc in source.rows(table):
            total += 1
            old = doc.get("_id")
            if not isinstance(old, str):
                continue
            first = seen.setdefault(old, lineno)
            if first != lineno:
                raise SnapshotError(
                    f"table {table!r}: duplicate _id {old} ({source.where(table)} line "
                    f"{lineno}; first on line {first}); nothing was imported")
            back = legacy_form(old) if restore else None
            if back is not None and _is_id_of(back, number):
                remap[old] = back  # a legacy id our export wrote in Convex's format
            elif not _is_id_of(old, number):
                remap[old] = new_id(number)
    return remap, total


def _is_id_of(doc_id: str, number: int) -> bool:
    try:
        return table_number_of(doc_id) == number
    except ValueError:
        return False


async def _store_files(engine: Engine, source: Source, remap: dict[str, str]
                       ) -> tuple[dict[str, Blob], list[str]]:
    """Store the bytes of every file the snapshot's `_storage` table lists, by final id;
    those already stored under that id (a --replace of the same deployment's snapshot)
    are kept. The blobs by id, and the ids written now (to delete if the import fails)."""
    archive = source.archive
    if archive is None or STORAGE not in source.tables:
        return {}, []
    blobs: dict[str, Blob] = {}
    written: list[str] = []
    try:
        for lineno, meta in source.rows(STORAGE):
            old = meta.get("_id")
            if not isinstance(old, str) or old not in archive.files:
                raise SnapshotError(f"{source.where(STORAGE)}: line {lineno}: file {old!r} "
                                    "has no _storage/<id> entry holding its bytes")
            storage_id = remap.get(old, old)
            blob = await engine.files.blobs.stat(storage_id)
            if blob is None:
                content_type = meta.get("contentType")
                blob = await engine.files.blobs.write(
                    storage_id, _chunks(archive.read_file(old)),
                    content_type=content_type if isinstance(content_type, str) else None,
                    max_bytes=UNBOUNDED)
                written.append(storage_id)
            blobs[storage_id] = blob
    except BaseException:
        await asyncio.shield(_forget(engine, written))
        raise
    return blobs, written


async def _chunks(pieces: Iterator[bytes]) -> Any:
    while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
        yield piece


async def _forget(engine: Engine, storage_ids: list[str]) -> None:
    if storage_ids:
        await engine.files.blobs.delete_unreferenced(storage_ids)


class _Writer:
    """The import transaction's work, table by table."""

    def __init__(self, engine: Engine, db: DatabaseWriter, source: Source,
                 remap: dict[str, str], blobs: dict[str, Blob], report: ImportReport,
                 progress: Progress | None, total: int) -> None:
        self.engine, self.db, self.source = engine, db, source
        self.remap, self.blobs, self.report = remap, blobs, report
        self.progress, self.total, self.done = progress, total, 0

    async def prepare(self, table: str, mode: Mode) -> None:
        """Refuse a non-empty table (requireEmpty) or empty it (replace)."""
        tx = self.db.reads.tx
        if mode is Mode.APPEND or not await tx.scan(table, BY_CREATION_TIME, b"", None,
                                                    False, 1):
            return
        if mode is Mode.REQUIRE_EMPTY:
            raise SnapshotError(
                f"Table {table} already exists. Please choose a new table name or use "
                "replace/append modes (--replace or --append).")
        deleted = 0
        system = SystemTableWriter(self.db)
        while rows := await tx.scan(table, BY_CREATION_TIME, b"", None, False, BATCH):
            for row in rows:
                await (system.delete(row.id) if table == STORAGE else self.db.delete(row.id))
            deleted += len(rows)
        self.report.deleted[table] = deleted

    async def write(self, table: str, mode: Mode) -> None:
        self.report.rows[table] = 0
        rows = self.source.rows(table)
        # Reading and inflating runs in a thread, a batch at a time: the loop keeps serving.
        while batch := await asyncio.to_thread(lambda: list(itertools.islice(rows, BATCH))):
            await self._write_batch(table, batch, mode)

    async def _write_batch(self, table: str, batch: list[tuple[int, dict[str, Any]]],
                           mode: Mode) -> None:
        number = self.engine.store.table_numbers[table]
        prepared = [(lineno, *self._identity(doc, number), doc) for lineno, doc in batch]
        if mode is Mode.APPEND:
            await self._check_new(table, [(lineno, i) for lineno, i, _, _ in prepared])
        for lineno, doc_id, created, doc in prepared:
            fields = self._fields(table, doc_id, doc)
            try:
                await self.db.restore(table, doc_id, created, fields)
            except ReactiveStoreError as exc:
                named = doc.get("_id")
                what = f"document {named}" if named else "a document without _id"
                raise SnapshotError(f"table {table!r}, {what} ({self.source.where(table)} "
                                    f"line {lineno}): {exc.message}") from None
        self.report.rows[table] += len(batch)
        self.done += len(batch)
        if self.progress is not None:
            self.progress(self.done, self.total)

    def _identity(self, doc: dict[str, Any], number: int) -> tuple[str, float]:
        old = doc.get("_id")
        doc_id = self.remap.get(old, old) if isinstance(old, str) else new_id(number)
        created = doc.get("_creationTime")
        if not isinstance(created, float | int) or isinstance(created, bool):
            created = _now_ms()
        return doc_id, float(created)

    def _fields(self, table: str, doc_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        if table == STORAGE:
            blob = self.blobs[doc_id]
            fields: dict[str, Any] = {"sha256": base64.b64encode(blob.sha256).decode(),
                                      "size": float(blob.size)}
            if blob.content_type is not None:
                fields["contentType"] = blob.content_type
            return fields
        fields = {k: v for k, v in doc.items() if k not in ("_id", "_creationTime")}
        restore = self.source.archive is not None and self.source.archive.legacy_ids
        return _rewrite(fields, self.remap, restore) if self.remap or restore else fields

    async def _check_new(self, table: str, ids: list[tuple[int, str]]) -> None:
        found = await self.db.reads.tx.get_many(table, [i for _, i in ids])
        if found:
            taken = {row.id for row in found}
            lineno, doc_id = next((n, i) for n, i in ids if i in taken)
            raise SnapshotError(
                f"table {table!r}: document {doc_id} ({self.source.where(table)} line "
                f"{lineno}) already exists; use --replace, or leave _id out to add it as a "
                "new document")


def _rewrite(value: Any, remap: dict[str, str], restore: bool) -> Any:
    """`value` with every string that is an old id replaced by its new id, and with
    `restore` every legacy id in Convex's format by the legacy id (references to documents
    outside the import included)."""
    if isinstance(value, str):
        found = remap.get(value)
        if found is None and restore:
            found = legacy_form(value)
        return value if found is None else found
    if isinstance(value, list):
        return [_rewrite(item, remap, restore) for item in value]
    if isinstance(value, dict):
        return {key: _rewrite(item, remap, restore) for key, item in value.items()}
    return value


def _now_ms() -> float:
    return time.time() * 1000.0
