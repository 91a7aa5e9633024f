"""System tables every deployment has: scheduled functions and cron state.

They live beside the app's tables and go through the same storage, read sets and commit
stream, so a query reading `_scheduled_functions` is pushed every change, like any other.
Apps read them with `ctx.db.system.get(id)` / `ctx.db.system.query(name)`; only the
scheduler writes them.
"""

from __future__ import annotations

from reactive_store.schema import Index, Schema, TableDefinition
from reactive_store.validators import ObjectValidator, v

SCHEDULED_FUNCTIONS = "_scheduled_functions"
CRON_JOBS = "_cron_jobs"

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
}


def with_system_tables(schema: Schema) -> Schema:
    """The app's schema plus the system tables (as pushed to the database)."""
    return Schema({**schema.tables, **SYSTEM_TABLES})


def is_system(table: str) -> bool:
    return table in SYSTEM_TABLES
