"""Vector search in Postgres: one table per vector index, searched by cosine similarity.

With pgvector, `_vector_<table>__<index>(doc_id, vec vector(d), f0..fk)` carries an HNSW
index (`vector_cosine_ops`) and a query is `ORDER BY vec <=> q LIMIT k` with iterative
index scans, so filters do not starve the result; when the index returns fewer than `k`
rows the same query runs again as an exact scan. Above 2,000 dimensions (pgvector's HNSW
limit) and on a server without pgvector (only for indexes declared `exact_fallback=True`),
every search is an exact scan: the answer is never approximate beyond HNSW's own recall.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

from reactive_store.errors import ValidationError
from reactive_store.keys import MISSING, field_value
from reactive_store.schema import VectorIndex
from reactive_store.storage.names import SideTable
from reactive_store.storage.search import Statements, filter_keys
from reactive_store.types import Document

HNSW_MAX_DIMENSIONS = 2000
EF_SEARCH = 100  # candidates HNSW keeps while searching (pgvector's default is 40)


class VectorBackend(enum.Enum):
    """How a vector index is stored and searched."""

    PGVECTOR = "pgvector"  # vector(d); HNSW up to 2,000 dimensions, exact scan above
    EXACT = "exact"  # float8[] and its norm; every search is an exact scan, no extension


def check_vector(value: Any, dimensions: int, where: str) -> list[float]:
    """`value` as a list of `dimensions` finite floats with a direction, or ValidationError."""
    if not isinstance(value, list):
        raise ValidationError(f"{where}: expected an array of {dimensions} numbers, "
                              f"got {type(value).__name__}")
    if len(value) != dimensions:
        raise ValidationError(f"{where}: vector has {len(value)} dimensions, the index "
                              f"expects {dimensions}")
    out: list[float] = []
    for x in value:
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise ValidationError(f"{where}: every element must be a finite number, got {x!r}")
        out.append(float(x))
    if not any(out):
        raise ValidationError(f"{where}: a vector of zeros has no direction (cosine "
                              "similarity is undefined for it)")
    return out


@dataclass(frozen=True)
class VectorEntry:
    """A document as one vector index sees it: its vector and its filter values."""

    vector: list[float]
    filters: list[bytes]

    @staticmethod
    def of(table: str, index: VectorIndex, doc: Document | None) -> VectorEntry | None:
        """None when the document is absent or has no vector field (it is not indexed);
        ValidationError when the field is there but is not a vector of the right length."""
        if doc is None:
            return None
        value = field_value(doc, index.vector_field)
        if value is MISSING or value is None:
            return None
        where = f"table {table!r}, vector index {index.name!r}, field {index.vector_field!r}"
        return VectorEntry(check_vector(value, index.dimensions, where),
                           filter_keys(index.filter_fields, doc))

    def row(self, doc_id: str, backend: VectorBackend) -> tuple[Any, ...]:
        if backend is VectorBackend.PGVECTOR:
            return (doc_id, vector_text(self.vector), *self.filters)
        return (doc_id, self.vector, math.sqrt(sum(x * x for x in self.vector)), *self.filters)


def vector_text(vector: list[float]) -> str:
    """pgvector's text form of a vector."""
    return "[" + ",".join(repr(x) for x in vector) + "]"


def columns(backend: VectorBackend, filters: int) -> list[str]:
    vec = ["vec"] if backend is VectorBackend.PGVECTOR else ["vec", "norm"]
    return ["doc_id", *vec, *(f"f{i}" for i in range(filters))]


def backend_of(side: SideTable) -> VectorBackend:
    return VectorBackend(side.backend)


async def write_vector(tx: Statements, side: SideTable, doc_id: str,
                       new: VectorEntry | None) -> None:
    """Set (or with None, remove) a document's row in one vector index."""
    backend = backend_of(side)
    if new is None:
        await tx.execute(f"DELETE FROM {side.sql} WHERE doc_id = $1", doc_id)
        return
    names = columns(backend, len(new.filters))
    cast = "::vector" if backend is VectorBackend.PGVECTOR else "::float8[]"
    values = ", ".join(f"${i + 1}{cast if i == 1 else ''}" for i in range(len(names)))
    updates = ", ".join(f"{c} = excluded.{c}" for c in names[1:])
    await tx.execute(
        f"INSERT INTO {side.sql} ({', '.join(names)}) VALUES ({values}) "
        f"ON CONFLICT (doc_id) DO UPDATE SET {updates}", *new.row(doc_id, backend))


def nearest_statement(side: SideTable, vector: list[float], limit: int,
                      anyof: list[tuple[int, bytes]]) -> tuple[str, list[Any]]:
    """The SQL and arguments of a nearest-neighbour query (the benchmark runs it raw too).

    `anyof` is the filter: a document matches when one of its (column, value) pairs holds.
    """
    backend = backend_of(side)
    args: list[Any] = []
    conditions = []
    for column, value in anyof:
        args.append(value)
        conditions.append(f"f{column} = ${len(args)}")
    where = f"WHERE ({' OR '.join(conditions)})" if conditions else ""
    args.append(limit)
    k = f"${len(args)}"
    if backend is VectorBackend.PGVECTOR:
        args.append(vector_text(vector))
        q = f"${len(args)}::vector"
        return (f"SELECT doc_id, 1 - (vec <=> {q}) AS score FROM {side.sql} {where} "
                f"ORDER BY vec <=> {q} LIMIT {k}", args)
    args.append(vector)
    q = f"${len(args)}::float8[]"
    norm = math.sqrt(sum(x * x for x in vector))
    score = f"(SELECT sum(a * b) FROM unnest(vec, {q}) AS t(a, b)) / (norm * {norm!r})"
    return (f"SELECT doc_id, {score} AS score FROM {side.sql} {where} "
            f"ORDER BY score DESC, doc_id LIMIT {k}", args)


async def nearest(tx: Statements, side: SideTable, vector: list[float], limit: int,
                  anyof: list[tuple[int, bytes]]) -> list[tuple[str, float]]:
    """The `limit` documents most similar to `vector` (cosine), most similar first."""
    backend = backend_of(side)
    sql, args = nearest_statement(side, vector, limit, anyof)
    if backend is VectorBackend.PGVECTOR:
        await tx.execute(f"SET LOCAL hnsw.ef_search = {max(EF_SEARCH, limit)}")
        await tx.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
    rows = await tx.fetch(sql, *args)
    if backend is VectorBackend.PGVECTOR and len(rows) < limit:
        # HNSW stopped short (a selective filter, or unreachable nodes): scan exactly.
        await tx.execute("SET LOCAL enable_indexscan = off")
        rows = await tx.fetch(sql, *args)
        await tx.execute("SET LOCAL enable_indexscan = on")
    found = [(r[0], float(r[1])) for r in rows]
    found.sort(key=lambda hit: (-hit[1], hit[0]))  # relaxed_order may return near-ties swapped
    return found
