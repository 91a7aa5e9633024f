"""Single-insert mutation throughput and ack (issue 13) vs raw asyncpg in the same run."""
# 8 clients over HTTP and 8 official npm clients over the WebSocket; the ack at light load;
# the baseline is raw asyncpg SERIALIZABLE single-row insert transactions.

from __future__ import annotations

import asyncio
import statistics
import time

import orjson
import uvloop
from common import (
    ROOMS_APP,
    SMOKE,
    HttpConnection,
    RawInserts,
    cpu_seconds,
    drop,
    namespace,
    npm_clients,
    quantile,
    raw_pool,
    report,
    report_latency,
    run_workers,
    seconds,
    server,
    server_pid,
    write_app,
)

CLIENTS = 8
ACKS = 30 if SMOKE else 300
GAP = 0.005  # seconds between mutations at light load
SLICES = 3  # alternating baseline and HTTP slices


async def http_rate(url: str, duration: float) -> tuple[float, float]:
    """Mutations/s from CLIENTS keep-alive connections, and the server's CPU us per mutation."""
    conns = [await HttpConnection.open(url) for _ in range(CLIENTS)]
    pid = server_pid(url)
    counter = iter(range(10**9))

    async def insert(worker: int) -> None:
        await conns[worker].post("/api/mutation", orjson.dumps({
            "path": "rooms:post", "args": {"room": 0.0, "body": f"h{next(counter)}"}}))

    try:
        await run_workers(CLIENTS, 0.2, insert)  # warm: statements prepared, pool filled
        cpu = cpu_seconds(pid)
        rate = await run_workers(CLIENTS, duration, insert)
        return rate, (cpu_seconds(pid) - cpu) / (rate * duration) * 1e6
    finally:
        for conn in conns:
            await conn.close()


async def http_acks(url: str) -> list[float]:
    """Milliseconds per mutation over HTTP, one at a time (what the WebSocket path adds shows
    against this)."""
    http = await HttpConnection.open(url)
    out = []
    try:
        for i in range(20 + ACKS):
            start = time.perf_counter()
            await http.post("/api/mutation", orjson.dumps({
                "path": "rooms:post", "args": {"room": 1.0, "body": f"a{i}"}}))
            if i >= 20:
                out.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(GAP)
        return out
    finally:
        await http.close()


async def main() -> None:
    duration = seconds(5.0)
    ns = namespace()
    app = write_app(ROOMS_APP)
    pool = await raw_pool(CLIENTS)
    raw = RawInserts(pool)
    await raw.create()
    try:
        raw_first = await raw.rate(CLIENTS, duration)
        raw_acks = await raw.latencies(ACKS, GAP)
        with server(app, ns) as url:
            # The machine's speed drifts by tens of percent within minutes: the HTTP figure
            # alternates slices of the baseline and of ours, a ratio per slice.
            slices = []
            for _ in range(SLICES):
                raw_slice = await raw.rate(CLIENTS, duration / SLICES)
                ours_slice, cpu_slice = await http_rate(url, duration / SLICES)
                slices.append((raw_slice, ours_slice, cpu_slice))
            pid = server_pid(url)
            cpu = cpu_seconds(pid)
            ws = await npm_clients("throughput", url, clients=CLIENTS, seconds=duration)
            ws_cpu = (cpu_seconds(pid) - cpu) / ws["count"] * 1e6
            acks = await npm_clients("ack", url, count=ACKS, gapMs=GAP * 1000)
            acks_http = await http_acks(url)
        raw_last = await raw.rate(CLIENTS, duration)
    finally:
        await raw.drop()
        await pool.close()
        await drop(ns)
    base = (raw_first + raw_last) / 2
    print(f"raw asyncpg SERIALIZABLE single-row insert transactions, {CLIENTS} connections: "
          f"{raw_first:,.0f} tx/s before, {raw_last:,.0f} after; the WebSocket ratio uses "
          "their mean")
    ratios = sorted(ours / raw_rate for raw_rate, ours, _ in slices)
    report(f"single-insert mutation, HTTP, {CLIENTS} clients (median of {SLICES} alternating "
           "slices)", statistics.median(ours for _, ours, _ in slices),
           statistics.median(raw_rate for raw_rate, _, _ in slices), 0.5)
    print(f"  ratio per slice {', '.join(f'{r:.2f}x' for r in ratios)}; server process CPU "
          f"per mutation {statistics.median(cpu for _, _, cpu in slices):,.0f} us")
    report(f"single-insert mutation, WebSocket, {CLIENTS} official npm clients", ws["rate"],
           base, 0.5)
    print(f"  server process CPU per mutation {ws_cpu:,.0f} us, the npm clients' "
          f"{ws['cpu_s'] / ws['count'] * 1e6:,.0f} us (process start and warm-up included); "
          f"mutation() p50 {quantile(ws['acks'], 0.5):.1f} ms, p99 "
          f"{quantile(ws['acks'], 0.99):.1f} ms")
    report_latency("mutation ack at light load, WebSocket, official npm client, one at a time",
                   acks["acks"], raw_acks, "p50 <= 1.5 ms", "raw asyncpg transaction")
    report_latency("  the same over HTTP, bare client", acks_http, raw_acks,
                   baseline_name="raw asyncpg transaction")


if __name__ == "__main__":
    uvloop.run(main())
