"""System tables every deployment has: scheduled functions, cron state, file metadata and
environment variables.

They live beside the app's tables and go through the same storage, read sets and commit
stream, so a query reading `_scheduled_functions` or `_storage` is pushed every change, like
any other. Apps read them with `ctx.db.system.get(id)` / `ctx.db.system.query(name)`, except
the internal ones (`_environment_variables`, read through `ctx.env`); only the engine's own
writers (scheduler, file storage, environment) write them.
"""

from __future__ import annotations

from reactive_store.schema import Index, Schema, TableDefinition
from reactive_store.validators import ObjectValidator, v

SCHEDULED_FUNCTIONS = "_scheduled_functions"
CRON_JOBS = "_cron_jobs"
STORAGE = "_storage"
ENVIRONMENT_VARIABLES = "_environment_variables"
# System tables functions never read through `ctx.db.system` (values reach them as ctx.env).
INTERNAL_TABLES = frozenset({ENVIRONMENT_VARIABLES})

JOB_STATES = ("pending", "inProgress", "success", "failed", "canceled")


def _table(fields: dict[str, object], indexes: dict[str, tuple[str, ...]]) -> TableDefinition:
    table = TableDefinition(ObjectValidator(fields))  # type: ignore[arg-type]
    for name, columns in indexes.items():
        table.indexes[name] = Index(name, columns)
    return table


SYSTEM_TABLES: dict[str, TableDefinition] = {
    SCHEDULED_FUNCTIONS: _table(
        {
            "name": v.string(),
            "kind": v.union(v.literal("mutation"), v.literal("action")),
            "args": v.any(),
            "scheduledTime": v.float64(),
            "state": v.object({
                "kind": v.union(*(v.literal(s) for s in JOB_STATES)),
                "error": v.optional(v.string()),
            }),
            "result": v.optional(v.any()),
            "completedTime": v.optional(v.float64()),
            "cron": v.optional(v.string()),
        },
        {"by_state": ("state.kind", "scheduledTime"), "by_cron": ("cron", "scheduledTime")},
    ),
    CRON_JOBS: _table(
        {
            "name": v.string(),
            "schedule": v.string(),
            "function": v.string(),
            "args": v.any(),
            "nextRun": v.float64(),
            "lastRun": v.optional(v.float64()),
        },
        {"by_name": ("name",), "by_next_run": ("nextRun",)},
    ),
    # One document per stored file (Convex's shape); the bytes live in storage/files.py.
    STORAGE: _table(
        {
            "sha256": v.string(),  # base64 of the SHA-256 digest, as Convex reports it
            "size": v.float64(),
            "contentType": v.optional(v.string()),
        },
        {},
    ),
    ENVIRONMENT_VARIABLES: _table(
        {"name": v.string(), "value": v.string()},
        {"by_name": ("name",)},
    ),
}


# The numbers Convex gives these tables by default (512 + its DefaultTableNumber), which a
# new deployment gives them too: ids of `_storage` and `_scheduled_functions` documents
# then carry the number their Convex counterparts (the virtual tables) have, so file ids
# kept in documents stay valid when a snapshot moves between the two, in either direction.
SYSTEM_TABLE_NUMBERS: dict[str, int] = {
    ENVIRONMENT_VARIABLES: 525,
    CRON_JOBS: 531,
    SCHEDULED_FUNCTIONS: 539,
    STORAGE: 540,
}


def with_system_tables(schema: Schema) -> Schema:
    """The app's schema plus the system tables (as pushed to the database)."""
    return Schema({**schema.tables, **SYSTEM_TABLES})


def is_system(table: str) -> bool:
    return table in SYSTEM_TABLES


def readable_system_tables() -> dict[str, TableDefinition]:
    """The system tables apps can read and reference (`ctx.db.system`, `v.id`)."""
    return {name: table for name, table in SYSTEM_TABLES.items() if not is_internal(name)}


def is_internal(table: str) -> bool:
    """A system table that `ctx.db.system` does not expose."""
    return table in INTERNAL_TABLES
