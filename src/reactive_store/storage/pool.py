"""The store's connection pool: plain asyncpg connections, lent and taken back without a task.

asyncpg's own pool lends a proxy whose every call goes through a wrapper, and takes each
connection back under `asyncio.shield`, a task per release: about 15 us of a 300 us
mutation. The store needs less of it: connections made one way (`connect`), a cap, idle
ones reused newest first, and waiters served in order. Releasing is synchronous, so a
cancelled caller cannot strand a connection halfway back. A connection that is closed
(terminated because it could not be trusted) is dropped, and a waiter gets a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger(__name__)

CLOSE_SECONDS = 5.0  # a graceful close of an idle connection; then it is terminated


class PoolClosed(asyncpg.InterfaceError):  # type: ignore[misc]
    """The pool was closed: nothing more is lent."""


class ConnectionPool:
    """At most `max_size` connections, each made by `connect`."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], *,
                 min_size: int, max_size: int) -> None:
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ValueError(f"pool sizes must satisfy 0 <= min ({min_size}) <= max "
                             f"({max_size}) and max >= 1")
        self._connect = connect
        self.min_size, self.max_size = min_size, max_size
        self._idle: deque[asyncpg.Connection] = deque()
        self._size = 0  # connections open or being opened
        self._waiters: deque[asyncio.Future[asyncpg.Connection]] = deque()
        self._openers: set[asyncio.Task[None]] = set()
        self._closed = False

    async def start(self) -> None:
        """Open `min_size` connections; the first failure is raised (nothing stays open)."""
        self._size += self.min_size
        results = await asyncio.gather(*(self._connect() for _ in range(self.min_size)),
                                       return_exceptions=True)
        opened = [r for r in results if isinstance(r, asyncpg.Connection)]
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            self._size -= self.min_size
            for conn in opened:
                conn.terminate()
            raise failed[0]
        self._idle.extend(opened)

    @property
    def size(self) -> int:
        return self._size

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def acquire(self) -> asyncpg.Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():
                return conn
            self._size -= 1
        if self._closed:
            raise PoolClosed("the connection pool is closed")
        if self._size < self.max_size:
            self._size += 1
            try:
                return await self._connect()
            except BaseException:
                self._size -= 1
                raise
        waiter: asyncio.Future[asyncpg.Connection] = (
            asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            # Handed a connection just as the wait was cancelled: it goes back.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release(waiter.result())
            raise

    def release(self, conn: asyncpg.Connection) -> None:
        """Take a connection back: to the next waiter, else to the idle ones. One that is
        closed, or still inside a transaction (never trusted), is dropped."""
        if conn.is_closed() or conn.is_in_transaction() or self._closed:
            if not conn.is_closed():
                conn.terminate()
            self._size -= 1
            self._open_for_waiter()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _open_for_waiter(self) -> None:
        # A dropped connection frees a place: a waiter must not wait for a release that
        # may never come.
        if self._closed or not self._waiters or self._size >= self.max_size:
            return
        self._size += 1
        task = asyncio.get_running_loop().create_task(self._open())
        self._openers.add(task)
        task.add_done_callback(self._openers.discard)

    async def _open(self) -> None:
        try:
            conn = await self._connect()
        except Exception as exc:
            self._size -= 1
            for waiter in self._waiters:  # the first still waiting hears why
                if not waiter.done():
                    waiter.set_exception(exc)
                    self._waiters.remove(waiter)
                    break
            return
        self.release(conn)

    async def close(self) -> None:
        """Close the idle connections and fail every waiter; a connection still lent is
        terminated when it comes back."""
        self._closed = True
        for task in list(self._openers):
            task.cancel()
        await asyncio.gather(*self._openers, return_exceptions=True)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosed("the connection pool is closed"))
        idle, self._idle = list(self._idle), deque()
        self._size -= len(idle)
        await asyncio.gather(*(_close(conn) for conn in idle))


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), CLOSE_SECONDS)
    except Exception as exc:
        log.debug("closing a pooled connection failed: %r", exc)
        with contextlib.suppress(Exception):
            conn.terminate()
