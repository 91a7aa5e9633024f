"""Environment variables for `npx convex env list|get`: `_system/cli/queryEnvironmentVariables`
(every variable, by name) and its `:get` (one, or null).

Both read the `_environment_variables` table in the query's own snapshot, so the answer is
what is committed (not this process's cache) and a change re-runs a subscription. Setting
and removing go through `POST /api/update_environment_variables` (server.environment).
"""

from __future__ import annotations

from typing import Any

from reactive_store.app.registry import FunctionSpec, internal_query
from reactive_store.deployment import Deployment
from reactive_store.engine.db import SystemReader
from reactive_store.engine.environment import find, read_all
from reactive_store.validators import v


def _system(ctx: Any) -> SystemReader:
    """The internal system tables, read (and recorded) in the query's transaction."""
    return SystemReader(ctx.db.reads, internal=True)


def functions(deployment: Deployment) -> dict[str, FunctionSpec]:
    @internal_query(args={})
    async def list_all(ctx: Any) -> list[dict[str, str]]:
        """Every variable as `{name, value}`, sorted by name."""
        variables = await read_all(_system(ctx))
        return [{"name": name, "value": value} for name, value in sorted(variables.items())]

    @internal_query(args={"name": v.string()})
    async def get(ctx: Any, name: str) -> dict[str, str] | None:
        """`{name, value}` of one variable, or null when it is not set."""
        doc = await find(_system(ctx), name)
        return None if doc is None else {"name": name, "value": doc["value"]}

    return {"_system/cli/queryEnvironmentVariables:default": list_all,
            "_system/cli/queryEnvironmentVariables:get": get}
