"""Schema push: create what the schema needs in Postgres, backfill new index keys, and refuse
changes the stored documents do not satisfy (listing their ids). Nothing is ever dropped."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from reactive_store.errors import SchemaError, ValidationError
from reactive_store.schema import Schema, TableDefinition, all_indexes
from reactive_store.storage.commit_log_ddl import commit_log_ddl
from reactive_store.storage.names import Names, SideTable

MAX_REPORTED_IDS = 20
BACKFILL_BATCH = 500
# Table numbers (they are in every id, see ids.py) as Convex allots them: user tables above
# the 10,000 it reserves for system tables, system tables above its 512 legacy numbers.
RESERVED_SYSTEM_NUMBERS = 10_000
LEGACY_NUMBERS = 512

# Decodes a stored row into the document that index keys are computed from.
RowDecoder = Callable[[str, float, bytes], dict[str, Any]]
# More of the push, run last inside its transaction (search and vector indexes).
PushStep = Callable[[asyncpg.Connection, "PushReport"], Awaitable[None]]


@dataclass
class PushReport:
    """What a schema push did, for the terminal and for tests."""

    created_tables: list[str] = field(default_factory=list)
    created_indexes: list[str] = field(default_factory=list)
    rebuilt_indexes: list[str] = field(default_factory=list)
    retired_tables: list[str] = field(default_factory=list)
    retired_indexes: list[str] = field(default_factory=list)
    table_numbers: dict[str, int] = field(default_factory=dict)
    side_tables: dict[tuple[str, str], SideTable] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(
            self.created_tables
            or self.created_indexes
            or self.rebuilt_indexes
            or self.retired_tables
            or self.retired_indexes
        )


def _canonical(text: str | bytes) -> str:
    # Compare stored and new declarations as text: parsed JSON would equate 1, 1.0 and true.
    return json.dumps(json.loads(text), sort_keys=True)


def system_ddl(n: Names) -> list[str]:
    """The deployment's system objects: table registry, commit log, timestamp sequence."""
    return [
        f"CREATE SCHEMA IF NOT EXISTS {n.schema}",
        f"""CREATE TABLE IF NOT EXISTS {n.system('tables')} (
            name text PRIMARY KEY, number integer UNIQUE NOT NULL,
            document jsonb NOT NULL, active boolean NOT NULL DEFAULT true)""",
        f"""CREATE TABLE IF NOT EXISTS {n.system('indexes')} (
            table_name text NOT NULL, index_name text NOT NULL, fields jsonb NOT NULL,
            active boolean NOT NULL DEFAULT true, PRIMARY KEY (table_name, index_name))""",
        *commit_log_ddl(n),
        *file_ddl(n),
    ]


def file_ddl(n: Names) -> list[str]:
    """File bytes (storage/files.py): one row per file, its bytes in fixed-size chunks, the
    upload tokens already used, and the secret that signs upload and download URLs."""
    blobs, chunks = n.system("file_blobs"), n.system("file_chunks")
    return [
        f"""CREATE TABLE IF NOT EXISTS {blobs} (
            storage_id text COLLATE "C" PRIMARY KEY, size bigint NOT NULL,
            sha256 bytea NOT NULL, content_type text, chunk_size integer NOT NULL,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp())""",
        f"""CREATE TABLE IF NOT EXISTS {chunks} (
            storage_id text COLLATE "C" NOT NULL REFERENCES {blobs} ON DELETE CASCADE,
            seq integer NOT NULL, data bytea NOT NULL, PRIMARY KEY (storage_id, seq))""",
        # File bytes are usually compressed already: store them out of line, uncompressed
        # (no wasted pglz attempt, and substring() reads only the slices a Range needs).
        f"""DO $$ BEGIN
            IF (SELECT attstorage FROM pg_attribute WHERE attrelid = '{chunks}'::regclass
                AND attname = 'data') <> 'e' THEN
                ALTER TABLE {chunks} ALTER COLUMN data SET STORAGE EXTERNAL;
            END IF;
        END $$""",
        f"""CREATE TABLE IF NOT EXISTS {n.system('upload_claims')} (
            nonce text PRIMARY KEY, expires_at timestamptz NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS {n.system('file_secret')} (
            id integer PRIMARY KEY CHECK (id = 1), secret bytea NOT NULL)""",
    ]


def _table_ddl(n: Names, name: str, table: TableDefinition) -> list[str]:
    columns = ", ".join(f"{n.key_column(i)} bytea" for i in all_indexes(table))
    return [
        f"""CREATE TABLE IF NOT EXISTS {n.table(name)} (
            _id text COLLATE "C" PRIMARY KEY, _creation_time double precision NOT NULL,
            doc json NOT NULL, {columns})"""
    ]


def _index_ddl(n: Names, table: str, index: str) -> list[str]:
    return [
        f"ALTER TABLE {n.table(table)} ADD COLUMN IF NOT EXISTS {n.key_column(index)} bytea",
        f"CREATE UNIQUE INDEX IF NOT EXISTS {n.index_name(table, index)} "
        f"ON {n.table(table)} ({n.key_column(index)})",
    ]


def new_table_number(name: str, taken: set[int], preferred: Mapping[str, int]) -> int:
    """The number a new table gets: its preferred one when free (system tables: Convex's
    default numbers), else a user table (no leading '_') max(taken, 10000) + 1 and a system
    table the least free number above 512. Existing tables keep theirs, whatever they are
    (deployments made before this scheme numbered every table from 1)."""
    if name in preferred and preferred[name] not in taken:
        return preferred[name]
    if not name.startswith("_"):
        return max(max(taken, default=0), RESERVED_SYSTEM_NUMBERS) + 1
    number = LEGACY_NUMBERS + 1
    while number in taken:
        number += 1
    return number


async def push_schema(
    conn: asyncpg.Connection, n: Names, schema: Schema, decode_row: RowDecoder,
    then: PushStep | None = None, preferred_numbers: Mapping[str, int] | None = None,
) -> PushReport:
    """Bring the database in line with `schema` in one transaction, or change nothing.
    New tables are numbered by `new_table_number`."""
    report = PushReport()
    async with conn.transaction():
        await conn.execute("SET LOCAL lock_timeout = '30s'")
        await conn.execute(f"SELECT pg_advisory_xact_lock({n.push_lock})")
        for statement in system_ddl(n):
            await conn.execute(statement)
        stored_tables = {
            r["name"]: r
            for r in await conn.fetch(
                f"SELECT name, number, document, active FROM {n.system('tables')}"
            )
        }
        stored_indexes = {
            (r["table_name"], r["index_name"]): r
            for r in await conn.fetch(
                f"SELECT table_name, index_name, fields, active FROM {n.system('indexes')}"
            )
        }
        taken = {r["number"] for r in stored_tables.values()}
        for name, table in schema.tables.items():
            document = json.dumps(table.validator.to_json(), sort_keys=True)
            old = stored_tables.get(name)
            if old is None:
                number = new_table_number(name, taken, preferred_numbers or {})
                for statement in _table_ddl(n, name, table):
                    await conn.execute(statement)
                await conn.execute(
                    f"INSERT INTO {n.system('tables')} (name, number, document) VALUES ($1,$2,$3)",
                    name, number, document,
                )
                report.created_tables.append(name)
                report.table_numbers[name] = number
                taken.add(number)
            else:
                report.table_numbers[name] = old["number"]
                if _canonical(old["document"]) != _canonical(document) or not old["active"]:
                    await _check_documents(conn, n, name, table, decode_row)
                    await conn.execute(
                        f"UPDATE {n.system('tables')} SET document = $2, active = true "
                        "WHERE name = $1",
                        name, document,
                    )
            await _push_indexes(conn, n, name, table, stored_indexes, report, decode_row)
        await _retire_removed(conn, n, schema, stored_tables, stored_indexes, report)
        if then is not None:
            await then(conn, report)
    return report


async def _retire_removed(conn: asyncpg.Connection, n: Names, schema: Schema,
                          stored_tables: dict[str, Any], stored_indexes: dict[Any, Any],
                          report: PushReport) -> None:
    """Mark tables and indexes the schema no longer has inactive (their data stays)."""
    for name, row in stored_tables.items():
        if name not in schema.tables and row["active"]:
            await conn.execute(
                f"UPDATE {n.system('tables')} SET active = false WHERE name = $1", name
            )
            report.retired_tables.append(name)
    for (table_name, index_name), row in stored_indexes.items():
        in_schema = table_name in schema.tables and index_name in all_indexes(
            schema.tables[table_name]
        )
        if not in_schema and row["active"]:
            await conn.execute(
                f"UPDATE {n.system('indexes')} SET active = false "
                "WHERE table_name = $1 AND index_name = $2",
                table_name, index_name,
            )
            report.retired_indexes.append(f"{table_name}.{index_name}")


async def _push_indexes(
    conn: asyncpg.Connection,
    n: Names,
    name: str,
    table: TableDefinition,
    stored: dict[tuple[str, str], Any],
    report: PushReport,
    decode_row: RowDecoder,
) -> None:
    for index_name, index in all_indexes(table).items():
        fields = json.dumps(list(index.fields))
        old = stored.get((name, index_name))
        if old is not None and json.loads(old["fields"]) == list(index.fields) and old["active"]:
            continue
        for statement in _index_ddl(n, name, index_name):
            await conn.execute(statement)
        await _backfill(conn, n, name, index_name, table, decode_row)
        await conn.execute(
            f"""INSERT INTO {n.system('indexes')} (table_name, index_name, fields, active)
            VALUES ($1, $2, $3, true) ON CONFLICT (table_name, index_name)
            DO UPDATE SET fields = excluded.fields, active = true""",
            name, index_name, fields,
        )
        if old is None:
            if name not in report.created_tables:
                report.created_indexes.append(f"{name}.{index_name}")
        else:
            report.rebuilt_indexes.append(f"{name}.{index_name}")


async def _backfill(
    conn: asyncpg.Connection,
    n: Names,
    name: str,
    index_name: str,
    table: TableDefinition,
    decode_row: RowDecoder,
) -> None:
    """Recompute one index's key for every row, in batches by primary key."""
    index = all_indexes(table)[index_name]
    column = n.key_column(index_name)
    after = ""
    while True:
        rows = await conn.fetch(
            f"SELECT _id, _creation_time, doc FROM {n.table(name)} WHERE _id > $1 "
            f"ORDER BY _id LIMIT {BACKFILL_BATCH}",
            after,
        )
        if not rows:
            return
        updates = []
        for row in rows:
            doc = decode_row(row["_id"], row["_creation_time"], row["doc"])
            try:
                updates.append((row["_id"], index.key(doc)))
            except ValidationError as exc:
                raise SchemaError(f"cannot build index {name}.{index_name}: {exc}") from None
        await conn.executemany(
            f"UPDATE {n.table(name)} SET {column} = $2 WHERE _id = $1", updates
        )
        after = rows[-1]["_id"]


async def _check_documents(
    conn: asyncpg.Connection, n: Names, name: str, table: TableDefinition, decode_row: RowDecoder
) -> None:
    """Refuse the push when stored documents no longer validate; name up to 20 of them."""
    bad: list[str] = []
    total = 0
    first_error = ""
    async for row in conn.cursor(
        f"SELECT _id, _creation_time, doc FROM {n.table(name)}", prefetch=BACKFILL_BATCH
    ):
        doc = decode_row(row["_id"], row["_creation_time"], row["doc"])
        fields = {k: v for k, v in doc.items() if not k.startswith("_")}
        try:
            table.validator.validate(fields, name)
        except ValidationError as exc:
            total += 1
            first_error = first_error or exc.message
            if len(bad) < MAX_REPORTED_IDS:
                bad.append(row["_id"])
    if total:
        more = f" (and {total - len(bad)} more)" if total > len(bad) else ""
        raise SchemaError(
            f"schema change refused: {total} document(s) in table {name!r} no longer "
            f"validate: {', '.join(bad)}{more}; first error: {first_error}"
        )
