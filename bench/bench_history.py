"""What query history costs (issue 17): mutations with before-images kept vs not, in the same
run, and a query at a past timestamp vs the same query now."""
# Two servers on one database, one with REACTIVE_STORE_LIMIT_QUERY_HISTORY_RETENTION_S=0,
# driven in alternating rounds (the machine is shared: rounds interleave the noise).

from __future__ import annotations

import os
import random
import time
from contextlib import ExitStack

import orjson
import uvloop
from bench_engine import APP
from common import (
    HttpConnection,
    call,
    cpu_seconds,
    drop,
    i64,
    namespace,
    percentiles,
    run_workers,
    seconds,
    server,
    server_pid,
    write_app,
)

CLIENTS = 8
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "4"))
ACCOUNTS = 50
VARIABLE = "REACTIVE_STORE_LIMIT_QUERY_HISTORY_RETENTION_S"


class Target:
    """One server, its connections and accounts, and its totals per workload."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pid = server_pid(url)
        self.conns: list[HttpConnection] = []
        self.ids: list[str] = []
        self.done: dict[str, tuple[float, float, float]] = {}  # ops, seconds, cpu seconds

    async def open(self) -> None:
        self.conns = [await HttpConnection.open(self.url) for _ in range(CLIENTS)]
        self.ids = [await call(self.conns[0], "mutation", "bench:open",
                               {"owner": f"acc{i}", "balance": i64(10**9)})
                    for i in range(ACCOUNTS)]
        await call(self.conns[0], "mutation", "bench:fill", {"group": "g", "count": 200})

    async def round(self, name: str, duration: float) -> None:
        counter = iter(range(10**9))

        async def insert(worker: int) -> None:
            await call(self.conns[worker], "mutation", "bench:open",
                       {"owner": f"o{next(counter)}", "balance": i64(1)})

        async def transfer(worker: int) -> None:
            src, dst = random.sample(self.ids, 2)
            await call(self.conns[worker], "mutation", "bench:transfer",
                       {"src": src, "dst": dst, "amount": i64(1)})

        async def fill(worker: int) -> None:
            await call(self.conns[worker], "mutation", "bench:fill",
                       {"group": f"f{next(counter)}", "count": 10.0})

        op = {"insert": insert, "transfer": transfer, "fill": fill}[name]
        cpu = cpu_seconds(self.pid)
        rate = await run_workers(CLIENTS, duration, op)
        ops, secs, cpus = self.done.get(name, (0.0, 0.0, 0.0))
        self.done[name] = (ops + rate * duration, secs + duration,
                           cpus + cpu_seconds(self.pid) - cpu)

    async def close(self) -> None:
        for conn in self.conns:
            await conn.close()


async def past_query(target: Target) -> tuple[list[float], list[float]]:
    """Milliseconds for the 50-document query now, and at a timestamp before 200 more
    documents were inserted inside its range and 200 elsewhere (the overlay skips them)."""
    http = target.conns[0]
    ts = orjson.loads(await http.post("/api/query_ts", b"{}"))["ts"]
    for i in range(200):
        await call(http, "mutation", "bench:open", {"owner": f"p{i}", "balance": i64(1)})
    await call(http, "mutation", "bench:fill", {"group": "g", "count": 200})
    now, past = [], []
    body = {"path": "bench:fifty", "args": {"group": "g"}, "format": "convex_encoded_json"}
    for _ in range(200):
        start = time.perf_counter()
        await http.post("/api/query", orjson.dumps(body))
        now.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        raw = await http.post("/api/query_at_ts", orjson.dumps({**body, "ts": ts}))
        past.append((time.perf_counter() - start) * 1000)
        assert orjson.loads(raw)["status"] == "success", raw
    return now, past


async def main() -> None:
    duration = seconds(2.0)
    app = write_app(APP)
    names = {"on": namespace(), "off": namespace()}
    targets: dict[str, Target] = {}
    try:
        with ExitStack() as stack:
            for mode in ("on", "off"):
                os.environ[VARIABLE] = "3600" if mode == "on" else "0"
                targets[mode] = Target(stack.enter_context(server(app, names[mode])))
                await targets[mode].open()
            for name in ("insert", "transfer", "fill"):  # warm: statements prepared
                for target in targets.values():
                    await target.round(name, 0.3)
                    target.done.clear()
            for _ in range(ROUNDS):
                for name in ("insert", "transfer", "fill"):
                    for mode in ("on", "off") if random.random() < 0.5 else ("off", "on"):
                        await targets[mode].round(name, duration)
            now, past = await past_query(targets["on"])
            for target in targets.values():
                await target.close()
    finally:
        for ns in names.values():
            await drop(ns)
    for name, text in (("insert", "single-insert mutation"),
                       ("transfer", "transfer mutation (2 patches)"),
                       ("fill", "mutation inserting 10 documents")):
        on, off = targets["on"].done[name], targets["off"].done[name]
        rate_on, rate_off = on[0] / on[1], off[0] / off[1]
        cpu_on, cpu_off = on[2] / on[0] * 1e6, off[2] / off[0] * 1e6
        print(f"{text}, HTTP, {CLIENTS} clients: history on {rate_on:,.0f}/s, off "
              f"{rate_off:,.0f}/s ({rate_on / rate_off:.2f}x); server CPU per mutation "
              f"{cpu_on:,.0f} vs {cpu_off:,.0f} us")
    print(f"50-document query now (ms): {percentiles(now)}")
    print(f"the same at a ts 400 documents ago (ms): {percentiles(past)}")


if __name__ == "__main__":
    uvloop.run(main())
