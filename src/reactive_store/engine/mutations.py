"""Mutations: one SERIALIZABLE transaction each, run again on conflict, then timestamped."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson

from reactive_store import values
from reactive_store.app.registry import Kind
from reactive_store.engine.commit_ts import cancel
from reactive_store.engine.context import Identity, MutationCtx
from reactive_store.engine.core import EngineCore
from reactive_store.engine.db import DatabaseWriter, SystemTableWriter
from reactive_store.engine.environment import StaleEnvironment
from reactive_store.engine.outcome import MutationHooks, Outcome, label, seed_of
from reactive_store.engine.scheduler import Scheduler
from reactive_store.engine.storage_api import MutationStorage
from reactive_store.errors import BadRequest, ConflictError
from reactive_store.limits import Limits
from reactive_store.storage import Transaction, TransientConflict, history
from reactive_store.storage.store import DatabaseUnavailable, request_hash
from reactive_store.storage.transaction import RecordedRequest

T = TypeVar("T")
RETRY_UNAVAILABLE_SECONDS = 2.0  # how long a mutation retries a database that went away
WriteBody = Callable[[DatabaseWriter, Transaction], Awaitable["tuple[Any, Any] | Outcome"]]


class MutationRunner(EngineCore):
    """The Engine's writes: `run_mutation`, and `transact` under it and every other write."""

    async def run_mutation(
        self, ref: Any, args: Any, identity: Identity | None = None, *, internal_ok: bool = False,
        request: tuple[str, int] | None = None, replay_possible: bool = False,
        hooks: MutationHooks | None = None, seed: str | None = None, timestamp: bool = True,
    ) -> Outcome:
        """Run a mutation as one SERIALIZABLE transaction, re-running it on conflict.

        `request` (client session id, request id) records the result with the commit; with
        `replay_possible` a request already committed returns its recorded result and
        timestamp unrun. `ctx.random()` is seeded from `seed`, else from the request, else
        at random: every attempt of one call draws the same numbers. With `timestamp`
        False the outcome's `ts` is None: the caller needs no commit timestamp (an HTTP
        call), so it does not wait for one.
        """
        with self.observer.execution(label(ref), "mutation", identity) as run:
            try:
                outcome = await self._mutation(ref, args, identity, internal_ok, request,
                                               replay_possible, hooks, seed, timestamp)
            except ConflictError:
                run.retries = self.config.max_attempts
                raise
            run.retries = outcome.retries
        outcome.log_lines = run.lines
        return outcome

    async def _mutation(self, ref: Any, args: Any, identity: Identity | None,
                        internal_ok: bool, request: tuple[str, int] | None,
                        replay_possible: bool, hooks: MutationHooks | None, seed: str | None,
                        timestamp: bool) -> Outcome:
        spec, checked = self.prepare(ref, args, Kind.MUTATION, internal_ok)
        hooks = hooks or MutationHooks()
        if seed is None and request is not None:
            seed = repr(request)
        # A call named by nothing draws from an arbitrary seed, the same on every attempt.
        rng_seed = (seed_of(str(spec.path), seed) if seed is not None
                    else random.getrandbits(64))
        env_overrides: dict[str, str | None] = {}  # the last attempt's true variables

        # A recorded result answers only the very same call: same caller, function, arguments.
        call = (request_hash(spec.path or "", values.encode(checked), identity)
                if request else None)

        async def body(db: DatabaseWriter, tx: Transaction) -> tuple[Any, Any] | Outcome:
            if request is not None and replay_possible:
                done = await tx.find_request(*request)
                if done is not None:
                    if done.request_hash is not None and done.request_hash != call:
                        raise BadRequest(
                            f"RequestIdReused: request {request[1]} of this session was "
                            "already used for a different call; send a new request id",
                            "RequestIdReused")
                    encoded = orjson.loads(done.result)
                    replayed.append(done)
                    return Outcome(values.decode(encoded), encoded, ts=done.ts)
            if hooks.before is not None:
                finished = await hooks.before(db, tx)
                if finished is not None:
                    return finished
            ctx = self.mutation_ctx(db, identity, rng_seed, env_overrides)
            try:
                result = await self.call(spec, ctx, checked)
            except StaleEnvironment as exc:
                env_overrides.update(exc.values)  # rolled back and run again with them
                raise
            if hooks.after is not None:
                await hooks.after(db, result[0])
            return result

        replayed: list[RecordedRequest] = []
        outcome = await self.transact(spec.path or "mutation", body, request, call, timestamp)
        if replayed and outcome.ts is None and timestamp:
            xid = replayed[-1].xid
            assert xid is not None  # a recorded request has a timestamp or a transaction id
            outcome.ts = await self.store.commit_ts(xid)
        return outcome

    def mutation_ctx(self, db: DatabaseWriter, identity: Identity | None,
                     seed: int, env_overrides: dict[str, str | None]) -> MutationCtx:
        """The ctx of one mutation attempt writing through `db` (`seed`: see `seed_of`)."""
        now = MutationCtx.clock()
        scheduler = Scheduler(self.app.functions, SystemTableWriter(db), now)
        return MutationCtx(db, identity, scheduler, env=self.env.view(env_overrides),
                           storage=MutationStorage(self.files, db), now_ms=now, seed=seed)

    async def transact(
        self, label: str, body: WriteBody, request: tuple[str, int] | None = None,
        call: str | None = None, timestamp: bool = False, limits: Limits | None = None,
    ) -> Outcome:
        """Run `body(db, tx)` in one SERIALIZABLE transaction, again on every conflict.

        The commit is logged inside the transaction and given its timestamp after COMMIT
        (storage/sequencer.py), which also announces it to every process; with `timestamp`
        the outcome carries it. `body` returns (value, encoded), or a finished Outcome to
        end without writing. `limits` replaces the configured per-transaction limits (an
        import writes more than a mutation may).
        """
        s = self.store
        give_up = asyncio.get_running_loop().time() + RETRY_UNAVAILABLE_SECONDS
        unavailable: DatabaseUnavailable | None = None  # what ended the last attempt
        for attempt in range(self.config.max_attempts):
            watch: asyncio.Future[int] | None = None
            try:
                # A caller that wants the timestamp of a commit with no request to name it
                # by needs its xid, so its inserts are sent as they come.
                # One that wants none is found by nothing it wrote: all its writes wait.
                async with s.write(buffered=request is not None or not timestamp,
                                   buffer_updates=not timestamp) as tx:
                    db = self.writer(tx, limits)
                    result = await body(db, tx)
                    if isinstance(result, Outcome):
                        return result
                    value, encoded = result
                    xid, watch = await self._log_commit(tx, db, encoded, request, call,
                                                        timestamp)
            except TransientConflict:
                cancel(watch)
                unavailable = None
                await asyncio.sleep(self._backoff(attempt))
                continue
            except DatabaseUnavailable as exc:
                cancel(watch)
                # Nothing was committed (COMMIT was never sent): run it again, briefly.
                if asyncio.get_running_loop().time() + self._backoff(attempt) > give_up:
                    raise
                unavailable = exc
                await asyncio.sleep(max(self._backoff(attempt), 0.05))
                continue
            except BaseException:
                cancel(watch)
                raise
            commit = xid if xid is not None or not db.writes else request
            if watch is not None:
                ts: int | None = await self.timestamps.watched(watch, commit)
            else:
                ts = await self.timestamps.of(commit, bool(db.writes), timestamp)
            return Outcome(value, encoded, db.read_set(), db.writes, ts, attempt)
        raise self._gave_up(label, unavailable)

    async def _log_commit(
        self, tx: Transaction, db: DatabaseWriter, encoded: Any,
        request: tuple[str, int] | None, call: str | None, timestamp: bool,
    ) -> tuple[int | None, asyncio.Future[int] | None]:
        """Log the writes (and the request's result) for COMMIT; return the xid when the
        transaction knows it, and the watch its timestamp will come from, if any."""
        if not db.writes:
            return None, None
        recorded = orjson.dumps(encoded).decode() if request else None
        xid = await tx.commit_writes(db.writes.to_text(), request, recorded,
                                     request_hash=call)
        if db.before:
            await history.record(tx, list(db.before.values()))
        if xid is not None or not timestamp:
            return xid, None  # the batched sequencer serves it (or nobody waits)
        # Sequenced in COMMIT's own message when this process sequences nothing else, else by
        # the next batched call (`Store._commit`).
        watch = self.timestamps.watch(db.writes)
        tx.sequence_soon = watch is not None
        return xid, watch

    def _gave_up(self, label: str, unavailable: DatabaseUnavailable | None) -> Exception:
        """What a transaction out of attempts raises: DatabaseUnavailable when the database
        was away on the last one (nothing conflicted), else ConflictError."""
        if unavailable is not None:
            return unavailable
        return ConflictError(f"{label}: conflict with concurrent mutations: retried "
                             f"{self.config.max_attempts} times")

    def writer(self, tx: Transaction, limits: Limits | None = None) -> DatabaseWriter:
        """A `ctx.db` writing through `tx` (one per function call: its own usage figures)."""
        s = self.store
        return DatabaseWriter(tx, self.schema, s.table_numbers, s.table_names,
                              limits or self.config.limits, self.config.history_seconds > 0)

    async def write_system(self, label: str, body: Callable[[SystemTableWriter], Awaitable[T]]
                           ) -> T:
        """Run `body` on the system tables in its own transaction (retried on conflict)."""

        async def run(db: DatabaseWriter, tx: Transaction) -> tuple[Any, Any]:
            return await body(SystemTableWriter(db)), None

        outcome = await self.transact(label, run)
        result: T = outcome.value
        return result

    def _backoff(self, attempt: int) -> float:
        cap = min(self.config.backoff_cap, self.config.backoff_base * (2**attempt))
        return random.uniform(0, cap)
