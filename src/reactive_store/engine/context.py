"""The `ctx` object each kind of function receives."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any, Protocol

from reactive_store.engine.db import DatabaseReader, DatabaseWriter
from reactive_store.engine.environment import Environment
from reactive_store.engine.vector import vector_search

if TYPE_CHECKING:
    from reactive_store.engine.scheduler import ActionScheduler, Scheduler
    from reactive_store.engine.storage_api import ActionStorage, MutationStorage, QueryStorage

Identity = dict[str, Any]


class Auth:
    """`ctx.auth`: who is calling (verified token claims), or None for anonymous calls."""

    def __init__(self, identity: Identity | None) -> None:
        self._identity = identity

    async def get_user_identity(self) -> Identity | None:
        return None if self._identity is None else dict(self._identity)


class QueryCtx:
    """`ctx` of a query: read-only `db`, `auth`, `env` (the deployment's variables) and
    `storage` (file URLs)."""

    def __init__(self, db: DatabaseReader, identity: Identity | None,
                 env: Environment, storage: QueryStorage) -> None:
        self.db = db
        self.auth = Auth(identity)
        self.env = env
        self.storage = storage

    async def vector_search(self, table: str, index: str, options: dict[str, Any]
                            ) -> list[dict[str, Any]]:
        """Nearest neighbours in this query's snapshot; the query re-runs when a document
        matching the filter is written."""
        return await vector_search(self.db.reads, table, index, options)


class MutationCtx:
    """`ctx` of a mutation: read-write `db`, `auth`, `env`, `storage`, `scheduler`, and a
    clock and random source that are fixed per attempt (a retried mutation may run its body
    more than once).

    `random()` is seeded by the engine once per call: every attempt of the same call draws
    the same sequence, so a retried mutation makes the same choices as its first attempt.
    """

    def __init__(self, db: DatabaseWriter, identity: Identity | None, scheduler: Scheduler,
                 *, env: Environment, storage: MutationStorage, now_ms: float,
                 seed: int) -> None:
        self.db = db
        self.auth = Auth(identity)
        self.env = env
        self.storage = storage
        self.scheduler = scheduler
        self._now = now_ms
        self._seed = seed
        self._random: random.Random | None = None  # seeded on first use

    @staticmethod
    def clock() -> float:
        """Milliseconds since the epoch, now."""
        return time.time() * 1000.0

    async def vector_search(self, table: str, index: str, options: dict[str, Any]
                            ) -> list[dict[str, Any]]:
        """Nearest neighbours, read in this mutation's transaction."""
        return await vector_search(self.db.reads, table, index, options)

    def now(self) -> float:
        """Milliseconds since the epoch, fixed for this attempt."""
        return self._now

    def random(self) -> float:
        """A random float in [0, 1) from this call's seeded source."""
        if self._random is None:
            self._random = random.Random(self._seed)
        return self._random.random()


class FunctionCalls(Protocol):
    """How an action reaches data: other functions, run as the action's caller."""

    async def query(self, fn: Any, args: dict[str, Any]) -> Any: ...

    async def mutation(self, fn: Any, args: dict[str, Any]) -> Any: ...

    async def action(self, fn: Any, args: dict[str, Any]) -> Any: ...

    async def vector_search(self, table: str, index: str, options: dict[str, Any]
                            ) -> list[dict[str, Any]]: ...


class ActionCtx:
    """`ctx` of an action: no `db`; it reaches data through run_query / run_mutation.
    `env` is this process's copy of the variables (refreshed within moments of a change);
    `storage` stores and reads file bytes."""

    def __init__(self, calls: FunctionCalls, identity: Identity | None,
                 scheduler: ActionScheduler, env: Environment,
                 storage: ActionStorage) -> None:
        self._calls = calls
        self.auth = Auth(identity)
        self.env = env
        self.storage = storage
        self.scheduler = scheduler

    async def run_query(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        return await self._calls.query(fn, args or {})

    async def run_mutation(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        return await self._calls.mutation(fn, args or {})

    async def run_action(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        return await self._calls.action(fn, args or {})

    async def vector_search(self, table: str, index: str, options: dict[str, Any]
                            ) -> list[dict[str, Any]]:
        """Nearest neighbours by cosine similarity: [{"_id", "_score"}], best first."""
        return await self._calls.vector_search(table, index, options)
