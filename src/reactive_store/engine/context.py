"""The `ctx` object each kind of function receives."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from reactive_store.engine.db import DatabaseReader, DatabaseWriter

if TYPE_CHECKING:
    from reactive_store.engine.engine import Engine

Identity = dict[str, Any]


class Auth:
    """`ctx.auth`: who is calling (verified token claims), or None for anonymous calls."""

    def __init__(self, identity: Identity | None) -> None:
        self._identity = identity

    async def get_user_identity(self) -> Identity | None:
        return None if self._identity is None else dict(self._identity)


class QueryCtx:
    """`ctx` of a query: read-only `db` and `auth`."""

    def __init__(self, db: DatabaseReader, identity: Identity | None) -> None:
        self.db = db
        self.auth = Auth(identity)


class MutationCtx:
    """`ctx` of a mutation: read-write `db`, `auth`, and a clock and random source that are
    fixed per attempt (a retried mutation may run its body more than once)."""

    def __init__(self, db: DatabaseWriter, identity: Identity | None) -> None:
        self.db = db
        self.auth = Auth(identity)
        self._now = time.time() * 1000.0
        self._random: random.Random | None = None
        self.scheduler: Any = None  # set by the engine: scheduler.Scheduler

    def now(self) -> float:
        """Milliseconds since the epoch, fixed for this attempt."""
        return self._now

    def random(self) -> float:
        """A random float in [0, 1); the source is seeded once per attempt."""
        if self._random is None:
            self._random = random.Random()
        return self._random.random()


class ActionCtx:
    """`ctx` of an action: no `db`; it reaches data through run_query / run_mutation."""

    def __init__(self, engine: Engine, identity: Identity | None) -> None:
        self._engine = engine
        self._identity = identity
        self.auth = Auth(identity)
        self.scheduler: Any = None  # set by the engine: scheduler.ActionScheduler

    async def run_query(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        result = await self._engine.run_query(fn, args or {}, self._identity, internal_ok=True)
        return result.value

    async def run_mutation(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        result = await self._engine.run_mutation(fn, args or {}, self._identity, internal_ok=True)
        return result.value

    async def run_action(self, fn: Any, args: dict[str, Any] | None = None) -> Any:
        result = await self._engine.run_action(fn, args or {}, self._identity, internal_ok=True)
        return result.value
