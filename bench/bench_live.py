"""Live-query benchmarks (issue 4): commit -> push latency, memory per subscription,
database queries while idle, and invalidation matching cost at 1k vs 100k intervals."""

from __future__ import annotations

import asyncio
import base64
import os
import random
import struct
import sys
import time
from typing import Any

import orjson
import uvloop
import websockets
from common import (
    ROOMS_APP,
    SMOKE,
    HttpConnection,
    drop,
    namespace,
    percentiles,
    seconds,
    server,
    server_pid,
    sync_url,
    write_app,
)


def ts_ns(encoded: str) -> int:
    value: int = struct.unpack("<Q", base64.b64decode(encoded))[0]
    return value


class Subscriber:
    """A raw protocol client holding some subscriptions; records push latencies."""

    def __init__(self, url: str, rooms: list[int], latencies: list[float]) -> None:
        self.url, self.rooms, self.latencies = url, rooms, latencies
        self.ready = asyncio.Event()

    async def run(self) -> None:
        async with websockets.connect(self.url, max_size=None, ping_interval=None) as ws:
            await ws.send(orjson.dumps({"type": "Connect", "sessionId": os.urandom(8).hex(),
                                        "connectionCount": 0, "lastCloseReason": None,
                                        "clientTs": 0}).decode())
            mods = [{"type": "Add", "queryId": i, "udfPath": "rooms:latest",
                     "args": [{"room": float(room)}]} for i, room in enumerate(self.rooms)]
            await ws.send(orjson.dumps({"type": "ModifyQuerySet", "baseVersion": 0,
                                        "newVersion": 1, "modifications": mods}).decode())
            async for text in ws:
                now = time.time_ns()
                message = orjson.loads(text)
                if message["type"] != "Transition":
                    continue
                if not self.ready.is_set():
                    self.ready.set()
                    continue
                if message["modifications"]:
                    committed = ts_ns(message["endVersion"]["ts"])
                    self.latencies.append((now - committed) / 1e6)


async def writer(url: str, rooms: int, rate: float, duration: float) -> int:
    http = await HttpConnection.open(url)
    sent = 0
    start = time.perf_counter()
    while time.perf_counter() - start < duration:
        body = orjson.dumps({"path": "rooms:post", "args": {
            "room": float(random.randrange(rooms)), "body": "hello"}})
        await http.post("/api/mutation", body)
        sent += 1
        delay = start + sent / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    await http.close()
    return sent


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def latency_case(name: str, clients: int, per_client: int, rooms: int,
                       rate: float, duration: float, targets: str) -> None:
    ns = namespace()
    app = write_app(ROOMS_APP)
    try:
        with server(app, ns) as url:
            pid = server_pid(url)
            ws_url = sync_url(url)
            latencies: list[float] = []
            before = rss_kib(pid)
            subs = [Subscriber(ws_url, [(c * per_client + q) % rooms for q in range(per_client)],
                               latencies) for c in range(clients)]
            tasks = [asyncio.create_task(s.run()) for s in subs]
            await asyncio.wait_for(asyncio.gather(*[s.ready.wait() for s in subs]), 120)
            subscribed = rss_kib(pid)
            idle = await idle_queries(url, 2.0 if SMOKE else 5.0)
            sent = await writer(url, rooms, rate, duration)
            await asyncio.sleep(0.5)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            total = clients * per_client
            print(f"{name}: {percentiles(latencies)}; {sent} mutations at {rate:.0f}/s "
                  f"(targets {targets})")
            print(f"  {total} subscriptions: {(subscribed - before) * 1024 / total:,.0f} "
                  f"bytes of server memory each; database transactions while idle "
                  f"{idle} (target 0)")
    finally:
        await drop(ns)


async def idle_queries(url: str, wait: float) -> int:
    """Transactions the server started while every subscriber sat idle (its own counter:
    other users of the same Postgres would blur pg_stat_database)."""
    http = await HttpConnection.open(url)
    try:
        first = orjson.loads(await http.get("/api/_stats"))["transactions"]
        await asyncio.sleep(wait)
        second = orjson.loads(await http.get("/api/_stats"))["transactions"]
        return int(second - first)
    finally:
        await http.close()


def matching_cost() -> None:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    from reactive_store.keys import encode_tuple, prefix_end
    from reactive_store.live.interval_index import IntervalIndex

    def build(n: int) -> tuple[Any, list[bytes]]:
        index: IntervalIndex[int] = IntervalIndex()
        for i in range(n):
            prefix = encode_tuple([float(i)])
            index.add(i, prefix, prefix_end(prefix))
        keys = [encode_tuple([float(random.randrange(n)), 1.0, "id"]) for _ in range(10)]
        return index, keys

    def cost(n: int) -> float:
        index, keys = build(n)
        rounds = 2000 if not SMOKE else 200
        start = time.perf_counter()
        for _ in range(rounds):
            index.stab_many(keys)
        return (time.perf_counter() - start) / rounds * 1e6

    small, large = cost(1_000), cost(100_000)
    print(f"invalidation matching per commit (10 keys written): {small:.1f} us at 1k live "
          f"intervals, {large:.1f} us at 100k: ratio {large / small:.2f}x (target <= 2x)")


async def main() -> None:
    duration = seconds(10.0)
    clients = 100 if SMOKE else 1000
    await latency_case(f"commit -> push, {clients:,} clients", clients, 1, 100, 100.0, duration,
                       "p50 <= 10 ms, p99 <= 50 ms")
    subs = 1000 if SMOKE else 10_000
    await latency_case("commit -> push, 10,000 distinct subscriptions", 100, subs // 100,
                       subs, 100.0, duration, "p50 <= 25 ms, p99 <= 100 ms")
    matching_cost()


if __name__ == "__main__":
    uvloop.run(main())
