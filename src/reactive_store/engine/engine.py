"""The Engine: queries, mutations and actions of an app, against its store (see core.py)."""

from __future__ import annotations

from typing import Any

from reactive_store.app.loader import App
from reactive_store.app.registry import Kind, Registry
from reactive_store.engine.commit_ts import CommitTimestamps
from reactive_store.engine.context import ActionCtx, Identity
from reactive_store.engine.core import PERMISSION_DENIED, EngineCore
from reactive_store.engine.db import DatabaseReader
from reactive_store.engine.environment import EnvironmentCache
from reactive_store.engine.files import FileService
from reactive_store.engine.mutations import RETRY_UNAVAILABLE_SECONDS, MutationRunner, WriteBody
from reactive_store.engine.outcome import (
    EngineConfig,
    MutationHooks,
    Outcome,
    QueryFailure,
    ahead_of,
    label,
    seed_of,
    unsequenced,
    usage_of,
)
from reactive_store.engine.queries import (
    AHEAD_ATTEMPTS,
    ENV_ATTEMPTS,
    MAX_LOST_SNAPSHOTS,
    QueryRunner,
)
from reactive_store.engine.scheduler import ActionScheduler
from reactive_store.engine.storage_api import ActionStorage
from reactive_store.engine.vector import vector_search
from reactive_store.observe.observer import Observer
from reactive_store.storage import Store

# Names other modules import from here (the Engine was one module before it was split).
__all__ = [
    "AHEAD_ATTEMPTS",
    "ENV_ATTEMPTS",
    "MAX_LOST_SNAPSHOTS",
    "PERMISSION_DENIED",
    "RETRY_UNAVAILABLE_SECONDS",
    "Engine",
    "EngineConfig",
    "EngineCore",
    "MutationHooks",
    "MutationRunner",
    "Outcome",
    "QueryFailure",
    "QueryRunner",
    "WriteBody",
    "ahead_of",
    "label",
    "seed_of",
    "unsequenced",
    "usage_of",
]


class Engine(QueryRunner, MutationRunner):
    """Runs an app's functions against its store."""

    def __init__(self, store: Store, app: App, config: EngineConfig | None = None,
                 observer: Observer | None = None) -> None:
        self.store = store
        self.observer = observer or Observer()
        # The dashboard's own functions (`_system/...`, all internal: admin only); set by
        # the server, empty otherwise.
        self.system = Registry()
        self.app = app
        self.config = config or EngineConfig()
        self.env = EnvironmentCache()  # loaded and kept fresh by the deployment
        self.files = FileService(store, self.config.files, self.config.public_url,
                                 self.write_system)  # started by the deployment
        # The deployment gives it the commit stream (`timestamps.stream`).
        self.timestamps = CommitTimestamps(store)

    # -- actions ----------------------------------------------------------------------------
    async def run_action(
        self, ref: Any, args: Any, identity: Identity | None = None, *, internal_ok: bool = False,
    ) -> Outcome:
        """Run an action outside any transaction; it reaches data through ctx.run_*."""
        with self.observer.execution(label(ref), "action", identity) as run:
            spec, checked = self.prepare(ref, args, Kind.ACTION, internal_ok)
            value, encoded = await self.call(spec, self.action_ctx(identity), checked)
        return Outcome(value, encoded, log_lines=run.lines)

    def action_ctx(self, identity: Identity | None) -> ActionCtx:
        """The ctx of an action or an HTTP route, acting as `identity`."""
        return ActionCtx(_ActionCalls(self, identity), identity,
                         ActionScheduler(lambda: self.app.functions, self.write_system),
                         self.env.view(), ActionStorage(self.files, self.read, self.write_system))

    async def run(self, ref: Any, args: Any, identity: Identity | None = None, *,
                  internal_ok: bool = False) -> Outcome:
        """Run a function of whatever kind it is (a mutation's outcome carries no timestamp)."""
        spec = self.resolve(ref, None, internal_ok)
        if spec.kind is Kind.QUERY:
            return await self.run_query(spec, args, identity, internal_ok=True)
        if spec.kind is Kind.MUTATION:
            return await self.run_mutation(spec, args, identity, internal_ok=True,
                                           timestamp=False)
        return await self.run_action(spec, args, identity, internal_ok=True)


class _ActionCalls:
    """What an action's ctx reaches data through: the engine, as the action's caller."""

    def __init__(self, engine: Engine, identity: Identity | None) -> None:
        self._engine = engine
        self._identity = identity

    async def query(self, fn: Any, args: dict[str, Any]) -> Any:
        return (await self._engine.run_query(fn, args, self._identity, internal_ok=True)).value

    async def mutation(self, fn: Any, args: dict[str, Any]) -> Any:
        return (await self._engine.run_mutation(fn, args, self._identity, internal_ok=True,
                                                timestamp=False)).value

    async def action(self, fn: Any, args: dict[str, Any]) -> Any:
        return (await self._engine.run_action(fn, args, self._identity, internal_ok=True)).value

    async def vector_search(self, table: str, index: str, options: dict[str, Any]
                            ) -> list[dict[str, Any]]:
        async def search(db: DatabaseReader) -> list[dict[str, Any]]:
            return await vector_search(db.reads, table, index, options)

        return await self._engine.read(search)
