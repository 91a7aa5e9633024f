"""Scheduler benchmark (issue 7): lag from due time to start with 1,000 jobs due at once on
two server processes, and scheduled-mutation throughput against the engine's own."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import orjson
import uvloop
from common import (
    DATABASE_URL,
    SMOKE,
    HttpConnection,
    drop,
    namespace,
    report,
    run_workers,
    seconds,
    server,
    write_app,
)

APP = {
    "schema/__init__.py": """
        from reactive_store import define_schema, define_table, v
        schema = define_schema({"runs": define_table({"due": v.float64(), "at": v.float64()})})
    """,
    "functions/jobs.py": """
        import time
        from reactive_store import internal_mutation, mutation, v

        @internal_mutation(args={"due": v.float64()})
        async def run(ctx, due):
            await ctx.db.insert("runs", {"due": due, "at": time.time() * 1000})

        @mutation(args={"count": v.float64(), "at": v.float64()})
        async def schedule(ctx, count, at):
            for _ in range(int(count)):
                await ctx.scheduler.run_at(at, run, {"due": at})

        @mutation(args={"due": v.float64()})
        async def direct(ctx, due):
            await ctx.db.insert("runs", {"due": due, "at": time.time() * 1000})
    """,
}


async def main() -> None:
    jobs = 100 if SMOKE else 1000
    ns = namespace()
    app = write_app(APP)
    try:
        with server(app, ns) as first, server(app, ns) as _second:
            http = await HttpConnection.open(first)
            due = time.time() * 1000 + 3000
            for _ in range(jobs // 100):
                await http.post("/api/mutation", orjson.dumps({
                    "path": "jobs:schedule", "args": {"count": 100.0, "at": due}}))
            conn = await asyncpg.connect(DATABASE_URL)
            table = f'"{ns}"."runs"'
            while await conn.fetchval(f"SELECT count(*) FROM {table}") < jobs:
                await asyncio.sleep(0.05)
            lags = sorted(
                (orjson.loads(r[0])["at"] - due)
                for r in await conn.fetch(f"SELECT doc FROM {table}"))
            drained_s = lags[-1] / 1000
            print(f"scheduler lag, {jobs} jobs due at once on 2 processes: "
                  f"p50 {lags[len(lags) // 2]:.0f} ms, p99 {lags[int(len(lags) * 0.99)]:.0f} ms "
                  f"(targets p50 <= 50 ms, p99 <= 500 ms); "
                  f"throughput {jobs / drained_s:,.0f} scheduled mutations/s")
            await conn.execute(f"TRUNCATE {table}")
            conns = [await HttpConnection.open(first) for _ in range(8)]

            async def direct(worker: int) -> None:
                await conns[worker].post("/api/mutation", orjson.dumps({
                    "path": "jobs:direct", "args": {"due": 0.0}}))

            engine_rate = await run_workers(8, seconds(3.0), direct)
            report("scheduled mutation throughput vs the engine's", jobs / drained_s,
                   engine_rate, 0.5, baseline_name="direct mutations over HTTP, 8 clients")
            await conn.close()
    finally:
        await drop(ns)


if __name__ == "__main__":
    uvloop.run(main())
