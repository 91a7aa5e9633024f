"""The `_system/cli/...` functions the official Convex CLI calls (admin key only).

`functions(deployment)` returns those over the deployment's data and app, keyed by the
path the CLI sends (`"_system/cli/tables:default"`); `dashboard.system.install` merges them
into the engine's system registry. `tables` serves `npx convex data`, `environment`
`npx convex env list|get`, `function_spec` `npx convex function-spec` and `run`'s list of
functions; each returns what the CLI reads, in Convex's own shapes. `snapshots`:
`exports:getLatest`, `queryImport` and `queryImport:list`, over the server's export and
import jobs (registered by the server, which owns the jobs). May import everything up to
`snapshot`.
"""

from __future__ import annotations

from reactive_store.admin import environment, function_spec, tables
from reactive_store.app.registry import FunctionSpec
from reactive_store.deployment import Deployment

__all__ = ["functions"]


def functions(deployment: Deployment) -> dict[str, FunctionSpec]:
    """The `_system/cli/...` functions over data and app (not the snapshot jobs'), keyed by
    their canonical paths."""
    return {**tables.functions(deployment), **environment.functions(deployment),
            **function_spec.functions(deployment)}
