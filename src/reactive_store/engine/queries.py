"""Queries: one REPEATABLE READ snapshot per query, or one shared by a batch of them."""

from __future__ import annotations

import asyncio
from typing import Any

from reactive_store.app.registry import FunctionSpec, Kind
from reactive_store.engine.context import Identity, QueryCtx
from reactive_store.engine.core import EngineCore
from reactive_store.engine.db import DatabaseReader
from reactive_store.engine.environment import StaleEnvironment
from reactive_store.engine.history import PastVersions, past_at, prove_unchanged
from reactive_store.engine.outcome import Outcome, QueryFailure, ahead_of, label, unsequenced
from reactive_store.engine.readset import ReadSet
from reactive_store.engine.storage_api import QueryStorage
from reactive_store.errors import ConflictError, FunctionTimeout, InternalError, QueryError
from reactive_store.observe.observer import lines_of
from reactive_store.storage import Transaction

# A query re-run because the cached variables were stale gets the transaction's values;
# only a function that picks which variable to read from another one needs a third try.
ENV_ATTEMPTS = 8
# A query at a timestamp waits this many times (1 ms, doubling) for commits its snapshot
# read to get their timestamps (storage/sequencer.py) before giving up.
AHEAD_ATTEMPTS = 10
MAX_LOST_SNAPSHOTS = 3  # snapshots a batch may lose to the database before giving up


class _BrokenSnapshot(Exception):
    """A query broke its batch's transaction; the rest of the batch needs a new one.

    `failure` is the query's answer, or None when it should simply run again (a lost
    connection: the query itself did nothing wrong)."""

    def __init__(self, cause: Exception, failure: QueryFailure | None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.failure = failure


class QueryRunner(EngineCore):
    """The Engine's queries: `run_query` and `run_query_batch`."""

    async def run_query(
        self, ref: Any, args: Any, identity: Identity | None = None, *,
        internal_ok: bool = False, at_ts: int | None = None, journal: str | None = None,
    ) -> Outcome:
        """Run a query in one REPEATABLE READ snapshot.

        With `at_ts`, the result must be the one the query had at that earlier commit.
        Postgres keeps no old versions, so the query runs on the current snapshot and the
        commit log proves that no commit since `at_ts` wrote inside what it read.
        `journal` is one an earlier run returned (`Outcome.journal`), to repeat its page.
        """
        with self.observer.execution(label(ref), "query", identity) as run:
            outcome = await self._query(ref, args, identity, internal_ok, at_ts, journal)
        outcome.log_lines = run.lines
        return outcome

    async def _query(self, ref: Any, args: Any, identity: Identity | None, internal_ok: bool,
                     at_ts: int | None, journal: str | None) -> Outcome:
        spec, checked = self.prepare(ref, args, Kind.QUERY, internal_ok)
        for attempt in range(AHEAD_ATTEMPTS):
            outcome = await self._query_in_snapshot(spec, checked, identity, at_ts, journal)
            if not outcome.ahead:
                return outcome
            # Its snapshot held commits that have no timestamp yet: once they have one,
            # a new snapshot's timestamp covers them.
            self.store.sequencer.nudge()
            await asyncio.sleep(0.001 * 2**attempt)
        raise QueryError(f"{spec.path}: commits it read still have no timestamp; "
                         "query again shortly")

    async def _query_in_snapshot(self, spec: FunctionSpec, checked: dict[str, Any],
                                 identity: Identity | None, at_ts: int | None,
                                 journal: str | None) -> Outcome:
        async with self.store.read(snapshot=at_ts is not None) as tx:
            snapshot = await tx.snapshot() if at_ts is not None else None
            ts = None if snapshot is None else snapshot.ts
            past = None if snapshot is None or at_ts is None else await past_at(
                tx, snapshot, at_ts, self.config.history_seconds,
                self.config.limits.documents_scanned)
            db, result = await self._query_call(tx, spec, checked, identity, journal, past)
            if isinstance(result, Exception):
                raise result
            value, encoded = result
            reads = db.read_set()
            if past is not None:  # exact at `at_ts`, whatever came after it
                return Outcome(value, encoded, reads=reads, ts=at_ts,
                               journal=db.reads.pages.journal())
            if snapshot is not None and ahead_of(reads, unsequenced(snapshot)):
                return Outcome(value, encoded, reads=reads, ts=ts, ahead=True)
            if at_ts is not None and ts is not None and at_ts < ts:
                await prove_unchanged(tx, spec.path or "query", reads, (at_ts, ts),
                                      self.config.history_seconds)
                ts = at_ts
        return Outcome(value, encoded, reads=reads, ts=ts, journal=db.reads.pages.journal())

    async def run_query_batch(
        self, calls: list[tuple[Any, Any, Identity | None, bool, str | None]]
    ) -> tuple[int, list[Outcome | QueryFailure]]:
        """Run several queries `(ref, args, identity, internal_ok, journal)` in one snapshot;
        return its timestamp and each result.

        A query that fails leaves the others untouched, unless it broke the transaction
        (time limit, database error): then the rest run again in a fresh snapshot.
        """
        results: list[Outcome | QueryFailure] = []
        ts = 0
        lost = 0
        while len(results) < len(calls):
            try:
                async with self.store.read(snapshot=True) as tx:
                    snapshot = await tx.snapshot()
                    ts, pending = snapshot.ts, unsequenced(snapshot)
                    for call in calls[len(results):]:
                        result = await self._batch_query(tx, ts, *call)
                        result.ahead = ahead_of(result.reads, pending)
                        results.append(result)
            except _BrokenSnapshot as broken:
                if broken.failure is not None:
                    results.append(broken.failure)
                    continue
                lost += 1
                if lost >= MAX_LOST_SNAPSHOTS:
                    raise broken.cause from None  # the caller keeps old results, tries later
        if any(result.ahead for result in results):
            self.store.sequencer.nudge()
        return ts, results

    async def _batch_query(self, tx: Transaction, ts: int, ref: Any, args: Any,
                           identity: Identity | None, internal: bool, journal: str | None
                           ) -> Outcome | QueryFailure:
        db: DatabaseReader | None = None
        try:
            with self.observer.execution(label(ref), "query", identity) as run:
                spec, checked = self.prepare(ref, args, Kind.QUERY, internal)
                db, result = await self._query_call(tx, spec, checked, identity, journal)
                if isinstance(result, Exception):
                    raise result  # recorded as this execution's failure
        except (FunctionTimeout, InternalError) as exc:
            if db is None:
                return QueryFailure(exc, ReadSet(), ts, lines_of(exc))
            # The transaction is broken: the rest of the batch needs a fresh snapshot. A lost
            # connection is no answer for this query (it runs again); anything else is.
            failure = None if getattr(exc, "retryable", False) else QueryFailure(
                exc, db.read_set(), ts, lines_of(exc), db.reads.pages.journal())
            raise _BrokenSnapshot(exc, failure) from exc
        except Exception as exc:
            if db is None:
                return QueryFailure(exc, ReadSet(), ts, lines_of(exc))
            return QueryFailure(exc, db.read_set(), ts, lines_of(exc), db.reads.pages.journal())
        assert db is not None and not isinstance(result, Exception)
        value, encoded = result
        return Outcome(value, encoded, reads=db.read_set(), ts=ts, log_lines=run.lines,
                       journal=db.reads.pages.journal())
    async def _query_call(self, tx: Transaction, spec: FunctionSpec, args: dict[str, Any],
                          identity: Identity | None, journal: str | None = None,
                          past: PastVersions | None = None
                          ) -> tuple[DatabaseReader, tuple[Any, Any] | Exception]:
        """Call a query in `tx`: its reader and (value, encoded), or the exception it raised.
        When the cached variables were stale it runs again with the transaction's values
        (with `past`, the values at that timestamp)."""
        overrides: dict[str, str | None] = {}
        for _ in range(ENV_ATTEMPTS):
            db = self._reader(tx, journal, past)
            try:
                ctx = QueryCtx(db, identity, self.env.view(overrides),
                               QueryStorage(self.files, db))
                return db, await self.call(spec, ctx, args)
            except StaleEnvironment as exc:
                overrides.update(exc.values)
            except Exception as exc:
                return db, exc
        return db, ConflictError(f"{spec.path}: environment variables kept changing while "
                                 f"it ran ({ENV_ATTEMPTS} tries)")
