"""Reading and writing snapshot ZIPs with the standard library's `zipfile`, entry by entry.

Both sides stream: a documents entry is written and read line by line through zipfile's
entry streams (ZIP64 forced, so one entry may pass 4 GiB), never held whole in memory.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from reactive_store.snapshot.zip_format import (
    LEGACY_IDS,
    README,
    README_TEXT,
    STORAGE,
    TABLES,
    SnapshotError,
    documents_path,
    generated_schema_path,
    is_uniform,
    storage_id_of_file,
    table_of_documents,
    table_of_generated_schema,
)

BROKEN = (zipfile.BadZipFile, zlib.error, EOFError)  # what a damaged archive raises


class SnapshotWriter:
    """Writes a snapshot ZIP to a path or a binary file object."""

    def __init__(self, target: str | Path | IO[bytes]) -> None:
        self._zip = zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED,
                                    compresslevel=1, allowZip64=True)
        self.write_bytes(README, README_TEXT.encode())

    def write_bytes(self, name: str, data: bytes) -> None:
        with self.open(name) as out:
            out.write(data)

    def open(self, name: str) -> IO[bytes]:
        """A write stream for one entry; close it before opening the next."""
        return self._zip.open(name, "w", force_zip64=True)

    def write_tables(self, numbers: dict[str, int]) -> None:
        """`_tables/documents.jsonl`: each user table's name and number, by number."""
        lines = b"".join(orjson.dumps({"name": name, "id": number}) + b"\n"
                         for name, number in sorted(numbers.items(), key=lambda i: i[1]))
        self.write_bytes(documents_path(TABLES), lines)

    def open_table(self, table: str) -> IO[bytes]:
        """Write the table's `generated_schema.jsonl` and open its `documents.jsonl`."""
        if table != STORAGE:
            self.write_bytes(generated_schema_path(table), b'"uniform"\n')
        return self.open(documents_path(table))

    def close(self) -> None:
        self._zip.close()


class SnapshotReader:
    """A snapshot ZIP opened for reading: its tables, their lines, its stored files."""

    def __init__(self, source: str | Path | IO[bytes], label: str = "snapshot") -> None:
        self.label = label
        try:
            self._zip = zipfile.ZipFile(source)
            names = self._zip.namelist()
        except BROKEN as exc:
            raise SnapshotError(f"{label} is not a valid ZIP file: {exc}") from None
        self.documents: dict[str, str] = {}  # table -> its documents.jsonl entry
        self.generated: dict[str, str] = {}  # table -> its generated_schema.jsonl entry
        self.files: dict[str, zipfile.ZipInfo] = {}  # storage id -> the entry of its bytes
        for info in self._zip.infolist():
            table = table_of_documents(info.filename)
            if table is not None:
                self.documents[table] = info.filename
            elif (table := table_of_generated_schema(info.filename)) is not None:
                self.generated[table] = info.filename
            elif (storage_id := storage_id_of_file(info.filename)) is not None:
                self.files[storage_id] = info
        # Legacy ids were written in Convex's format (zip_format.LEGACY_IDS).
        self.legacy_ids = LEGACY_IDS in names
        if not self.documents and names:
            raise SnapshotError(f"{label} holds no <table>/documents.jsonl entry: not a "
                                "snapshot export")

    def user_tables(self) -> list[str]:
        """The tables the snapshot holds documents of, system tables aside."""
        return [t for t in self.documents if not t.startswith("_")]

    def table_numbers(self) -> dict[str, int]:
        """`_tables/documents.jsonl` as {name: number} (empty when absent)."""
        numbers: dict[str, int] = {}
        if TABLES in self.documents:
            for lineno, line in self.lines(TABLES):
                entry = _json(line, f"{self.documents[TABLES]} line {lineno}")
                if isinstance(entry, dict) and isinstance(entry.get("name"), str) \
                        and isinstance(entry.get("id"), int):
                    numbers[entry["name"]] = entry["id"]
        return numbers

    def uniform(self, table: str) -> bool:
        """Whether the table's lines are exported JSON (no generated schema: assumed so)."""
        entry = self.generated.get(table)
        if entry is None:
            return True
        first = next((line for _, line in self.lines_of(entry)), b"")
        return is_uniform(first)

    def lines(self, table: str) -> Iterator[tuple[int, bytes]]:
        """The non-empty lines of a table's documents file, numbered from 1."""
        return self.lines_of(self.documents[table])

    def lines_of(self, entry: str) -> Iterator[tuple[int, bytes]]:
        try:
            with self._zip.open(entry) as raw:
                for lineno, line in enumerate(raw, 1):
                    if line.strip():
                        yield lineno, line
        except BROKEN as exc:
            raise SnapshotError(f"{self.label}: entry {entry} is damaged: {exc}") from None

    def read_file(self, storage_id: str, chunk: int = 1 << 20) -> Iterator[bytes]:
        """The bytes of a stored file, chunk by chunk."""
        info = self.files[storage_id]
        try:
            with self._zip.open(info) as raw:
                while piece := raw.read(chunk):
                    yield piece
        except BROKEN as exc:
            raise SnapshotError(f"{self.label}: entry {info.filename} is damaged: "
                                f"{exc}") from None

    def close(self) -> None:
        self._zip.close()


def _json(line: bytes, where: str) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"{where} is not valid JSON: {exc}") from None
