"""Commit timestamps, given after COMMIT: a process's commits share one `_sequence` call.

A mutation commits with no timestamp; `_sequence` (storage/ddl.py), serialised by a lock held
through its own COMMIT, gives every committed commit that has none the next timestamps and
announces them. This class coalesces the calls of one process: while a call is in flight,
new commits wait for the next one, so a burst of commits costs a few calls, not one each.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

# A commit is known by its transaction id, or by the client request it answered (session
# id, request id) when its transaction never read its xid (buffered inserts only).
CommitKey = int | tuple[str, int]
SequenceCall = Callable[[list[CommitKey]], Awaitable[dict[CommitKey, int]]]
RETRY_SECONDS = 5.0
# Under load, a call for commits nobody waits for starts at least this long after the last
# call ended, so each call sequences a batch rather than two or three commits.
UNWAITED_GAP_SECONDS = 0.001


class SequencingFailed(Exception):
    """The commit is durable, but its timestamp could not be read in time."""


class Sequencer:
    """Turns committed transaction ids into commit timestamps, a batch per call."""

    def __init__(self, call: SequenceCall, *, in_flight: int = 2,
                 gap: float = UNWAITED_GAP_SECONDS) -> None:
        self._call = call
        self._limit = in_flight
        self._gap = gap
        self._last_call = 0.0
        self._running = 0
        self._waiting: dict[CommitKey, list[asyncio.Future[int]]] = {}
        self._wanted: set[int] = set()
        self._flushes: list[asyncio.Future[None]] = []
        self._nudged = False
        self._prompt = False  # a waiter learns its timestamp from the stream: no gap
        self._carrying = 0  # commit messages under way that sequence in their own message
        self._tasks: set[asyncio.Task[None]] = set()

    async def timestamp(self, commit: CommitKey) -> int:
        """The timestamp of a committed commit, by xid or request (sequencing it if needed)."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(commit, []).append(future)
        self._kick()
        return await future

    async def flush(self) -> None:
        """Return once every commit visible when this was called has its timestamp."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flushes.append(future)
        self._kick()
        await future

    def announce(self, xid: int) -> None:
        """Have `xid` sequenced soon; nobody waits for its timestamp."""
        self._wanted.add(xid)
        self._kick(idle_only=True)

    def nudge(self, prompt: bool = False) -> None:
        """Sequence whatever committed work is waiting (left by a process that died, seen by
        a query before its timestamp was given, or committed with no xid to announce).
        With `prompt`, someone waits for the commit stream to bring it: no gap first."""
        self._nudged = True
        self._prompt = self._prompt or prompt
        self._kick(idle_only=True)

    def carry(self) -> bool:
        """Whether a commit about to be sent should sequence in COMMIT's own message.

        Only when no sequencing of this process is under way: at light load that saves the
        commit a round trip. Under load each such message would be a sequencing transaction
        of its own, one commit each, queued on the commit lock; instead the commit joins the
        next batched call (`nudge(prompt=True)` once COMMIT returns). A True answer must be
        matched by `carried()` when the message is done.
        """
        if self._running or self._carrying:
            return False
        self._carrying += 1
        return True

    def carried(self) -> None:
        """A message `carry` let sequence itself is done (committed or not)."""
        self._carrying -= 1

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        _fail(self._waiting, "the store was closed", self._flushes)
        self._waiting.clear()
        self._flushes.clear()

    def _kick(self, idle_only: bool = False) -> None:
        # Work nobody waits for joins the call in flight's next round rather than start a
        # call of its own: under load that makes batches, not one call per commit.
        if self._running < (1 if idle_only else self._limit):
            self._running += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting or self._wanted or self._nudged or self._flushes:
                # Work nobody waits for, right after a call: let a batch gather first.
                rest = self._last_call + self._gap - loop.time()
                if rest > 0 and not (self._waiting or self._flushes or self._prompt):
                    await asyncio.sleep(rest)
                waiting, self._waiting = self._waiting, {}
                flushes, self._flushes = self._flushes, []
                keys: list[CommitKey] = sorted(self._wanted.union(
                    k for k in waiting if isinstance(k, int)))
                keys += sorted(k for k in waiting if not isinstance(k, int))
                self._wanted, self._nudged, self._prompt = set(), False, False
                try:
                    found = await self._call_retrying(keys)
                    self._last_call = loop.time()
                except asyncio.CancelledError:
                    _fail(waiting, "the store was closed", flushes)
                    raise
                except Exception as exc:
                    _fail(waiting, str(exc), flushes)
                    continue
                for flushed in flushes:
                    if not flushed.done():
                        flushed.set_result(None)
                for key, futures in waiting.items():
                    for future in futures:
                        if future.done():
                            continue
                        if key in found:
                            future.set_result(found[key])
                        else:
                            future.set_exception(SequencingFailed(f"commit {key} not found"))
        finally:
            self._running -= 1

    async def _call_retrying(self, keys: list[CommitKey]) -> dict[CommitKey, int]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETRY_SECONDS
        delay = 0.01
        while True:
            try:
                return await self._call(keys)
            except asyncio.CancelledError:
                raise
            except Exception:
                if loop.time() + delay > deadline:
                    raise
                log.warning("sequencing commits failed; retrying", exc_info=True)
                await asyncio.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)


def _fail(waiting: dict[CommitKey, list[asyncio.Future[int]]], why: str,
          flushes: list[asyncio.Future[None]]) -> None:
    for flushed in flushes:
        if not flushed.done():
            flushed.set_exception(SequencingFailed(why))
    for futures in waiting.values():
        for future in futures:
            if not future.done():
                future.set_exception(SequencingFailed(why))
