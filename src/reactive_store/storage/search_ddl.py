"""Schema push for search and vector indexes: create each one's table, backfill it from the
stored documents (with progress), rebuild it when its declaration changes, drop it when the
schema no longer has it. An index's table is derived data: rebuilding it loses nothing."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg

from reactive_store.errors import SchemaError, ValidationError
from reactive_store.schema import Schema, SearchIndex, VectorIndex
from reactive_store.storage.ddl import BACKFILL_BATCH, MAX_REPORTED_IDS, PushReport, RowDecoder
from reactive_store.storage.names import Names, SideTable
from reactive_store.storage.search import SearchEntry, create_stats, filter_columns
from reactive_store.storage.vectors import (
    HNSW_MAX_DIMENSIONS,
    VectorBackend,
    VectorEntry,
    columns,
)

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
PROGRESS_EVERY = 10_000  # documents between two progress lines of a backfill
AnyIndex = SearchIndex | VectorIndex


def _registry(n: Names) -> str:
    return n.system("search_indexes")


async def push_search_indexes(conn: asyncpg.Connection, n: Names, schema: Schema,
                              decode_row: RowDecoder, report: PushReport,
                              progress: Progress | None = None) -> None:
    """Bring every search and vector index in line with `schema` (inside the push's
    transaction, so a refused push changes nothing)."""
    await conn.execute(f"""CREATE TABLE IF NOT EXISTS {_registry(n)} (
        table_name text NOT NULL, index_name text NOT NULL, kind text NOT NULL,
        definition text NOT NULL, PRIMARY KEY (table_name, index_name))""")
    stored = {(r[0], r[1]): (r[2], r[3]) for r in await conn.fetch(
        f"SELECT table_name, index_name, kind, definition FROM {_registry(n)}")}
    wanted: set[tuple[str, str]] = set()
    backend = await _vector_backend(conn, schema)
    for table_name, table in schema.tables.items():
        indexes: list[AnyIndex] = [*table.search_indexes.values(), *table.vector_indexes.values()]
        for index in indexes:
            kind = "search" if isinstance(index, SearchIndex) else "vector"
            definition = index.to_json()
            if isinstance(index, VectorIndex):
                definition["backend"] = backend(index).value
            text = json.dumps(definition, sort_keys=True)
            key = (table_name, index.name)
            wanted.add(key)
            side = n.side_table(kind, table_name, index.name, len(index.filter_fields),
                                definition.get("backend", ""))
            report.side_tables[key] = side
            if stored.get(key) == (kind, text):
                continue
            await conn.execute(f"DROP TABLE IF EXISTS {side.sql}, {side.stats.sql}")
            if isinstance(index, SearchIndex):
                await _build_search(conn, n, table_name, index, side, decode_row, progress)
            else:
                await _build_vector(conn, n, table_name, index, side, backend(index),
                                    decode_row, progress)
            await conn.execute(
                f"INSERT INTO {_registry(n)} VALUES ($1, $2, $3, $4) ON CONFLICT "
                "(table_name, index_name) DO UPDATE SET kind = $3, definition = $4",
                table_name, index.name, kind, text)
            label = f"{table_name}.{index.name}"
            if key in stored:
                report.rebuilt_indexes.append(label)
            elif table_name not in report.created_tables:
                report.created_indexes.append(label)
    for (table_name, index_name), (kind, _) in stored.items():
        if (table_name, index_name) not in wanted:
            side = n.side_table(kind, table_name, index_name)
            await conn.execute(f"DROP TABLE IF EXISTS {side.sql}, {side.stats.sql}")
            await conn.execute(f"DELETE FROM {_registry(n)} WHERE table_name = $1 AND "
                               "index_name = $2", table_name, index_name)
            report.retired_indexes.append(f"{table_name}.{index_name}")


async def _vector_backend(conn: asyncpg.Connection, schema: Schema
                          ) -> Callable[[VectorIndex], VectorBackend]:
    """How this server stores vector indexes; refuses when pgvector is missing and an
    index did not ask for the exact fallback."""
    wanted = [(t, i) for t, d in schema.tables.items() for i in d.vector_indexes.values()]
    if not wanted:
        return lambda index: VectorBackend.PGVECTOR
    if await conn.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"):
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return lambda index: VectorBackend.PGVECTOR
    refused = [f"{t}.{i.name}" for t, i in wanted if not i.exact_fallback]
    if refused:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10_000
        raise SchemaError(
            f"vector index {', '.join(refused)} needs the pgvector extension, which this "
            f"PostgreSQL server does not have: install pgvector (Debian/Ubuntu: apt-get install "
            f"postgresql-{major}-pgvector; or build it from source), or declare the index "
            "with exact_fallback=True to search it by exact scan without it")
    for table, index in wanted:
        log.warning("pgvector is not installed: vector index %s.%s uses its exact fallback "
                    "(every search scans the whole index; install pgvector for HNSW)",
                    table, index.name)
    return lambda index: VectorBackend.EXACT


async def _documents(conn: asyncpg.Connection, n: Names, table: str, label: str,
                     decode_row: RowDecoder, progress: Progress | None
                     ) -> AsyncIterator[list[tuple[str, dict[str, Any]]]]:
    """The table's documents in batches by id, reporting progress on long backfills."""
    total = await conn.fetchval(f"SELECT count(*) FROM {n.table(table)}")
    done, after, reported = 0, "", 0
    while True:
        rows = await conn.fetch(
            f"SELECT _id, _creation_time, doc FROM {n.table(table)} WHERE _id > $1 "
            f"ORDER BY _id LIMIT {BACKFILL_BATCH}", after)
        if not rows:
            break
        yield [(r[0], decode_row(r[0], r[1], r[2])) for r in rows]
        done, after = done + len(rows), rows[-1][0]
        if done - reported >= PROGRESS_EVERY:
            reported = done
            _say(progress, f"backfilling {label}: {done:,}/{total:,} documents")
    if total >= PROGRESS_EVERY:
        _say(progress, f"backfilled {label}: {done:,} documents")


def _say(progress: Progress | None, line: str) -> None:
    log.info("%s", line)
    if progress is not None:
        progress(line)


async def _build_search(conn: asyncpg.Connection, n: Names, table: str, index: SearchIndex,
                        side: SideTable, decode_row: RowDecoder,
                        progress: Progress | None) -> None:
    filters = filter_columns(len(index.filter_fields))
    await conn.execute(f"""CREATE TABLE {side.sql} (
        doc_id text COLLATE "C" NOT NULL, term text COLLATE "C" NOT NULL,
        tf integer NOT NULL, len integer NOT NULL,
        {''.join(f'{f} bytea NOT NULL, ' for f in filters)}PRIMARY KEY (term, doc_id))""")
    names = ["doc_id", "term", "tf", "len", *filters]
    label = f"search index {table}.{index.name}"
    async for batch in _documents(conn, n, table, label, decode_row, progress):
        records = []
        for doc_id, doc in batch:
            entry = SearchEntry.of(index, doc)
            if entry is not None:
                records += entry.rows(doc_id)
        if records:
            await conn.copy_records_to_table(side.name, records=records, columns=names,
                                             schema_name=side.schema)
    await conn.execute(f"CREATE INDEX ON {side.sql} (doc_id)")
    for f in filters:
        await conn.execute(f"CREATE INDEX ON {side.sql} ({f}, term)")
    await create_stats(conn, side)
    await conn.execute(f"ANALYZE {side.sql}")


async def _build_vector(conn: asyncpg.Connection, n: Names, table: str, index: VectorIndex,
                        side: SideTable, backend: VectorBackend, decode_row: RowDecoder,
                        progress: Progress | None) -> None:
    filters = filter_columns(len(index.filter_fields))
    vec = (f"vec vector({index.dimensions}) NOT NULL" if backend is VectorBackend.PGVECTOR
           else "vec float8[] NOT NULL, norm float8 NOT NULL")
    await conn.execute(f"""CREATE TABLE {side.sql} (doc_id text COLLATE "C" PRIMARY KEY,
        {vec}{''.join(f', {f} bytea NOT NULL' for f in filters)})""")
    names = columns(backend, len(filters))
    label = f"vector index {table}.{index.name}"
    bad: list[str] = []
    first_error = ""
    async for batch in _documents(conn, n, table, label, decode_row, progress):
        rows = []
        for doc_id, doc in batch:
            try:
                entry = VectorEntry.of(table, index, doc)
            except ValidationError as exc:
                first_error = first_error or exc.message
                bad.append(doc_id)
                continue
            if entry is not None:
                rows.append(entry.row(doc_id, backend))
        if rows and not bad:
            await _insert_vectors(conn, side, backend, names, rows)
    if bad:
        shown = ", ".join(bad[:MAX_REPORTED_IDS])
        more = f" (and {len(bad) - MAX_REPORTED_IDS} more)" if len(bad) > MAX_REPORTED_IDS else ""
        raise SchemaError(f"cannot build {label}: {len(bad)} document(s) have a bad vector: "
                          f"{shown}{more}; first error: {first_error}")
    for f in filters:
        await conn.execute(f"CREATE INDEX ON {side.sql} ({f})")
    if backend is VectorBackend.PGVECTOR and index.dimensions <= HNSW_MAX_DIMENSIONS:
        _say(progress, f"building the HNSW graph of {label}")
        await conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
        await conn.execute(f"CREATE INDEX ON {side.sql} USING hnsw (vec vector_cosine_ops)")
    elif backend is VectorBackend.PGVECTOR:
        log.warning("%s has %d dimensions, more than pgvector's HNSW indexes take (%d): "
                    "its searches are exact scans", label, index.dimensions,
                    HNSW_MAX_DIMENSIONS)
    await conn.execute(f"ANALYZE {side.sql}")


async def _insert_vectors(conn: asyncpg.Connection, side: SideTable, backend: VectorBackend,
                          names: list[str], rows: list[tuple[Any, ...]]) -> None:
    if backend is VectorBackend.EXACT:
        params = ", ".join(f"${i + 1}" for i in range(len(names)))
        await conn.executemany(
            f"INSERT INTO {side.sql} ({', '.join(names)}) VALUES ({params})", rows)
        return
    arrays = [list(column) for column in zip(*rows, strict=True)]
    types = ["text[]", "text[]", *(["bytea[]"] * (len(names) - 2))]
    unnest = ", ".join(f"${i + 1}::{t}" for i, t in enumerate(types))
    await conn.execute(
        f"INSERT INTO {side.sql} ({', '.join(names)}) SELECT d, v::vector"
        f"{''.join(f', f{i}' for i in range(len(names) - 2))} FROM unnest({unnest}) "
        f"AS u(d, v{''.join(f', f{i}' for i in range(len(names) - 2))})", *arrays)

