"""Live queries: shared executions, invalidation by read set, and bounded batched re-runs.

Every distinct (path, args, identity) that some client subscribes to is one `LiveQuery` with
one result. Its read set is registered in an interval index per (table, index); each commit
from the commit stream is matched against those indexes (a bisect per written key), and the
live queries it hits are re-run, in batches that share one snapshot, by a bounded pool of
workers. Nothing here touches the database while nothing is written.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import orjson

from reactive_store.engine.engine import Engine, Outcome, QueryFailure
from reactive_store.engine.readset import IndexRef, ReadSet, WriteSet
from reactive_store.failures import error_body
from reactive_store.live.interval_index import IntervalIndex
from reactive_store.live.writelog import WriteLog
from reactive_store.observe.observer import source

log = logging.getLogger(__name__)

QueryKey = tuple[str, bytes, str | None, bool, str | None]
# A result computed from commits that had no timestamp yet is dropped, and the query runs
# again after the next commit this process takes in, or after this long.
AHEAD_RETRY_SECONDS = 0.02


class LiveState(enum.Enum):
    PENDING = "pending"  # no result yet, or invalidated: queued for a run
    RUNNING = "running"  # a run is in flight
    FRESH = "fresh"  # result valid from `ts` through everything processed so far


@dataclass(eq=False)
class LiveQuery:
    """One shared query execution and its latest result.

    `ts` is the snapshot the result holds at. `valid_until` starts None (the result is valid
    at every timestamp from `ts` through the write log's `processed_ts`) and becomes the
    timestamp of the first later commit that wrote inside `reads`; the result can then be
    used only at timestamps in [ts, valid_until). Both change only in this module.
    """

    key: QueryKey
    path: str
    args: Any
    identity: dict[str, Any] | None
    internal_ok: bool = False  # subscribed by an admin: may be an internal query
    state: LiveState = LiveState.PENDING
    ts: int = 0
    valid_until: int | None = None
    reads: ReadSet = field(default_factory=ReadSet)
    ok: bool = True
    value: Any = None  # the Convex-encoded value, or the error body when not ok
    log_lines: list[str] = field(default_factory=list)  # what the run logged, sent with it
    lines_json: bytes = b"[]"  # log_lines encoded once, spliced into every Transition
    result_json: bytes = b""
    watchers: set[Callable[[], None]] = field(default_factory=set)
    runs: int = 0  # executions so far, for tests and benchmarks
    # Set by `refresh` while a run is in flight: the process state the run read (execution
    # records, metrics) changed under it, so its result is stale the moment it lands.
    stale: bool = False
    # The journal the next run is given and that is sent with the result: it starts as the
    # one the subscriber brought (part of `key`), then is the one the last run returned, so
    # every re-run repeats the first run's page boundaries (see engine/pagination.py).
    journal: str | None = None

    def usable_at(self, ts: int) -> bool:
        """True when the current result is the query's result at timestamp `ts`."""
        if self.result_json == b"" or self.ts > ts:
            return False
        return self.valid_until is None or ts < self.valid_until


def query_key(path: str, args: Any, identity: dict[str, Any] | None,
              internal_ok: bool = False, journal: str | None = None) -> QueryKey:
    who = None if identity is None else orjson.dumps(identity, option=orjson.OPT_SORT_KEYS).decode()
    return (path, orjson.dumps(args, option=orjson.OPT_SORT_KEYS), who, internal_ok, journal)


class SubscriptionManager:
    """Owns every LiveQuery of a process and keeps each one's result fresh."""

    def __init__(self, engine: Engine, *, workers: int = 4, batch: int = 32) -> None:
        self.engine = engine
        self.write_log = WriteLog()
        self.queries: dict[QueryKey, LiveQuery] = {}
        # One interval index per (table, index); entries are LiveQuery objects that are
        # FRESH or RUNNING with a previous result (their registered read set is current).
        self._indexes: dict[IndexRef, IntervalIndex[LiveQuery]] = {}
        self._registered: dict[LiveQuery, ReadSet] = {}
        self._dirty: dict[LiveQuery, None] = {}  # an ordered set
        # Queries whose last run read commits that had no timestamp yet (Outcome.ahead).
        self._ahead: dict[LiveQuery, None] = {}
        self._ahead_timer: asyncio.TimerHandle | None = None
        self._work = asyncio.Event()
        self._idle = asyncio.Event()  # set whenever nothing is queued or running
        self._workers_n = workers
        self._batch = batch
        self._tasks: list[asyncio.Task[None]] = []
        self._ts_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.runs = 0  # executions, for tests and benchmarks
        self._running = 0
        self.generation = 0  # bumped by rerun_all; a run records the one it started in
        self._urgent: set[Callable[[], None]] = set()  # see `mark_urgent`
        # Wraps each pass of (non-urgent) notifications: the sync endpoint holds the socket
        # writes the watchers make and writes them after, in one tight loop.
        self.notify_scope: Callable[[], AbstractContextManager[object]] = nullcontext

    def start(self, processed_ts: int) -> None:
        self.write_log = WriteLog(processed_ts)
        with source("SyncWorker"):  # the workers' executions are the live queries' runs
            self._tasks = [asyncio.create_task(self._worker()) for _ in range(self._workers_n)]

    async def stop(self) -> None:
        if self._ahead_timer is not None:
            self._ahead_timer.cancel()
            self._ahead_timer = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    @property
    def processed_ts(self) -> int:
        return self.write_log.processed_ts

    # -- subscribing ----------------------------------------------------------------------
    def subscribe(self, path: str, args: Any, identity: dict[str, Any] | None,
                  watcher: Callable[[], None], internal_ok: bool = False,
                  journal: str | None = None) -> LiveQuery:
        key = query_key(path, args, identity, internal_ok, journal)
        live = self.queries.get(key)
        if live is None:
            live = LiveQuery(key, path, args, identity, internal_ok, journal=journal)
            self.queries[key] = live
            self._mark_dirty(live)
        live.watchers.add(watcher)
        return live

    def unsubscribe(self, live: LiveQuery, watcher: Callable[[], None]) -> None:
        live.watchers.discard(watcher)
        if not live.watchers:
            self.queries.pop(live.key, None)
            self._dirty.pop(live, None)
            self._ahead.pop(live, None)
            self._unregister(live)
            self._check_idle()

    def rerun_all(self) -> None:
        """Re-run every live query on new code (after a hot reload).

        Runs already in flight started on the old code: the generation bump makes their
        results count as stale when they land, and they are queued again.
        """
        self.generation += 1
        for live in list(self.queries.values()):
            self._invalidate(live, self.write_log.processed_ts)

    def refresh(self, matches: Callable[[LiveQuery], bool]) -> None:
        """Re-run the live queries `matches` picks, though no commit touched them: their
        results come from process state (the dashboard's execution records and metrics)."""
        for live in list(self.queries.values()):
            if not matches(live):
                continue
            if live.state is LiveState.RUNNING:
                live.stale = True
            else:
                self._invalidate(live, self.write_log.processed_ts)

    # -- commits ----------------------------------------------------------------------------
    def process_commit(self, ts: int, writes: WriteSet) -> None:
        """Take in the next commit (in timestamp order) and invalidate what it touched."""
        self.write_log.append(ts, writes)
        if self._ahead:
            self._release_ahead()
        hit: set[LiveQuery] = set()
        for ref, keys in writes.keys.items():
            index = self._indexes.get(ref)
            if index is not None:
                hit |= index.stab_many(keys)
        for live in hit:
            if live.ts < ts:
                self._invalidate(live, ts)
        waiters, self._ts_waiters = self._ts_waiters, []
        for target, future in waiters:
            if target <= ts:
                if not future.done():
                    future.set_result(None)
            else:
                self._ts_waiters.append((target, future))

    async def wait_processed(self, ts: int) -> None:
        """Return once the commit stream has delivered every commit up to `ts`."""
        if ts <= self.write_log.processed_ts:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ts_waiters.append((ts, future))
        await future

    def _invalidate(self, live: LiveQuery, ts: int) -> None:
        if live.valid_until is None or live.valid_until > ts:
            live.valid_until = ts
        self._unregister(live)
        if live.state is LiveState.FRESH:
            live.state = LiveState.PENDING
            self._mark_dirty(live)
        # No watcher is called: a result usable at fewer timestamps lets no session send
        # anything it could not send before. The next result calls them (`_complete`).

    def _mark_dirty(self, live: LiveQuery) -> None:
        self._dirty[live] = None
        self._work.set()

    def mark_urgent(self, watcher: Callable[[], None]) -> None:
        """`watcher`'s client waits for a result to acknowledge its own write: it is called
        before the others while its `urgent` attribute stays true."""
        self._urgent.add(watcher)

    def forget_urgent(self, watcher: Callable[[], None]) -> None:
        """`watcher`'s client is gone."""
        self._urgent.discard(watcher)

    def _notify(self, live: LiveQuery) -> None:
        # Urgent watchers go first: in a fan-out to many sockets the writer is not kept
        # waiting for its turn. They are few, so the common case copies the set and no more.
        first = self._urgent & live.watchers if self._urgent else None
        if first:
            for watcher in first:
                watcher()
            self._urgent = {w for w in self._urgent if getattr(w, "urgent", False)}
        with self.notify_scope():
            for watcher in (live.watchers - first if first else tuple(live.watchers)):
                watcher()

    def _register(self, live: LiveQuery, reads: ReadSet) -> None:
        self._unregister(live)
        for ref, interval in reads:
            self._indexes.setdefault(ref, IntervalIndex()).add(live, interval.start, interval.end)
        self._registered[live] = reads

    def _unregister(self, live: LiveQuery) -> None:
        reads = self._registered.pop(live, None)
        if reads is None:
            return
        for ref, interval in reads:
            self._indexes[ref].remove(live, interval.start, interval.end)

    def _journal(self, live: LiveQuery, journal: str | None) -> None:
        """Take the journal a run returned, and file the live query under it.

        A subscriber that brings no journal must get a page of its own (`numItems` from its
        cursor), not the one an earlier subscriber's first run fixed; a client that comes
        back with this journal shares this query. If another live query already holds that
        key, this one keeps its key, which only lets a new subscriber share a fixed page.
        """
        live.journal = journal
        key = (*live.key[:4], journal)
        if key == live.key or key in self.queries:
            return
        if self.queries.get(live.key) is live:
            del self.queries[live.key]
        live.key = key
        self.queries[key] = live

    # -- re-runs ----------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            while not self._dirty:
                self._work.clear()
                await self._work.wait()
            batch: list[LiveQuery] = []
            while self._dirty and len(batch) < self._batch:
                live = next(iter(self._dirty))
                del self._dirty[live]
                if live.state is not LiveState.RUNNING:
                    live.state = LiveState.RUNNING
                    batch.append(live)
            if batch:
                try:
                    await self._run(batch)
                except Exception:
                    log.exception("re-running live queries failed")
                    for live in batch:
                        live.state = LiveState.PENDING
                        self._mark_dirty(live)
                    await asyncio.sleep(0.5)
            else:
                self._check_idle()

    async def _run(self, batch: list[LiveQuery]) -> None:
        self._running += 1
        generation = self.generation
        for live in batch:
            live.stale = False
        try:
            _, results = await self.engine.run_query_batch(
                [(live.path, live.args, live.identity, live.internal_ok, live.journal)
                 for live in batch])
        finally:
            self._running -= 1
        self.runs += len(batch)
        for live, result in zip(batch, results, strict=True):
            live.runs += 1
            if generation != self.generation:
                live.state = LiveState.PENDING  # ran on code that a reload replaced
                if live.key in self.queries:
                    self._mark_dirty(live)
                continue
            self._complete(live, result)
        self._check_idle()

    async def settled(self, ts: int = 0) -> None:
        """Wait until commits up to `ts` are processed and no re-run is queued or running."""
        await self.wait_processed(ts)
        while self._dirty or self._running or self._ahead:
            self._idle.clear()
            await self._idle.wait()

    def _check_idle(self) -> None:
        if not self._dirty and not self._running and not self._ahead:
            self._idle.set()

    def _hold_ahead(self, live: LiveQuery) -> None:
        """Drop a result computed from commits without timestamps; run it again soon.

        Those commits get timestamps above the snapshot's (storage/sequencer.py), so the
        result is the state at no timestamp yet known. The previous result keeps its
        validity range, and sessions wait for the next one.
        """
        live.state = LiveState.PENDING
        self._ahead[live] = None
        if self._ahead_timer is None:
            loop = asyncio.get_running_loop()
            self._ahead_timer = loop.call_later(AHEAD_RETRY_SECONDS, self._release_ahead)

    def _release_ahead(self) -> None:
        if self._ahead_timer is not None:
            self._ahead_timer.cancel()
            self._ahead_timer = None
        held, self._ahead = self._ahead, {}
        for live in held:
            if live.key in self.queries and live.state is LiveState.PENDING:
                self._mark_dirty(live)
        self._check_idle()

    def _complete(self, live: LiveQuery, result: Outcome | QueryFailure) -> None:
        if live.key not in self.queries:
            return  # unsubscribed while running
        if result.ahead:
            self._hold_ahead(live)
            return
        if isinstance(result, QueryFailure):
            live.ok, live.value = False, error_body(result.error)
            self._journal(live, result.journal or live.journal)  # a failure keeps the pages
        else:
            live.ok, live.value = True, result.encoded
            self._journal(live, result.journal)
        assert result.ts is not None
        live.ts = result.ts
        live.reads = result.reads
        live.log_lines = result.log_lines
        live.lines_json = orjson.dumps(live.log_lines)
        live.result_json = orjson.dumps([live.ok, live.value])
        # Commits already processed past the snapshot may have written inside what it read.
        live.valid_until = self.write_log.refresh(live.reads, live.ts)
        if live.stale:
            live.valid_until = live.ts  # see `refresh`: usable nowhere, run it again
        live.state = LiveState.FRESH
        if live.valid_until is not None:
            live.state = LiveState.PENDING
            self._mark_dirty(live)
        else:
            self._register(live, live.reads)
        self._notify(live)
