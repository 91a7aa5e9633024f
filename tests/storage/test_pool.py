"""The store's connection pool on real connections: reuse, the cap and its waiters, dropped
connections replaced, failures and cancellation reaching the right caller, closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from reactive_store.storage.pool import ConnectionPool, PoolClosed


class Opened:
    """The connect function of a test pool: counts connections and can be made to fail."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.count = 0
        self.fail: Exception | None = None

    async def __call__(self) -> asyncpg.Connection:
        if self.fail is not None:
            raise self.fail
        self.count += 1
        return await asyncpg.connect(self.url)


@pytest.fixture
async def opened(database_url: str) -> Opened:
    return Opened(database_url)


@pytest.fixture
async def pool(opened: Opened) -> AsyncIterator[ConnectionPool]:
    pool = ConnectionPool(opened, min_size=1, max_size=2)
    await pool.start()
    yield pool
    await pool.close()


async def test_a_released_connection_is_lent_again(pool: ConnectionPool,
                                                    opened: Opened) -> None:
    first = await pool.acquire()
    pool.release(first)
    assert await pool.acquire() is first
    assert opened.count == 1 and (pool.size, pool.idle) == (1, 0)
    pool.release(first)


async def test_the_cap_holds_and_waiters_are_served_in_order(pool: ConnectionPool,
                                                              opened: Opened) -> None:
    a, b = await pool.acquire(), await pool.acquire()
    assert opened.count == 2
    order: list[str] = []

    async def wait(name: str) -> asyncpg.Connection:
        conn = await pool.acquire()
        order.append(name)
        return conn

    first = asyncio.create_task(wait("first"))
    second = asyncio.create_task(wait("second"))
    await asyncio.sleep(0.01)
    assert order == [] and opened.count == 2
    pool.release(a)
    assert await first is a
    pool.release(b)
    assert await second is b
    assert order == ["first", "second"]
    pool.release(a)
    pool.release(b)
    assert (pool.size, pool.idle) == (2, 2)


async def test_a_terminated_connection_is_dropped_and_a_waiter_gets_a_fresh_one(
        pool: ConnectionPool, opened: Opened) -> None:
    a, b = await pool.acquire(), await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    a.terminate()
    pool.release(a)
    fresh = await asyncio.wait_for(waiting, 5)
    assert fresh is not a and fresh is not b and opened.count == 3
    assert await fresh.fetchval("SELECT 1") == 1
    pool.release(fresh)
    pool.release(b)
    assert pool.size == 2


async def test_a_connection_released_inside_a_transaction_is_not_trusted(
        pool: ConnectionPool) -> None:
    conn = await pool.acquire()
    await conn.execute("BEGIN")
    pool.release(conn)
    assert conn.is_closed() and pool.size == 0
    again = await pool.acquire()
    assert again is not conn and not again.is_in_transaction()
    pool.release(again)


async def test_a_failed_connect_reaches_the_waiter_it_was_opened_for(
        pool: ConnectionPool, opened: Opened) -> None:
    a, b = await pool.acquire(), await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    opened.fail = OSError("connection refused")
    a.terminate()
    pool.release(a)
    with pytest.raises(OSError, match="connection refused"):
        await asyncio.wait_for(waiting, 5)
    assert pool.size == 1
    opened.fail = None
    pool.release(b)


async def test_a_failed_connect_in_acquire_frees_its_place(pool: ConnectionPool,
                                                           opened: Opened) -> None:
    held = await pool.acquire()
    opened.fail = OSError("connection refused")
    with pytest.raises(OSError):
        await pool.acquire()
    assert pool.size == 1
    opened.fail = None
    extra = await pool.acquire()
    assert pool.size == 2
    pool.release(extra)
    pool.release(held)


async def test_a_waiter_cancelled_as_it_is_served_gives_the_connection_back(
        pool: ConnectionPool) -> None:
    a, b = await pool.acquire(), await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    pool.release(a)  # handed to the waiter, which is cancelled before it runs
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert pool.idle == 1 and await pool.acquire() is a
    pool.release(a)
    pool.release(b)


async def test_start_failing_leaves_nothing_open(opened: Opened) -> None:
    opened.fail = OSError("connection refused")
    pool = ConnectionPool(opened, min_size=2, max_size=3)
    with pytest.raises(OSError):
        await pool.start()
    assert pool.size == 0


async def test_closing_fails_waiters_and_ends_lent_connections_on_return(
        opened: Opened) -> None:
    pool = ConnectionPool(opened, min_size=1, max_size=1)
    await pool.start()
    lent = await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    await pool.close()
    with pytest.raises(PoolClosed):
        await waiting
    pool.release(lent)
    assert lent.is_closed() and pool.size == 0
    with pytest.raises(PoolClosed):
        await pool.acquire()


def test_sizes_are_checked() -> None:
    async def never() -> asyncpg.Connection:
        raise AssertionError

    with pytest.raises(ValueError, match="pool sizes"):
        ConnectionPool(never, min_size=3, max_size=2)
    with pytest.raises(ValueError, match="pool sizes"):
        ConnectionPool(never, min_size=0, max_size=0)
