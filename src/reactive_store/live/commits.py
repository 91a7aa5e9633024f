"""The ordered stream of committed write sets, delivered to every server process.

Storage orders commits (see `_sequence` in storage/ddl.py and docs/architecture.md): commit
timestamps increase in visibility order, and NOTIFY delivers in that order. This stream turns
the notifications into `(ts, WriteSet)` calls in strictly increasing ts order, reading the
commit log for payloads too large to notify and for whatever was committed while the
listening connection was down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from reactive_store.engine.readset import IndexRef, WriteSet
from reactive_store.storage import Store
from reactive_store.storage.listener import Listener

log = logging.getLogger(__name__)

CommitHandler = Callable[[int, WriteSet], None]
# How often a process asks for commits left without a timestamp to be sequenced (a process
# that died between COMMIT and sequencing leaves them; any later commit would also do it).
ORPHAN_SECONDS = 1.0


class CommitStream:
    """Feeds every commit to `handler` once, in timestamp order.

    Invariant: `processed_ts` is the timestamp of the last commit handed to the handler;
    anything at or below it is a duplicate and dropped. While a catch-up read is in flight,
    notifications are held back and replayed after it, so the order cannot invert.
    """

    def __init__(self, store: Store, handler: CommitHandler) -> None:
        self._store = store
        self._handler = handler
        self.processed_ts = 0
        self._queue: asyncio.Queue[tuple[int, str | None]] = asyncio.Queue()
        self._held: list[str] | None = None
        self._task: asyncio.Task[None] | None = None
        self._orphans: asyncio.Task[None] | None = None
        self._listener: Listener | None = None
        self._started = False
        self._watches: dict[tuple[IndexRef, bytes], asyncio.Future[int]] = {}

    async def start(self) -> int:
        """Start listening; return the timestamp everything after which will be delivered."""
        self.processed_ts = await self._store.latest_ts()
        self._started = True
        self._listener = self._store.listener(self._on_payload, self._catch_up)
        await self._listener.start()
        self._task = asyncio.create_task(self._consume())
        self._orphans = asyncio.create_task(self._sequence_orphans())
        return self.processed_ts

    def watch(self, ref: IndexRef, key: bytes) -> asyncio.Future[int]:
        """The timestamp of the next commit delivered whose write set holds `key` in index
        `ref` (a document id a commit just inserted names that commit). Cancel it to stop
        watching; it is resolved after the handler has seen that commit."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._watches[(ref, key)] = future
        future.add_done_callback(lambda _: self._watches.pop((ref, key), None))
        return future

    async def stop(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        for task in (self._task, self._orphans):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _sequence_orphans(self) -> None:
        while True:
            self._store.sequencer.nudge()
            await asyncio.sleep(ORPHAN_SECONDS)

    def _on_payload(self, payload: str) -> None:
        if self._held is not None:
            self._held.append(payload)
            return
        ts_text, _, writes = payload.partition(" ")
        self._queue.put_nowait((int(ts_text), writes or None))

    async def _catch_up(self) -> None:
        """Runs on every (re)connection, with LISTEN active: read what we may have missed."""
        if not self._started:
            return
        self._held = []
        try:
            # Everything committed after the newest timestamp queued or processed so far.
            newest = self.processed_ts
            for ts, writes in await self._store.commits_after(newest):
                self._queue.put_nowait((ts, writes))
        finally:
            held, self._held = self._held, None
            for payload in held:
                self._on_payload(payload)

    async def _consume(self) -> None:
        while True:
            ts, writes = await self._queue.get()
            if ts <= self.processed_ts:
                continue
            if writes is None:
                writes = await self._read_commit(ts)
                if writes is None:
                    log.error("commit %s is missing from the commit log", ts)
                    continue
            written = WriteSet.from_text(writes)
            try:
                self._handler(ts, written)
            except Exception:
                log.exception("commit handler failed at %s", ts)
            self.processed_ts = ts
            for (ref, key), future in list(self._watches.items()):
                if key in written.keys.get(ref, ()) and not future.done():
                    future.set_result(ts)

    async def _read_commit(self, ts: int) -> str | None:
        """A commit's write set from the log, retried while the database is away: the
        stream must not skip it, and nothing after it may be delivered before it."""
        delay = 0.05
        while True:
            try:
                return await self._store.commit_at(ts)
            except Exception:
                log.warning("reading commit %s from the log failed; retrying", ts, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
