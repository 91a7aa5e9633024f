"""Fault tests kept in the suite (issue 12): the server under `kill -9`, terminated database
connections, a database outage, and two processes sharing one deployment.

Real `reactive-store serve` processes, real Postgres, real sockets. Database faults are
confined to a scratch database created for the test (db_faults.py): the machine's Postgres
server is never stopped. What must hold: every acknowledged mutation is stored exactly once,
nothing appears that nobody sent, clients only ever see clean errors, and the server recovers
by itself, its live subscribers receiving updates again.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from reactive_store.client import connect
from tests.db_faults import scratch_database
from tests.e2e.hostile_support import NOTES_APP, RawSocket, clean_error, unique, value
from tests.e2e.servers import ServeApp, server_pool
from tests.support import write_app

pytestmark = pytest.mark.e2e


@dataclass
class Writes:
    """What writers were told: acknowledged bodies, bodies with no clear outcome, errors."""

    acked: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    @property
    def attempted(self) -> set[str]:
        return set(self.acked) | set(self.unknown)


async def http_writer(url: str, name: str, tag: str, writes: Writes, stop: asyncio.Event,
                      pause: float = 0.0) -> None:
    """Add notes `tag-0`, `tag-1`, ... over HTTP until `stop`, recording each outcome."""
    async with httpx.AsyncClient(timeout=10) as http:
        i = 0
        while not stop.is_set():
            body = f"{tag}-{i}"
            i += 1
            try:
                response = await http.post(f"{url}/api/mutation", json={
                    "path": "notes:add", "args": {"list": name, "body": body}, "format": "json"})
            except httpx.TransportError:
                writes.unknown.append(body)  # reported as failed to this client
                await asyncio.sleep(0.05)
                continue
            if response.status_code != 200:
                writes.statuses.append(response.status_code)
                writes.unknown.append(body)
                continue
            result = response.json()
            if result["status"] == "success":
                writes.acked.append(body)
            else:
                writes.errors.append(result["errorMessage"])
                writes.unknown.append(body)
                await asyncio.sleep(0.05)
            await asyncio.sleep(pause)


async def sync_writer(url: str, name: str, tag: str, writes: Writes, stop: asyncio.Event
                      ) -> None:
    """The same over our sync client, which reconnects and replays unanswered mutations
    under its session id (the server answers a replay from the recorded result)."""
    async with connect(url) as client:
        i = 0
        while not stop.is_set():
            body = f"{tag}-{i}"
            i += 1
            try:
                await asyncio.wait_for(
                    client.mutation("notes:add", {"list": name, "body": body}), 30)
            except Exception as exc:
                writes.errors.append(str(exc))
                writes.unknown.append(body)
            else:
                writes.acked.append(body)


def check_stored(stored: list[str], writes: Writes) -> None:
    twice = [body for body, n in Counter(stored).items() if n > 1]
    assert not twice, f"stored more than once: {twice}"
    missing = set(writes.acked) - set(stored)
    assert not missing, f"acknowledged but lost: {sorted(missing)}"
    invented = set(stored) - writes.attempted
    assert not invented, f"stored but never sent: {sorted(invented)}"


async def until(check: Callable[[], Any], timeout: float, what: Any) -> Any:
    """Poll `check` (plain or async) until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError, AssertionError):
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
        assert loop.time() < deadline, f"{what() if callable(what) else what}: not within " \
            f"{timeout:g} s"
        await asyncio.sleep(0.1)


async def stop_all(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    stop.set()
    done, pending = await asyncio.wait(tasks, timeout=40)
    for task in pending:
        task.cancel()
    for task in done:
        task.result()
    assert not pending, "a writer never finished"


@pytest.fixture
def notes_app(tmp_path: Path) -> Path:
    return write_app(tmp_path / "app", NOTES_APP)


# --- kill -9 --------------------------------------------------------------------------------------

async def test_kill_9_under_eight_writers_loses_and_repeats_nothing(
    serve_app: ServeApp, notes_app: Path
) -> None:
    url = await serve_app(notes_app)
    server = serve_app.server(url)
    name = unique("kill")
    writes, stop = Writes(), asyncio.Event()
    tasks = [asyncio.create_task(http_writer(url, name, f"h{w}", writes, stop))
             for w in range(4)]
    tasks += [asyncio.create_task(sync_writer(url, name, f"s{w}", writes, stop))
              for w in range(4)]
    await until(lambda: len(writes.acked) >= 40, 10, "writes before kill")
    await server.kill()
    acked_before_kill = len(writes.acked)
    await asyncio.sleep(0.3)
    await server.start(port=server.port)
    await until(lambda: len(writes.acked) >= acked_before_kill + 40, 30,
                "writes after restart")
    await stop_all(stop, tasks)

    stored = await value(url, "query", "notes:list", {"list": name})
    check_stored(stored, writes)
    assert any(body.startswith("s") for body in writes.acked[acked_before_kill:])
    assert not writes.statuses, writes.statuses


# --- terminated connections and a 5 s outage ------------------------------------------------------

class Subscriber:
    """A raw socket subscribed to notes:count; records every result and failure it is sent."""

    def __init__(self, sock: RawSocket) -> None:
        self.sock = sock
        self.counts: list[float] = []
        self.failures: list[str] = []
        self.closed: str | None = None
        self.task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return (f"Subscriber(last counts {self.counts[-3:]}, {len(self.counts)} updates, "
                f"failures {self.failures[:3]}, closed {self.closed})")

    async def run(self) -> None:
        try:
            await self._run()
        except websockets.ConnectionClosed as exc:
            self.closed = repr(exc)

    async def _run(self) -> None:
        while True:
            message = await self.sock.recv(timeout=120)
            if message.get("type") != "Transition":
                continue
            for mod in message["modifications"]:
                if mod["type"] == "QueryUpdated":
                    self.counts.append(mod["value"])
                elif mod["type"] == "QueryFailed":
                    self.failures.append(mod["errorMessage"])


async def test_terminated_connections_and_an_outage_are_survived(
    database_url: str, notes_app: Path, tmp_path: Path
) -> None:
    async with scratch_database(database_url) as scratch, \
            server_pool(scratch.url, tmp_path) as pool, contextlib.AsyncExitStack() as stack:
        url = await pool(notes_app)
        name = unique("outage")
        subscribers = []
        for _ in range(3):
            sock = await stack.enter_async_context(RawSocket.open(url))
            await sock.connect()
            await sock.subscribe(0, "notes:count", {"list": name})
            subscriber = Subscriber(sock)
            subscriber.task = asyncio.create_task(subscriber.run())
            subscribers.append(subscriber)
        writes, stop = Writes(), asyncio.Event()
        tasks = [asyncio.create_task(http_writer(url, name, f"w{w}", writes, stop, pause=0.02))
                 for w in range(4)]
        try:
            await asyncio.sleep(0.5)
            for _ in range(2):
                assert await scratch.terminate() > 0
                await asyncio.sleep(0.5)
            await scratch.refuse_connections()
            async with RawSocket.open(url) as sock:  # the socket's errors are clean too
                await sock.connect()
                writes.unknown.append("ws")
                response = await sock.mutation(0, "notes:add", {"list": name, "body": "ws"})
                assert response["success"] is False and clean_error(response["result"]), \
                    response
            await asyncio.sleep(5)
            await scratch.allow_connections()
            during = len(writes.acked)
            # Recovered by itself: writes succeed again, and keep succeeding.
            await until(lambda: len(writes.acked) >= during + 20, 10,
                        "writes after the outage")
        finally:
            await stop_all(stop, tasks)

        stored = await value(url, "query", "notes:list", {"list": name})
        check_stored(stored, writes)
        assert writes.errors, "the faults went unnoticed: the test did not test anything"
        leaks = [e for e in writes.errors if not clean_error(e)]
        assert not leaks, f"unclean errors reached clients: {sorted(set(leaks))[:5]}"
        assert not writes.statuses, f"HTTP errors: {Counter(writes.statuses)}"

        # Live subscribers were pushed the final state, after the faults. (One whose query
        # re-run was cut by a terminated connection shows QueryFailed and, today, is stuck:
        # test_a_live_query_cut_by_a_lost_connection_is_run_again reproduces that.)
        total = float(len(stored))
        async with RawSocket.open(url) as late:  # a new subscription after the faults
            await late.connect()
            await late.subscribe(0, "notes:list", {"list": name})
            assert len((await late.query_value(0))["value"]) == total
        for subscriber in subscribers:
            await until(lambda s=subscriber: s.counts[-1:] == [total] or s.failures, 10,
                        lambda s=subscriber: f"{s} never shown the final count {total}")
            assert subscriber.closed is None, subscriber
            assert all(clean_error(f) for f in subscriber.failures), subscriber.failures
            assert subscriber.failures or subscriber.counts[-1:] == [total], subscriber
            assert subscriber.counts == sorted(subscriber.counts), "a count went backwards"
            assert subscriber.task is not None
            subscriber.task.cancel()
        assert pool.servers[0].running


async def test_a_live_query_cut_by_a_lost_connection_is_run_again(
    database_url: str, notes_app: Path, tmp_path: Path
) -> None:
    async with scratch_database(database_url) as scratch, \
            server_pool(scratch.url, tmp_path) as pool, RawSocket.open(
                url := await pool(notes_app)) as sock:
        name = unique("cut")
        await sock.connect()
        await sock.subscribe(0, "notes:slow_count", {"list": name, "pause": 0.6})
        assert (await sock.query_value(0))["value"] == 0.0
        # The next re-run holds its snapshot open for 0.6 s before reading: kill it then.
        await value(url, "mutation", "notes:add", {"list": name, "body": "one"})
        await asyncio.sleep(0.25)
        assert await scratch.terminate() > 0
        await asyncio.sleep(1.0)
        await value(url, "mutation", "notes:add", {"list": name, "body": "two"})
        seen = []
        with contextlib.suppress(TimeoutError):
            while not seen or seen[-1].get("value") != 2.0:
                seen.append(await sock.query_value(0, timeout=3))
        assert seen and seen[-1].get("value") == 2.0, seen


async def test_a_scheduled_mutation_cut_by_a_lost_connection_still_runs_once(
    database_url: str, notes_app: Path, tmp_path: Path
) -> None:
    async with scratch_database(database_url) as scratch, \
            server_pool(scratch.url, tmp_path) as pool:
        url = await pool(notes_app)
        await value(url, "mutation", "notes:schedule_slow", {"pause": 0.6})
        await asyncio.sleep(0.25)  # the job runs now, its transaction open before writing
        assert await scratch.terminate() > 0
        states: list[str] = []
        for _ in range(80):  # until the job is finished one way or the other
            states = await value(url, "query", "notes:jobs", {})
            if states in (["success"], ["failed"]):
                break
            await asyncio.sleep(0.1)
        assert states == ["success"], states
        assert await value(url, "query", "notes:list", {"list": "slow-ticks"}) == ["1.0"]


# --- two processes --------------------------------------------------------------------------------

async def test_two_processes_deliver_every_commit_to_subscribers(
    serve_app: ServeApp, notes_app: Path
) -> None:
    """Subscribers on process A, concurrent writes through process B: each subscriber ends
    with every write, and what it is shown never goes backwards."""
    url_a = await serve_app(notes_app)
    url_b = await serve_app(notes_app, namespace=serve_app.server(url_a).namespace)
    name = unique("two")
    async with contextlib.AsyncExitStack() as stack:
        subscribers = []
        for _ in range(4):
            sock = await stack.enter_async_context(RawSocket.open(url_a))
            await sock.connect()
            await sock.subscribe(0, "notes:count", {"list": name})
            subscriber = Subscriber(sock)
            subscriber.task = asyncio.create_task(subscriber.run())
            subscribers.append(subscriber)

        async def writer(w: int) -> None:
            for i in range(15):
                await value(url_b, "mutation", "notes:add", {"list": name, "body": f"{w}-{i}"})

        await asyncio.gather(*(writer(w) for w in range(4)))
        for subscriber in subscribers:
            await until(lambda s=subscriber: s.counts[-1:] == [60.0], 10,
                        "every write pushed to a subscriber on the other process")
            assert subscriber.counts == sorted(subscriber.counts), subscriber.counts
            assert not subscriber.failures, subscriber.failures
            assert subscriber.task is not None
            subscriber.task.cancel()
    assert sorted(await value(url_a, "query", "notes:list", {"list": name})) == sorted(
        f"{w}-{i}" for w in range(4) for i in range(15))
