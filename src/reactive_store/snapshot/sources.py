"""What an import reads: a snapshot ZIP or one table's file, as tables of numbered documents."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reactive_store.schema import Schema
from reactive_store.snapshot.archive import SnapshotReader
from reactive_store.snapshot.single_table import (
    format_of,
    read_csv,
    read_json_array,
    read_jsonl,
)
from reactive_store.snapshot.zip_format import STORAGE, SnapshotError, decode_line

Rows = Iterator[tuple[int, dict[str, Any]]]


@dataclass
class Source:
    """The tables an import writes, where their rows come from, and the stored files."""

    path: Path
    format: str
    tables: list[str]
    numbers: dict[str, int] = field(default_factory=dict)  # table numbers in the source
    archive: SnapshotReader | None = None
    schema: Schema | None = None
    label: str = ""  # how messages name the file (default: its name)

    def __post_init__(self) -> None:
        self.label = self.label or self.path.name

    def where(self, table: str) -> str:
        if self.archive is not None:
            return f"{self.label}:{self.archive.documents[table]}"
        return self.label

    def rows(self, table: str) -> Rows:
        """The table's documents, in file order, each with its line number."""
        if self.archive is not None:
            return self._archive_rows(self.archive, table)
        if self.format == "jsonLines":
            return read_jsonl(self.path, self.label)
        if self.format == "jsonArray":
            return read_json_array(self.path, self.label)
        assert self.schema is not None
        return read_csv(self.path, self.schema.tables[table].validator, self.label)

    def _archive_rows(self, archive: SnapshotReader, table: str) -> Rows:
        where = self.where(table)
        if table != STORAGE and not archive.uniform(table):
            raise SnapshotError(
                f"{where}: this table was exported in Convex's older clean-JSON format "
                "(its generated_schema.jsonl is not \"uniform\"); export it again with a "
                "current Convex CLI")
        for lineno, line in archive.lines(table):
            yield lineno, decode_line(line, where, lineno)

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()


def open_source(path: Path, schema: Schema, table: str | None = None,
                format: str | None = None, label: str | None = None) -> Source:
    """The import source at `path` (`label` names it in messages); SnapshotError when the
    file or a table does not fit."""
    label = label or path.name
    if not path.is_file():
        raise SnapshotError(f"{path} does not exist or is not a file")
    kind = format_of(path, format)
    if kind == "zip":
        if table is not None:
            raise SnapshotError("--table is not allowed for a ZIP snapshot (it names its "
                                "tables itself)")
        archive = SnapshotReader(path, label)
        tables = archive.user_tables()
        if STORAGE in archive.documents:
            tables.insert(0, STORAGE)
        source = Source(path, kind, tables, archive.table_numbers(), archive, schema, label)
    else:
        if table is None:
            raise SnapshotError(f"--table is required to import {label} (format {kind})")
        source = Source(path, kind, [table], schema=schema, label=label)
    for name in source.tables:
        if name not in schema.tables or (name.startswith("_") and name != STORAGE):
            source.close()
            raise SnapshotError(
                f"table {name!r} is in {label} but not in the app's schema: add it to "
                "schema/ (or leave it out of the import)")
    return source
