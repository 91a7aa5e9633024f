"""Export a consistent snapshot of the deployment into a ZIP, streaming.

Every table is read in one REPEATABLE READ transaction (one snapshot: the export is the
data as of one commit, `ts`), page by page along the creation-time index, and each page is
encoded and handed to the ZIP writer in a thread (deflate is CPU work the event loop should
not do), so memory holds one page whatever the size. File bytes are immutable once
published, so they are read after, on the file pool, chunk by chunk.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from reactive_store.engine.db import document_from_row
from reactive_store.engine.engine import Engine
from reactive_store.engine.system_tables import SYSTEM_TABLE_NUMBERS
from reactive_store.schema import BY_CREATION_TIME
from reactive_store.snapshot.archive import SnapshotWriter
from reactive_store.snapshot.zip_format import (
    LEGACY_IDS,
    STORAGE,
    encode_line,
    storage_file_path,
    with_convex_ids,
)
from reactive_store.storage import Transaction

PAGE = 1000  # documents read per statement
Progress = Callable[[int, int], None]  # (documents written, documents in the snapshot)


@dataclass
class ExportReport:
    """What an export holds: its snapshot timestamp, documents per table, files."""

    ts: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    file_bytes: int = 0


async def export_snapshot(engine: Engine, target: Path | IO[bytes], *,
                          include_storage: bool = False,
                          progress: Progress | None = None) -> ExportReport:
    """Write the app's tables (and with `include_storage` its files) to `target`."""
    writer = await asyncio.to_thread(SnapshotWriter, target)
    report = ExportReport()
    try:
        numbers = {t: engine.store.table_numbers[t] for t in engine.app.schema.tables}
        await asyncio.to_thread(writer.write_tables, numbers)
        convert = may_hold_legacy_ids(engine.store.table_numbers)
        if convert:
            await asyncio.to_thread(writer.write_bytes, LEGACY_IDS, b'{"legacyIds":true}\n')
        async with engine.store.read() as tx:
            report.ts = await _snapshot_ts(engine, tx)
            tables = list(numbers) + ([STORAGE] if include_storage else [])
            total = sum([await tx.count(t, 1 << 62) for t in tables])
            counter = _Counter(total, progress, convert)
            for table in numbers:
                report.rows[table] = await _write_table(tx, writer, table, counter)
            files: list[dict[str, Any]] = []
            if include_storage:
                files = await _storage_documents(tx)
        if include_storage:
            await _write_files(engine, writer, files, report, counter)
    finally:
        await asyncio.to_thread(writer.close)
    return report


async def _snapshot_ts(engine: Engine, tx: Transaction) -> int:
    """The timestamp the export is named by: its snapshot's newest commit, or, when it sees
    commits not sequenced yet, the newest timestamp once they are (they get theirs above)."""
    snapshot = await tx.snapshot()
    if not snapshot.unsequenced:
        return snapshot.ts
    return await engine.store.latest_ts()


def may_hold_legacy_ids(numbers: dict[str, int]) -> bool:
    """Whether a deployment may hold legacy ids: it was made before Convex's numbering
    (a table numbered 10000 or less, other than a system table at Convex's number).
    Only then does an export look for legacy ids in every string (ids.convex_form)."""
    return any(n <= 10_000 and SYSTEM_TABLE_NUMBERS.get(t) != n for t, n in numbers.items())


class _Counter:
    def __init__(self, total: int, progress: Progress | None, convert: bool) -> None:
        self.total, self.done, self.progress = total, 0, progress
        self.convert = convert  # legacy ids are written in Convex's format

    def add(self, count: int) -> None:
        self.done += count
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))


async def _pages(tx: Transaction, table: str) -> Any:
    """The table's documents, a page at a time, in creation order."""
    lo = b""
    while rows := await tx.scan(table, BY_CREATION_TIME, lo, None, False, PAGE):
        yield [document_from_row(r.id, r.creation_time, r.doc) for r in rows]
        last = rows[-1].key
        assert last is not None
        lo = last + b"\x00"  # the least key above the last one read


async def _write_table(tx: Transaction, writer: SnapshotWriter, table: str,
                       counter: _Counter) -> int:
    out = await asyncio.to_thread(writer.open_table, table)
    written = 0
    encode = (lambda doc: encode_line(with_convex_ids(doc))) if counter.convert else encode_line
    try:
        async for docs in _pages(tx, table):
            await asyncio.to_thread(out.write, b"".join(map(encode, docs)))
            written += len(docs)
            counter.add(len(docs))
    finally:
        await asyncio.to_thread(out.close)
    return written


async def _storage_documents(tx: Transaction) -> list[dict[str, Any]]:
    """The `_storage` documents of the snapshot (small: metadata only)."""
    return [doc async for page in _pages(tx, STORAGE) for doc in page]


def storage_uuid(storage_id: str) -> str:
    """The file's `internalId`: Convex reads it as the UUID it keeps the bytes under (and
    refuses the import when it is not one); ours is derived from the id, so stable."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"reactive-store:_storage/{storage_id}"))


async def _write_files(engine: Engine, writer: SnapshotWriter, files: list[dict[str, Any]],
                       report: ExportReport, counter: _Counter) -> None:
    """`_storage/documents.jsonl` in Convex's shape, then each file's bytes as an entry."""
    blobs = []
    lines = []
    for doc in files:
        blob = await engine.files.blobs.stat(doc["_id"])
        if blob is None:
            continue  # deleted since the snapshot: its bytes are gone
        blobs.append(blob)
        file_id = with_convex_ids(doc["_id"]) if counter.convert else doc["_id"]
        lines.append(encode_line({
            "_id": file_id, "_creationTime": doc["_creationTime"],
            "sha256": doc["sha256"], "size": blob.size,
            "contentType": blob.content_type, "internalId": storage_uuid(file_id)}))
    await asyncio.to_thread(writer.write_bytes, f"{STORAGE}/documents.jsonl", b"".join(lines))
    for blob in blobs:
        file_id = with_convex_ids(blob.storage_id) if counter.convert else blob.storage_id
        out = await asyncio.to_thread(writer.open,
                                      storage_file_path(file_id, blob.content_type))
        try:
            async for chunk in engine.files.blobs.read(blob):
                await asyncio.to_thread(out.write, chunk)
        finally:
            await asyncio.to_thread(out.close)
        report.files += 1
        report.file_bytes += blob.size
        counter.add(1)
