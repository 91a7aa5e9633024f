"""`ctx.vector_search(table, index, {"vector", "limit", "filter"})`: nearest neighbours by
cosine similarity, in actions (own snapshot) and, beyond Convex, in queries and mutations
(the function's own snapshot, recorded in its read set so a query re-runs when a document
matching its filter is written; see `search_index`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from reactive_store.engine.intervals import Interval
from reactive_store.engine.search_index import (
    ANY_DOCUMENT,
    side_table,
    vector_filter_key,
    vector_keyspace,
)
from reactive_store.errors import QueryError, ValidationError
from reactive_store.keys import encode_tuple
from reactive_store.limits import Usage
from reactive_store.schema import TableDefinition, VectorIndex
from reactive_store.storage import Transaction
from reactive_store.storage.vectors import check_vector, nearest
from reactive_store.types import Value

MIN_LIMIT, MAX_LIMIT = 1, 256  # Convex's bounds on `limit`
DEFAULT_LIMIT = 10
OPTIONS = ("vector", "limit", "filter")


class VectorReader(Protocol):
    """What a vector search needs from its transaction (`engine.reads.TransactionReads`)."""

    tx: Transaction
    usage: Usage

    def table_definition(self, table: str, system: bool = False) -> TableDefinition: ...

    def coerce(self, table: str, field: str, value: Value) -> Value: ...

    def record_interval(self, table: str, index: str, interval: Interval) -> None: ...


class VectorFilterExpr:
    """A filter: a document matches when one of `terms` (field position, value) holds."""

    def __init__(self, terms: list[tuple[int, bytes]]) -> None:
        self.terms = terms


class VectorFilter:
    """The `q` of `"filter": lambda q: q.eq(f, x)` or `q.or_(q.eq(f, x), q.eq(g, y))`."""

    def __init__(self, index: VectorIndex, coerce: Callable[[str, Value], Value]) -> None:
        self._index = index
        self._coerce = coerce

    def eq(self, field: str, value: Value) -> VectorFilterExpr:
        fields = self._index.filter_fields
        if field not in fields:
            raise QueryError(f"vector index {self._index.name!r}: {field!r} is not one of its "
                             f"filter fields {list(fields)}")
        try:
            encoded = encode_tuple([self._coerce(field, value)])
        except (TypeError, ValueError) as exc:
            raise QueryError(f"vector index {self._index.name!r}: eq({field!r}): {exc}") from None
        return VectorFilterExpr([(fields.index(field), encoded)])

    def or_(self, *exprs: VectorFilterExpr) -> VectorFilterExpr:
        if not exprs or not all(isinstance(e, VectorFilterExpr) for e in exprs):
            raise QueryError(f"vector index {self._index.name!r}: or_() takes one or more "
                             "q.eq(...) or q.or_(...) expressions")
        return VectorFilterExpr([t for e in exprs for t in e.terms])


def _index(reader: VectorReader, table: str, name: Any) -> VectorIndex:
    definition = reader.table_definition(table)
    if name not in definition.vector_indexes:
        raise QueryError(f"table {table!r} has no vector index {name!r}; it has "
                         f"{sorted(definition.vector_indexes)}")
    return definition.vector_indexes[name]


def _options(table: str, index: VectorIndex, options: Any) -> tuple[list[float], int]:
    where = f"vector_search({table!r}, {index.name!r})"
    if not isinstance(options, dict) or "vector" not in options:
        raise QueryError(f"{where}: options must be a dict with 'vector' (and optionally "
                         "'limit' and 'filter')")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise QueryError(f"{where}: unknown option(s) {unknown}; expected {list(OPTIONS)}")
    try:
        vector = check_vector(options["vector"], index.dimensions, where)
    except ValidationError as exc:
        raise QueryError(exc.message) from None
    limit = options.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, float) and limit.is_integer():
        limit = int(limit)
    if isinstance(limit, bool) or not isinstance(limit, int) or not (
            MIN_LIMIT <= limit <= MAX_LIMIT):
        raise QueryError(f"{where}: limit must be an integer from {MIN_LIMIT} to {MAX_LIMIT}, "
                         f"got {limit!r}")
    return vector, limit


async def vector_search(reader: VectorReader, table: str, name: str, options: Any
                        ) -> list[dict[str, Any]]:
    """The `limit` documents nearest to `vector`: [{"_id", "_score"}], highest score first."""
    index = _index(reader, table, name)
    vector, limit = _options(table, index, options)
    terms: list[tuple[int, bytes]] = []
    build = options.get("filter")
    if build is not None:
        if not callable(build):
            raise QueryError(f"vector_search({table!r}, {name!r}): filter must be a function "
                             "of q, like lambda q: q.eq(field, value)")
        expr = build(VectorFilter(index, lambda f, v: reader.coerce(table, f, v)))
        if not isinstance(expr, VectorFilterExpr):
            raise QueryError(f"vector_search({table!r}, {name!r}): the filter function must "
                             "return q.eq(...) or q.or_(...)")
        terms = expr.terms
    keyspace = vector_keyspace(index.name)
    keys = [vector_filter_key(p, v) for p, v in terms] if terms else [ANY_DOCUMENT]
    for key in keys:
        reader.record_interval(table, keyspace, Interval.point(key))
    reader.usage.range_read()
    hits = await nearest(reader.tx, side_table(reader.tx, table, index.name), vector, limit,
                         terms)
    return [{"_id": doc_id, "_score": score} for doc_id, score in hits]
