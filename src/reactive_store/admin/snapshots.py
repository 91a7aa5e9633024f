"""`_system/cli/exports:getLatest`, `_system/cli/queryImport` and `queryImport:list`.

`npx convex export` subscribes to `exports:getLatest` until the export it requested is
completed or failed; `npx convex import` reads `queryImport:list` (imports in progress) and
subscribes to `queryImport {importId}` through the states of its import. They read process
state (`SnapshotJobs`), not the database, so `SnapshotJobs.on_change` re-runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactive_store.app.registry import FunctionSpec, Registry, internal_query
from reactive_store.live.subscriptions import LiveQuery
from reactive_store.snapshot.jobs import SnapshotJobs
from reactive_store.validators import v

PREFIX = "_system/cli/"
PATHS = ("_system/cli/exports:", "_system/cli/queryImport:")


def functions(jobs: SnapshotJobs) -> dict[str, FunctionSpec]:
    @internal_query(args={})
    async def get_latest(ctx: Any) -> dict[str, Any] | None:
        """The newest export: its state and, once started, its snapshot timestamp."""
        return None if jobs.export is None else jobs.export.as_document()

    @internal_query(args={"importId": v.string()})
    async def query_import(ctx: Any, importId: str) -> dict[str, Any] | None:
        """One import and its state (None when this server has no such import)."""
        job = jobs.imports.get(importId)
        return None if job is None else job.as_document()

    @internal_query(args={})
    async def list_imports(ctx: Any) -> list[dict[str, Any]]:
        """Every import this server holds, newest first."""
        found = sorted(jobs.imports.values(), key=lambda j: j.created_ms, reverse=True)
        return [job.as_document() for job in found]

    return {"exports:getLatest": get_latest, "queryImport:default": query_import,
            "queryImport:list": list_imports}


def register(registry: Registry, jobs: SnapshotJobs) -> None:
    """Add the functions to the engine's system registry (`_system/cli/...`)."""
    for name, spec in functions(jobs).items():
        registry.add(PREFIX + name, spec)


def is_snapshot_query(live: LiveQuery) -> bool:
    """A live query reading snapshot job state (re-run when it changes)."""
    return live.path.startswith(PATHS)


def refresher(refresh: Callable[[Callable[[LiveQuery], bool]], None]) -> Callable[[], None]:
    """`SnapshotJobs.on_change` for a subscription manager's `refresh`."""
    return lambda: refresh(is_snapshot_query)
