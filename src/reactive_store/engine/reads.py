"""A transaction's reads as functions make them, each recorded in the function's read set."""

from __future__ import annotations

from typing import Any

import orjson

from reactive_store import values
from reactive_store.engine.intervals import Interval
from reactive_store.engine.pagination import PageJournal
from reactive_store.engine.query import ScanRecord
from reactive_store.engine.readset import ReadSet
from reactive_store.engine.system_tables import is_system
from reactive_store.errors import InvalidIdError, QueryError, ValidationError
from reactive_store.ids import table_number_of
from reactive_store.limits import Limits, Usage
from reactive_store.schema import BY_ID, Schema, TableDefinition, id_key
from reactive_store.storage import Transaction
from reactive_store.types import Document, Value
from reactive_store.validators import ObjectValidator, OptionalValidator


class TransactionReads:
    """Reads inside one transaction, recording every point and index range consumed.

    This is the `IndexReader` a `Query` scans through; `DatabaseReader` is its public face.
    """

    def __init__(self, tx: Transaction, schema: Schema, table_names: dict[int, str],
                 limits: Limits, journal: str | None = None) -> None:
        self.tx = tx
        self.pages = PageJournal(journal)  # the one paginated query a function may run
        self.schema = schema
        self.usage = Usage(limits)
        self._names = table_names
        self._scans: list[ScanRecord] = []
        self._points: list[tuple[str, bytes]] = []
        self._synthetic: list[tuple[str, str, Interval]] = []  # search and vector reads

    def read_set(self) -> ReadSet:
        reads = ReadSet()
        for table, key in self._points:
            reads.record(table, BY_ID, Interval.point(key))
        for table, keyspace, synthetic in self._synthetic:
            reads.record(table, keyspace, synthetic)
        for scan in self._scans:
            interval = scan.consumed()
            if interval is not None:
                reads.record(scan.table, scan.index, interval)
        return reads

    def table_definition(self, table: str, system: bool = False) -> TableDefinition:
        if not isinstance(table, str) or table not in self.schema.tables:
            raise QueryError(f"no table named {table!r} in the schema")
        if is_system(table) != system:
            raise QueryError(f"{table!r} is a system table: read it with ctx.db.system"
                             if not system else f"{table!r} is not a system table")
        return self.schema.tables[table]

    def table_of_id(self, doc_id: Any, table: str | None = None, system: bool = False) -> str:
        """The table `doc_id` belongs to, checked against `table` and the system flag."""
        try:
            number = table_number_of(doc_id)
        except ValueError as exc:
            raise InvalidIdError(str(exc)) from None
        name = self._names.get(number)
        if name is None or name not in self.schema.tables:
            raise InvalidIdError(f"id {doc_id!r} does not belong to any table in the schema")
        if table is not None and name != table:
            raise InvalidIdError(f"id {doc_id!r} belongs to table {name!r}, not {table!r}")
        if is_system(name) != system:
            raise InvalidIdError(f"id {doc_id!r} belongs to system table {name!r}: use "
                                 "ctx.db.system.get" if not system else
                                 f"id {doc_id!r} is not an id of a system table")
        return name

    def coerce(self, table: str, field: str, value: Value) -> Value:
        """Normalise a range value as the field's validator would (an int for a float64)."""
        if field == "_creationTime":
            return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
        validator: Any = self.schema.tables[table].validator
        for part in field.split("."):
            while isinstance(validator, OptionalValidator):
                validator = validator.inner
            if not isinstance(validator, ObjectValidator) or part not in validator.fields:
                return value
            validator = validator.fields[part]
        try:
            return validator.validate(value, field)
        except (ValidationError, TypeError):
            return value

    def record_scan(self, record: ScanRecord) -> None:
        self._scans.append(record)

    def record_interval(self, table: str, index: str, interval: Interval) -> None:
        """A read of a search or vector index's synthetic keyspace (`search_index`)."""
        self._synthetic.append((table, index, interval))

    async def documents(self, table: str, doc_ids: list[str]) -> dict[str, Document]:
        """The documents with these ids that exist, by id (not yet in the read set: the
        caller records each one it examines with `record_get`)."""
        self.usage.range_read()
        rows = await self.tx.get_many(table, doc_ids)
        self.usage.documents_read(len(rows), sum(len(r.doc) for r in rows))
        return {r.id: document_from_row(r.id, r.creation_time, r.doc) for r in rows}

    def record_get(self, table: str, doc_id: str) -> None:
        """A document read by id, as `get` records it."""
        self._points.append((table, id_key(doc_id)))

    async def scan(self, table: str, index: str, lo: bytes, hi: bytes | None, desc: bool,
                   limit: int) -> list[tuple[bytes, Document, int]]:
        self.usage.range_read()
        rows = await self.tx.scan(table, index, lo, hi, desc, limit)
        self.usage.documents_read(len(rows), sum(len(r.doc) for r in rows))
        out: list[tuple[bytes, Document, int]] = []
        for row in rows:
            assert row.key is not None
            out.append((row.key, document_from_row(row.id, row.creation_time, row.doc),
                        len(row.doc)))
        return out

    async def get(self, doc_id: str, table: str) -> Document | None:
        self._points.append((table, id_key(doc_id)))
        self.usage.range_read()
        row = await self.tx.get(table, doc_id)
        if row is None:
            return None
        self.usage.documents_read(1, len(row.doc))
        return document_from_row(row.id, row.creation_time, row.doc)


def document_from_row(doc_id: str, creation_time: float, raw: bytes) -> Document:
    """A stored row as the document functions see."""
    # Stored JSON is exactly what orjson wrote: floats always carry a '.' or an exponent
    # and int64, bytes and special floats are `{"$...": ...}` objects, so a document
    # without '"$' decodes to its value in one orjson call.
    fields = orjson.loads(raw)
    if b'"$' in raw:
        fields = values.decode(fields)
    return {"_id": doc_id, "_creationTime": creation_time, **fields}
