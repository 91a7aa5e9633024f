"""Tables and documents for `npx convex data`: `_system/cli/tables`, `tableData`,
`tableSize` and `queryTable` (what `convex dev` watches to retry a push).

Documents go out as stored, int64 fields as int64 (the CLI prints them as `5n`); counts are
float64, a JavaScript number, as Convex's `count()` gives. A page holds at most MAX_PAGE
documents: the CLI asks again with the cursor until it has `--limit` of them.
"""

from __future__ import annotations

import random
from typing import Any

from reactive_store.app.registry import FunctionSpec, internal_query
from reactive_store.deployment import Deployment
from reactive_store.engine.query import ScanRecord
from reactive_store.engine.system_tables import is_system
from reactive_store.errors import QueryError
from reactive_store.schema import BY_ID
from reactive_store.validators import v

MAX_PAGE = 1000
COUNT_ALL = 2**62  # tableSize counts every document; the bound only satisfies `count`

# Convex's `paginationOptsValidator`: the CLI sends numItems and cursor.
PAGINATION = v.object({
    "numItems": v.float64(), "cursor": v.union(v.string(), v.null()),
    "endCursor": v.optional(v.union(v.string(), v.null())), "id": v.optional(v.float64()),
    "maximumRowsRead": v.optional(v.float64()), "maximumBytesRead": v.optional(v.float64()),
})
ORDER = v.union(v.literal("asc"), v.literal("desc"))


def user_tables(deployment: Deployment) -> list[str]:
    """The app's tables, sorted (system tables start with `_` and are not listed)."""
    return sorted(deployment.engine.app.schema.tables)


def check_table(deployment: Deployment, table: str) -> None:
    """Raise QueryError naming the app's tables when `table` is neither one of them nor a
    system table (`ctx.db.system` refuses the internal ones with its own message)."""
    if table in deployment.engine.app.schema.tables or is_system(table):
        return
    known = ", ".join(user_tables(deployment)) or "none"
    raise QueryError(f"there is no table {table!r} in this deployment (its tables: {known})")


async def count_documents(ctx: Any, table: str, limit: int) -> int:
    """How many documents `table` holds (up to `limit`); the whole table is in the read set,
    so an insert or delete anywhere in it re-runs the query."""
    ctx.db.reads.record_scan(ScanRecord(table, BY_ID, b"", None, False, exhausted=True))
    found: int = await ctx.db.reads.tx.count(table, limit)
    return found


def functions(deployment: Deployment) -> dict[str, FunctionSpec]:
    @internal_query(args={"paginationOpts": PAGINATION})
    async def tables(ctx: Any, paginationOpts: dict[str, Any]) -> dict[str, Any]:
        """The app's tables as one page of `{name}` (Convex's shape, kept paginated)."""
        return {"page": [{"name": name} for name in user_tables(deployment)],
                "isDone": True, "continueCursor": "end"}

    @internal_query(args={"table": v.string(), "order": ORDER, "paginationOpts": PAGINATION})
    async def table_data(ctx: Any, table: str, order: str, paginationOpts: dict[str, Any]
                         ) -> dict[str, Any]:
        """One page of a table's documents by creation time, newest first for `desc`."""
        check_table(deployment, table)
        source = ctx.db.system if table.startswith("_") else ctx.db
        items = max(1, min(int(paginationOpts["numItems"]), MAX_PAGE))
        # Each page is its own one-off subscription: no journal to keep (stable=False).
        result: dict[str, Any] = await source.query(table).order(order).paginate(
            {"numItems": items, "cursor": paginationOpts["cursor"]}, stable=False)
        return result

    @internal_query(args={"tableName": v.string()})
    async def table_size(ctx: Any, tableName: str) -> float:
        """How many documents the table holds."""
        check_table(deployment, tableName)
        return float(await count_documents(ctx, tableName, COUNT_ALL))

    @internal_query(args={"tableName": v.string()})
    async def query_table(ctx: Any, tableName: str) -> float:
        """A new random number whenever the table changes (`convex dev` waits on it)."""
        check_table(deployment, tableName)
        await count_documents(ctx, tableName, 1)
        return random.random()

    return {"_system/cli/tables:default": tables,
            "_system/cli/tableData:default": table_data,
            "_system/cli/tableSize:default": table_size,
            "_system/cli/queryTable:default": query_table}
