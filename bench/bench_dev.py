"""Hot-reload benchmark (issue 6): save-to-push, from a file written to a subscriber
receiving the changed result, with 100 live subscriptions on a `reactive-store dev` server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import uvloop
import websockets
from common import DATABASE_URL, SMOKE, drop, free_port, namespace, write_app

QUERY = """
from reactive_store import query, v

@query(args={"n": v.float64()})
async def version(ctx, n):
    return "VERSION"
"""
OTHER = """
from reactive_store import query

@query
async def untouched(ctx):
    return 1.0
"""
SUBSCRIPTIONS = 100


async def subscribe(url: str, ready: asyncio.Event, seen: dict[str, float]) -> None:
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(orjson.dumps({"type": "Connect", "sessionId": os.urandom(8).hex(),
                                    "connectionCount": 0, "lastCloseReason": None,
                                    "clientTs": 0}).decode())
        mods = [{"type": "Add", "queryId": i, "udfPath": "live:version", "args": [{"n": i}]}
                for i in range(SUBSCRIPTIONS)]
        await ws.send(orjson.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                                    "modifications": mods}).decode())
        async for text in ws:
            message = orjson.loads(text)
            if message["type"] != "Transition":
                continue
            ready.set()
            for mod in message["modifications"]:
                value = mod.get("value")
                if isinstance(value, str) and value not in seen:
                    seen[value] = time.perf_counter()


async def main() -> None:
    ns = namespace()
    app = write_app({"functions/live.py": QUERY.replace("VERSION", "v0"),
                     "functions/other.py": OTHER})
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reactive_store", "dev", "--app", str(app), "--database-url",
         DATABASE_URL, "--db-schema", ns, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/version").status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        ready, seen = asyncio.Event(), {}
        task = asyncio.create_task(subscribe(url.replace("http", "ws") + "/api/sync", ready, seen))
        await asyncio.wait_for(ready.wait(), 30)
        samples = []
        rounds = 3 if SMOKE else 20
        for i in range(1, rounds + 1):
            await asyncio.sleep(0.3)
            written = time.perf_counter()
            Path(app, "functions", "live.py").write_text(QUERY.replace("VERSION", f"v{i}"))
            while f"v{i}" not in seen:
                await asyncio.sleep(0.002)
                if time.perf_counter() - written > 10:
                    raise RuntimeError(f"no push for v{i}")
            samples.append((seen[f"v{i}"] - written) * 1000)
        task.cancel()
        status = httpx.get(url + "/api/dev/status").json()
        samples.sort()
        print(f"save-to-push with {SUBSCRIPTIONS} live subscriptions: "
              f"p50 {samples[len(samples) // 2]:.0f} ms, max {samples[-1]:.0f} ms over "
              f"{len(samples)} edits (target p50 <= 300 ms); last reload re-imported "
              f"{status['last']['reimported']} in {status['last']['ms']} ms")
    finally:
        proc.terminate()
        proc.wait(10)
        await drop(ns)


if __name__ == "__main__":
    uvloop.run(main())
