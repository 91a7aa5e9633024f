"""`ctx.db`: the reader (queries) and writer (mutations) that functions see.

Everything a function reads is recorded as index intervals (its read set) and everything
it writes as index keys, old and new (its write set); subscriptions are matched on these.
The reads themselves, and their recording, are `TransactionReads` (`engine/reads.py`).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import orjson

from reactive_store import values
from reactive_store.annotations.markers import to_plain
from reactive_store.engine.query import Query
from reactive_store.engine.reads import TransactionReads, document_from_row
from reactive_store.engine.readset import ReadSet, WriteSet
from reactive_store.engine.search_index import IndexWrites
from reactive_store.engine.system_tables import is_internal, is_system
from reactive_store.errors import InvalidIdError, QueryError, ValidationError, WriteError
from reactive_store.ids import new_id
from reactive_store.limits import Limits
from reactive_store.schema import (
    BY_ID,
    Schema,
    TableDefinition,
    id_key,
    index_keys,
    index_keys_after,
    validate_document,
)
from reactive_store.storage import Transaction
from reactive_store.storage.history import BeforeImage
from reactive_store.types import Document
from reactive_store.values import UNSET

__all__ = ["DatabaseReader", "DatabaseWriter", "SystemReader", "SystemTableWriter",
           "TransactionReads", "document_from_row"]


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


class StoredVersion(NamedTuple):
    """A document as stored, read by the transaction that writes it next: its raw JSON and
    its index keys by index name (a writer given it encodes neither again), and the ctid of
    that row version when the writer is to reach it by that alone (jobs/batch.py)."""

    raw: bytes
    keys: dict[str, bytes]
    tid: str | None = None


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

    def _remember(self, table: str, doc_id: str, old: Document | None,
                  raw: bytes | None = None) -> None:
        """Keep `old` as the before-image; `raw` is its stored JSON, when already read."""
        if self.before is None or (table, doc_id) in self.before:
            return
        if old is None:
            self.before[(table, doc_id)] = BeforeImage(table, doc_id, None, None)
            return
        if raw is None:
            fields = {k: v for k, v in old.items() if not k.startswith("_")}
            raw = orjson.dumps(values.encode(fields, table))
        self.before[(table, doc_id)] = BeforeImage(table, doc_id, old["_creationTime"], raw)

    def _encode(self, table: str, fields: Document) -> bytes:
        return self._checked_size(table, orjson.dumps(values.encode(fields, table)), fields)

    def _checked_size(self, table: str, raw: bytes, fields: Document) -> bytes:
        """`raw`, the encoding of `fields`, once both are within the document limits."""
        values.check_document_shape(
            fields,
            max_depth=self._limits.nesting_depth,
            max_array=self._limits.array_elements,
            max_fields=self._limits.document_fields,
            path=table,
        )
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
        await self._write_version(table, definition, old, new, raw, index_keys(definition, old),
                                  None)

    async def _write_version(self, table: str, definition: TableDefinition, old: Document,
                             new: Document, raw: bytes, old_keys: dict[str, bytes],
                             old_raw: bytes | None, tid: str | None = None) -> None:
        """Write `new` (encoded as `raw`) over `old`, whose keys are `old_keys` (and stored
        JSON `old_raw` and row version `tid`, when known), recording both versions' keys."""
        new_keys = index_keys_after(definition, old, old_keys, new)
        indexes = IndexWrites.plan(table, definition, old, new)
        await self.reads.tx.update(table, old["_id"], raw, new_keys, tid)
        self._remember(table, old["_id"], old, old_raw)
        await indexes.apply(self.reads.tx, self.writes)
        self._record_keys(table, old_keys)
        self._record_keys(table, new_keys)
        self.writes.add(table, BY_ID, id_key(old["_id"]))

    async def _patch_stored(self, table: str, old: Document, stored: StoredVersion,
                            fields: Document) -> None:
        """Patch a system document as this transaction read it (`old`, stored as `stored`)
        with fields the engine made: those are validated and encoded, the rest is kept as
        stored (the job runner marks hundreds of jobs done per batch)."""
        definition = self.reads.schema.tables[table]
        validators = definition.validator.fields  # type: ignore[attr-defined]
        encoded = orjson.loads(stored.raw)
        new = dict(old)
        for name, value in fields.items():
            if name not in validators or value is UNSET:
                raise WriteError(f"patch: {table} has no field {name!r} to set")
            path = f"{table}.{name}"
            new[name] = validators[name].validate(value, path)
            encoded[name] = values.encode(new[name], path)
        raw = self._checked_size(table, orjson.dumps(encoded),
                                 {k: v for k, v in new.items() if not k.startswith("_")})
        await self._write_version(table, definition, old, new, raw, stored.keys, stored.raw,
                                  stored.tid)

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

    async def patch(self, doc_id: str, fields: Document, current: Document | None = None,
                    stored: StoredVersion | None = None) -> None:
        """Patch; `current` is the document as this transaction already read it, if so. With
        `stored`, its stored form, only `fields` (the engine's own values) are validated and
        encoded: the rest is written as stored."""
        if stored is None:
            await self._db._patch(doc_id, fields, system=True, current=current)
            return
        if current is None or current["_id"] != doc_id:
            raise WriteError(f"patch: the stored version given is not of document {doc_id!r}")
        table = self._db.reads.table_of_id(doc_id, system=True)
        await self._db._patch_stored(table, current, stored, fields)

    async def delete(self, doc_id: str) -> None:
        await self._db._delete(doc_id, system=True)


def _plain(doc: Any) -> Any:
    """A model or dataclass instance written as a document becomes its fields."""
    return doc if type(doc) is dict else to_plain(doc)
