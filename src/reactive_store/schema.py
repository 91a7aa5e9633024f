"""Table and index declarations, document validation, and the index keys of a document."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reactive_store.annotations.mapping import shape_of
from reactive_store.annotations.markers import show
from reactive_store.errors import AnnotationError, SchemaError, ValidationError
from reactive_store.keys import MISSING, TAG_STRING, encode_tuple, encode_value, field_value
from reactive_store.types import Document
from reactive_store.validators import ObjectValidator, UnionValidator, Validator, object_fields

BY_ID = "by_id"
BY_CREATION_TIME = "by_creation_time"
SYSTEM_FIELDS = ("_id", "_creationTime")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
# A Postgres btree entry must fit in a third of a page; keep keys well below that.
MAX_INDEX_KEY_BYTES = 2000
# Search and vector indexes (Convex's limits).
MAX_FILTER_FIELDS = 16
MIN_DIMENSIONS, MAX_DIMENSIONS = 2, 4096


@dataclass(frozen=True)
class Index:
    """A named index over document fields; every key ends with (_creationTime, _id)."""

    name: str
    fields: tuple[str, ...]

    def key(self, doc: Document, suffix: bytes | None = None) -> bytes:
        """The key of a stored document; `suffix` is `key_suffix(doc)` when already known
        (every index key of a document ends with it)."""
        out = bytearray()
        for path in self.fields:
            encode_value(field_value(doc, path), out)
        key = bytes(out) + (key_suffix(doc) if suffix is None else suffix)
        if len(key) > MAX_INDEX_KEY_BYTES:
            raise ValidationError(
                f"index {self.name!r}: key of {len(key)} bytes is larger than "
                f"{MAX_INDEX_KEY_BYTES}; index shorter fields"
            )
        return key

    @property
    def key_fields(self) -> tuple[str, ...]:
        return (*self.fields, "_creationTime")


_BY_CREATION_TIME_INDEX = Index(BY_CREATION_TIME, ())


@dataclass(frozen=True)
class SearchIndex:
    """A full-text index over one string field, with equality filters on `filter_fields`."""

    name: str
    search_field: str
    filter_fields: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"searchField": self.search_field, "filterFields": list(self.filter_fields)}


@dataclass(frozen=True)
class VectorIndex:
    """A nearest-neighbour index over one array-of-float64 field of `dimensions` numbers.

    `exact_fallback` lets the index work on a Postgres without pgvector, by exact search.
    """

    name: str
    vector_field: str
    dimensions: int
    filter_fields: tuple[str, ...]
    exact_fallback: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"vectorField": self.vector_field, "dimensions": self.dimensions,
                "filterFields": list(self.filter_fields), "exactFallback": self.exact_fallback}


def _check_field(index: str, role: str, name: Any) -> str:
    if not isinstance(name, str) or not name or name.startswith("_"):
        raise SchemaError(f"index {index!r}: {role} must be a field name, got {name!r}")
    return name


def _check_filter_fields(index: str, fields: Any) -> tuple[str, ...]:
    if not isinstance(fields, list | tuple):
        raise SchemaError(f"index {index!r}: filter_fields must be a list of field names")
    if len(fields) > MAX_FILTER_FIELDS:
        raise SchemaError(f"index {index!r}: at most {MAX_FILTER_FIELDS} filter fields")
    if len(set(fields)) != len(fields):
        raise SchemaError(f"index {index!r}: a filter field appears twice")
    return tuple(_check_field(index, "a filter field", f) for f in fields)


@dataclass
class TableDefinition:
    """`define_table({...})`: a document validator plus named indexes (database, search and
    vector indexes share one namespace per table)."""

    validator: Validator
    indexes: dict[str, Index] = field(default_factory=dict)
    search_indexes: dict[str, SearchIndex] = field(default_factory=dict)
    vector_indexes: dict[str, VectorIndex] = field(default_factory=dict)

    def _new_name(self, name: Any) -> str:
        if not isinstance(name, str) or not _NAME.match(name) or name in (BY_ID, BY_CREATION_TIME):
            raise SchemaError(f"invalid index name {name!r}")
        if name in self.indexes or name in self.search_indexes or name in self.vector_indexes:
            raise SchemaError(f"index {name!r} is declared twice")
        return name

    def search_index(self, name: str, *, search_field: str,
                     filter_fields: list[str] | tuple[str, ...] = ()) -> TableDefinition:
        """A full-text search index: `search_field` is tokenised, `filter_fields` can be
        used with `.eq(...)` in `with_search_index`."""
        self._new_name(name)
        field_name = _check_field(name, "search_field", search_field)
        self.search_indexes[name] = SearchIndex(name, field_name,
                                                _check_filter_fields(name, filter_fields))
        return self

    def vector_index(self, name: str, *, vector_field: str, dimensions: int,
                     filter_fields: list[str] | tuple[str, ...] = (),
                     exact_fallback: bool = False) -> TableDefinition:
        """A vector index (cosine similarity) over `vector_field`, `dimensions` long."""
        self._new_name(name)
        field_name = _check_field(name, "vector_field", vector_field)
        if (not isinstance(dimensions, int) or isinstance(dimensions, bool)
                or not MIN_DIMENSIONS <= dimensions <= MAX_DIMENSIONS):
            raise SchemaError(f"index {name!r}: dimensions must be an integer from "
                              f"{MIN_DIMENSIONS} to {MAX_DIMENSIONS}, got {dimensions!r}")
        self.vector_indexes[name] = VectorIndex(
            name, field_name, dimensions, _check_filter_fields(name, filter_fields),
            bool(exact_fallback))
        return self

    def index(self, name: str, fields: list[str] | tuple[str, ...]) -> TableDefinition:
        self._new_name(name)
        if not isinstance(fields, list | tuple) or not fields:
            raise SchemaError(f"index {name!r}: fields must be a non-empty list of field names")
        for f in fields:
            if not isinstance(f, str) or not f or f.startswith("_"):
                raise SchemaError(f"index {name!r}: invalid field {f!r}")
        if len(set(fields)) != len(fields):
            raise SchemaError(f"index {name!r}: a field appears twice")
        self.indexes[name] = Index(name, tuple(fields))
        return self


def define_table(fields: Mapping[str, Validator] | Validator | type) -> TableDefinition:
    """Declare a table by its fields: a dict of validators, a v.object / v.union of them, or
    a TypedDict, dataclass or pydantic model class (its fields mapped as type hints are)."""
    if isinstance(fields, type):
        fields = _model_validator(fields)
    if isinstance(fields, Validator):
        members = fields.members if isinstance(fields, UnionValidator) else (fields,)
        if not all(isinstance(m, ObjectValidator) for m in members):
            raise SchemaError("define_table() takes a dict of fields, v.object or v.union of them")
        for member in members:
            assert isinstance(member, ObjectValidator)
            _check_no_system_fields(member.fields)
        return TableDefinition(fields)
    checked = object_fields(fields, "define_table")
    _check_no_system_fields(checked)
    return TableDefinition(ObjectValidator(checked))


def _model_validator(model: type) -> Validator:
    try:
        shape = shape_of(model)
    except AnnotationError as exc:
        raise SchemaError(f"define_table({show(model)}): {exc.message}") from None
    if not isinstance(shape.validator, ObjectValidator):
        raise SchemaError(f"define_table({show(model)}): expected a TypedDict, dataclass or "
                          "pydantic model class")
    return shape.validator


def _check_no_system_fields(fields: Mapping[str, Validator]) -> None:
    for name in fields:
        if name.startswith("_"):
            raise SchemaError(f"field {name!r}: names starting with '_' are reserved")


@dataclass
class Schema:
    """`define_schema({...})`: the app's tables by name."""

    tables: dict[str, TableDefinition]

    def table(self, name: str) -> TableDefinition:
        try:
            return self.tables[name]
        except KeyError:
            raise SchemaError(f"no table named {name!r} in the schema") from None

    def to_json(self) -> dict[str, Any]:
        return {
            name: {
                "document": table.validator.to_json(),
                "indexes": {i.name: list(i.fields) for i in table.indexes.values()},
                **({"searchIndexes": {i.name: i.to_json() for i in table.search_indexes.values()}}
                   if table.search_indexes else {}),
                **({"vectorIndexes": {i.name: i.to_json() for i in table.vector_indexes.values()}}
                   if table.vector_indexes else {}),
            }
            for name, table in self.tables.items()
        }


def define_schema(tables: Mapping[str, TableDefinition]) -> Schema:
    """Declare the app's schema: table name -> `define_table(...)`."""
    if not isinstance(tables, Mapping):
        raise SchemaError("define_schema() takes a dict of table name -> define_table(...)")
    out: dict[str, TableDefinition] = {}
    for name, table in tables.items():
        if not isinstance(name, str) or not _NAME.match(name) or name.startswith("_"):
            raise SchemaError(
                f"invalid table name {name!r}: use letters, digits and '_', "
                "starting with a letter, at most 63 characters"
            )
        if not isinstance(table, TableDefinition):
            raise SchemaError(f"table {name!r}: expected define_table(...), got {table!r}")
        out[name] = table
    return Schema(out)


def all_indexes(table: TableDefinition) -> dict[str, Index]:
    """The user's indexes plus the built-in creation-time index (by_id is the primary key)."""
    return {BY_CREATION_TIME: _BY_CREATION_TIME_INDEX, **table.indexes}


def validate_document(table_name: str, table: TableDefinition, doc: Any) -> Document:
    """Validate a user document (no system fields) against its table; return it normalised."""
    if not isinstance(doc, dict):
        raise ValidationError(f"table {table_name!r}: a document must be an object")
    for name in doc:
        if isinstance(name, str) and name.startswith("_"):
            raise ValidationError(
                f"table {table_name!r}: field {name!r} is a system field or reserved "
                "(names starting with '_' cannot be written)"
            )
    result: Document = table.validator.validate(doc, table_name)
    return result


def key_suffix(doc: Document) -> bytes:
    """How every index key of a stored document ends: its (_creationTime, _id)."""
    return encode_tuple((doc["_creationTime"], doc["_id"]))


def index_keys(table: TableDefinition, doc: Document) -> dict[str, bytes]:
    """Every index key of a stored document (one that has _id and _creationTime)."""
    suffix = key_suffix(doc)
    return {name: index.key(doc, suffix) for name, index in all_indexes(table).items()}


def index_keys_after(table: TableDefinition, old: Document, old_keys: dict[str, bytes],
                     new: Document) -> dict[str, bytes]:
    """The index keys of `new`, a new version of `old` (same _id and _creationTime) whose
    keys are `old_keys`: an index whose fields hold the very same objects in both (a patch
    leaves the fields it does not name untouched) keeps its key, which is not encoded again."""
    keys = {}
    suffix = None
    for name, index in all_indexes(table).items():
        for path in index.fields:
            if field_value(old, path) is not field_value(new, path):
                suffix = suffix or key_suffix(new)
                keys[name] = index.key(new, suffix)
                break
        else:
            keys[name] = old_keys[name]
    return keys


def id_key(doc_id: str) -> bytes:
    """The key of a document in its table's by_id index (point reads and writes)."""
    return encode_tuple([doc_id])


def id_from_key(key: bytes) -> str | None:
    """The id a by_id key holds (the inverse of `id_key`; ids never contain NUL)."""
    if len(key) < 2 or key[0] != TAG_STRING or key[-1] != 0 or 0 in key[1:-1]:
        return None
    return key[1:-1].decode()


__all__ = [
    "BY_CREATION_TIME",
    "BY_ID",
    "MISSING",
    "Index",
    "Schema",
    "SearchIndex",
    "TableDefinition",
    "VectorIndex",
    "define_schema",
    "define_table",
]
