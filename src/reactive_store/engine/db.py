"""`ctx.db`: the reader (queries) and writer (mutations) that functions see.

Everything a function reads is recorded as index intervals (its read set) and everything
it writes as index keys, old and new (its write set); subscriptions are matched on these.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from reactive_store import values
from reactive_store.annotations.markers import to_plain
from reactive_store.engine.intervals import Interval
from reactive_store.engine.pagination import PageJournal
from reactive_store.engine.query import Query, ScanRecord
from reactive_store.engine.readset import ReadSet, WriteSet
from reactive_store.engine.search_index import IndexWrites
from reactive_store.engine.system_tables import is_internal, is_system
from reactive_store.errors import InvalidIdError, QueryError, ValidationError, WriteError
from reactive_store.ids import new_id, table_number_of
from reactive_store.limits import Limits, Usage
from reactive_store.schema import (
    BY_ID,
    Schema,
    TableDefinition,
    id_key,
    index_keys,
    validate_document,
)
from reactive_store.storage import Transaction
from reactive_store.storage.history import BeforeImage
from reactive_store.types import Document, Value
from reactive_store.validators import ObjectValidator, OptionalValidator
from reactive_store.values import UNSET


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


class DatabaseReader:
    """`ctx.db` of a query: read access inside one transaction, recording what is read."""

    def __init__(self, tx: Transaction, schema: Schema, table_names: dict[int, str],
                 limits: Limits, journal: str | None = None,
                 reads: TransactionReads | None = None) -> None:
        self.reads = reads or TransactionReads(tx, schema, table_names, limits, journal)

    def read_set(self) -> ReadSet:
        """Everything read so far, as index intervals."""
        return self.reads.read_set()

    async def get(self, doc_id: str) -> Document | None:
        """The document with this id, or None."""
        return await self.reads.get(doc_id, self.reads.table_of_id(doc_id))

    def query(self, table: str) -> Query:
        """A query over `table`, by creation time unless `.with_index(...)` says otherwise."""
        return Query(self.reads, table)

    @property
    def system(self) -> SystemReader:
        """Read access to the system tables (`_scheduled_functions`, `_cron_jobs`,
        `_storage`)."""
        return SystemReader(self.reads)

    def normalize_id(self, table: str, doc_id: Any) -> str | None:
        """`doc_id` when it is a valid id of `table`, else None."""
        self.reads.table_definition(table)
        try:
            self.reads.table_of_id(doc_id, table)
        except InvalidIdError:
            return None
        return str(doc_id)


class SystemReader:
    """`ctx.db.system`: `get(id)` and `query(table)` over the system tables.

    The internal ones (`_environment_variables`) are readable only with `internal=True`,
    which the engine's own writers use; functions read variables through `ctx.env`.
    """

    def __init__(self, reads: TransactionReads, internal: bool = False) -> None:
        self._reads = reads
        self._internal = internal

    def _check(self, table: str) -> None:
        if not self._internal and is_internal(table):
            raise QueryError(f"{table!r} is not readable with ctx.db.system"
                             + (": read variables with ctx.env"
                                if table == "_environment_variables" else ""))

    async def get(self, doc_id: str) -> Document | None:
        table = self._reads.table_of_id(doc_id, system=True)
        self._check(table)
        return await self._reads.get(doc_id, table)

    def query(self, table: str) -> Query:
        if isinstance(table, str):
            self._check(table)
        return Query(self._reads, table, system=True)


class DatabaseWriter(DatabaseReader):
    """`ctx.db` of a mutation: read and write access inside its SERIALIZABLE transaction."""

    def __init__(self, tx: Transaction, schema: Schema, table_numbers: dict[str, int],
                 table_names: dict[int, str], limits: Limits, history: bool = False) -> None:
        super().__init__(tx, schema, table_names, limits)
        self._numbers = table_numbers
        self._limits = limits
        self.writes = WriteSet()
        # Only while query history is kept: each written document as it was before this
        # transaction first wrote it (a later write of the same document keeps the first).
        self.before: dict[tuple[str, str], BeforeImage] | None = {} if history else None

    def _remember(self, table: str, doc_id: str, old: Document | None) -> None:
        if self.before is None or (table, doc_id) in self.before:
            return
        if old is None:
            self.before[(table, doc_id)] = BeforeImage(table, doc_id, None, None)
            return
        fields = {k: v for k, v in old.items() if not k.startswith("_")}
        raw = orjson.dumps(values.encode(fields, table))
        self.before[(table, doc_id)] = BeforeImage(table, doc_id, old["_creationTime"], raw)

    def _encode(self, table: str, fields: Document) -> bytes:
        values.check_document_shape(
            fields,
            max_depth=self._limits.nesting_depth,
            max_array=self._limits.array_elements,
            max_fields=self._limits.document_fields,
            path=table,
        )
        raw = orjson.dumps(values.encode(fields, table))
        if len(raw) > self._limits.document_bytes:
            raise ValidationError(
                f"table {table!r}: document of {len(raw)} bytes is larger than the limit of "
                f"{self._limits.document_bytes} bytes"
            )
        self.reads.usage.document_written(len(raw))
        return raw

    def _record_keys(self, table: str, keys: dict[str, bytes]) -> None:
        for index, key in keys.items():
            self.writes.add(table, index, key)

    async def insert(self, table: str, doc: Document) -> str:
        """Insert a document (a dict, or a pydantic model or dataclass instance); returns its
        new `_id`."""
        return await self._insert(table, _plain(doc), system=False)

    async def restore(self, table: str, doc_id: str, creation_time: float,
                      fields: Document) -> None:
        """Insert a document from a snapshot keeping its id and creation time (imports):
        validated like any write; the id must be one of `table`."""
        await self._insert(table, fields, system=is_system(table), doc_id=doc_id,
                           creation_time=creation_time)

    async def _insert(self, table: str, doc: Document, system: bool,
                      doc_id: str | None = None, creation_time: float | None = None) -> str:
        definition = self.reads.table_definition(table, system)
        fields = validate_document(table, definition, doc)
        raw = self._encode(table, fields)
        if doc_id is None:
            doc_id = new_id(self._numbers[table])
        else:
            self.reads.table_of_id(doc_id, table, system)  # raises unless an id of `table`
        if creation_time is None:
            creation_time = time.time() * 1000.0
        stored = {"_id": doc_id, "_creationTime": creation_time, **fields}
        keys = index_keys(definition, stored)
        indexes = IndexWrites.plan(table, definition, None, stored)
        await self.reads.tx.insert(table, doc_id, stored["_creationTime"], raw, keys)
        self._remember(table, doc_id, None)
        await indexes.apply(self.reads.tx, self.writes)
        self._record_keys(table, keys)
        self.writes.add(table, BY_ID, id_key(doc_id))
        return doc_id

    async def _load(self, doc_id: Any, verb: str, system: bool = False
                    ) -> tuple[str, TableDefinition, Document]:
        table = self.reads.table_of_id(doc_id, system=system)
        old = await self.reads.get(doc_id, table)
        if old is None:
            raise WriteError(f"{verb}: document {doc_id!r} does not exist")
        return table, self.reads.schema.tables[table], old

    async def _store(
        self, table: str, definition: TableDefinition, old: Document, fields: Document
    ) -> None:
        fields = validate_document(table, definition, fields)
        raw = self._encode(table, fields)
        new = {"_id": old["_id"], "_creationTime": old["_creationTime"], **fields}
        old_keys = index_keys(definition, old)
        new_keys = index_keys(definition, new)
        indexes = IndexWrites.plan(table, definition, old, new)
        await self.reads.tx.update(table, old["_id"], raw, new_keys)
        self._remember(table, old["_id"], old)
        await indexes.apply(self.reads.tx, self.writes)
        self._record_keys(table, old_keys)
        self._record_keys(table, new_keys)
        self.writes.add(table, BY_ID, id_key(old["_id"]))

    async def patch(self, doc_id: str, fields: Document) -> None:
        """Shallow-merge `fields` into the document; a field set to UNSET is removed."""
        await self._patch(doc_id, _plain(fields), system=False)

    async def _patch(self, doc_id: str, fields: Document, system: bool,
                     current: Document | None = None) -> None:
        """Patch; `current` is the document as this transaction already read it, if so."""
        if not isinstance(fields, dict):
            raise WriteError(f"patch: fields must be an object, got {values.type_name(fields)}")
        if current is None:
            table, definition, old = await self._load(doc_id, "patch", system)
        else:
            table = self.reads.table_of_id(doc_id, system=system)
            definition, old = self.reads.schema.tables[table], current
        merged = {k: v for k, v in old.items() if not k.startswith("_")}
        for name, value in fields.items():
            if isinstance(name, str) and name.startswith("_"):
                if name in old and old[name] == value:
                    continue
                raise WriteError(f"patch: system field {name!r} cannot be written")
            if value is UNSET:
                merged.pop(name, None)
            else:
                merged[name] = value
        try:
            await self._store(table, definition, old, merged)
        except ValidationError as exc:
            if any(value is None for value in fields.values()):
                raise ValidationError(
                    f"{exc.message} (to remove a field, patch it to reactive_store.UNSET)"
                ) from None
            raise

    async def replace(self, doc_id: str, doc: Document) -> None:
        """Replace the whole document (system fields are kept)."""
        doc = _plain(doc)
        if not isinstance(doc, dict):
            raise WriteError(f"replace: document must be an object, got {values.type_name(doc)}")
        table, definition, old = await self._load(doc_id, "replace")
        fields = dict(doc)
        for name in ("_id", "_creationTime"):
            if name in fields:
                if fields[name] != old[name]:
                    raise WriteError(f"replace: system field {name!r} cannot be changed")
                del fields[name]
        await self._store(table, definition, old, fields)

    async def delete(self, doc_id: str) -> None:
        """Delete the document."""
        await self._delete(doc_id, system=False)

    async def _delete(self, doc_id: str, system: bool) -> None:
        table, definition, old = await self._load(doc_id, "delete", system)
        await self.reads.tx.delete(table, doc_id)
        self._remember(table, doc_id, old)
        await IndexWrites.plan(table, definition, old, None).apply(self.reads.tx, self.writes)
        self.reads.usage.document_written(0)
        self._record_keys(table, index_keys(definition, old))
        self.writes.add(table, BY_ID, id_key(doc_id))


class SystemTableWriter:
    """Writes to the system tables, for the scheduler and the job runner (never `ctx.db`).

    Every write goes through the mutation's own `DatabaseWriter`, so it is validated,
    recorded in the write set and committed (or not) with the rest of the transaction.
    """

    def __init__(self, db: DatabaseWriter) -> None:
        self._db = db
        self._system = SystemReader(db.reads, internal=True)

    async def get(self, doc_id: str) -> Document | None:
        return await self._system.get(doc_id)

    def query(self, table: str) -> Query:
        return self._system.query(table)

    async def insert(self, table: str, doc: Document, doc_id: str | None = None) -> str:
        """Insert; `doc_id` is an id made beforehand with `new_id` (file storage names the
        bytes before the document exists), else a fresh one."""
        return await self._db._insert(table, doc, system=True, doc_id=doc_id)

    async def patch(self, doc_id: str, fields: Document, current: Document | None = None
                    ) -> None:
        """Patch; `current` is the document as this transaction already read it, if so."""
        await self._db._patch(doc_id, fields, system=True, current=current)

    async def delete(self, doc_id: str) -> None:
        await self._db._delete(doc_id, system=True)


def _plain(doc: Any) -> Any:
    """A model or dataclass instance written as a document becomes its fields."""
    return doc if type(doc) is dict else to_plain(doc)
