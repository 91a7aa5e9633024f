"""Engine benchmarks (issue 3): insert, contended transfer and 50-document query over HTTP,
each against raw asyncpg doing the same SQL in the same run, printed as ratios."""

from __future__ import annotations

import random
from typing import Any

import asyncpg
import uvloop
from common import (
    HttpConnection,
    RawInserts,
    call,
    drop,
    i64,
    namespace,
    raw_pool,
    raw_retry,
    report,
    run_workers,
    seconds,
    server,
    write_app,
)

APP = {
    "schema/__init__.py": """
        from reactive_store import define_schema, define_table, v
        schema = define_schema({
            "accounts": define_table({"owner": v.string(), "balance": v.int64()})
                .index("by_owner", ["owner"]),
            "items": define_table({"group": v.string(), "n": v.float64()})
                .index("by_group", ["group", "n"]),
        })
    """,
    "functions/bench.py": """
        from reactive_store import mutation, query, v

        @mutation(args={"owner": v.string(), "balance": v.int64()})
        async def open(ctx, owner, balance):
            return await ctx.db.insert("accounts", {"owner": owner, "balance": balance})

        @mutation(args={"src": v.id("accounts"), "dst": v.id("accounts"), "amount": v.int64()})
        async def transfer(ctx, src, dst, amount):
            a = await ctx.db.get(src)
            b = await ctx.db.get(dst)
            await ctx.db.patch(src, {"balance": a["balance"] - amount})
            await ctx.db.patch(dst, {"balance": b["balance"] + amount})

        @mutation(args={"group": v.string(), "count": v.float64()})
        async def fill(ctx, group, count):
            for i in range(int(count)):
                await ctx.db.insert("items", {"group": group, "n": float(i)})

        @query(args={"group": v.string()})
        async def fifty(ctx, group):
            return await ctx.db.query("items").with_index(
                "by_group", lambda q: q.eq("group", group)).take(50)
    """,
}
CONCURRENCY = 8
GAVE_UP = {"raw": 0, "ours": 0}  # transfers that ran out of retries (both sides allow 16)
ACCOUNTS = 10


async def retry(conn: asyncpg.Connection, body: Any) -> None:
    if not await raw_retry(conn, body):
        GAVE_UP["raw"] += 1


async def baselines(duration: float) -> dict[str, float]:
    pool = await raw_pool(CONCURRENCY)
    inserts = RawInserts(pool, "bench_raw_accounts")
    await inserts.create()
    await pool.execute("DROP TABLE IF EXISTS bench_raw_items")
    await pool.execute("CREATE TABLE bench_raw_items (id text PRIMARY KEY, doc jsonb, "
                       "k bytea UNIQUE)")
    results = {"insert": await inserts.rate(CONCURRENCY, duration)}
    await pool.execute("TRUNCATE bench_raw_accounts")
    for i in range(ACCOUNTS):
        await pool.execute("INSERT INTO bench_raw_accounts VALUES ($1, $2, $3, $4, $5)",
                           f"a{i}", '{"balance": 1000}', b"a%d" % i, b"ac%d" % i, 1.0)

    async def transfer_body(conn: asyncpg.Connection, src: str, dst: str) -> None:
        a = await conn.fetchval("SELECT doc FROM bench_raw_accounts WHERE id = $1", src)
        b = await conn.fetchval("SELECT doc FROM bench_raw_accounts WHERE id = $1", dst)
        assert a and b
        await conn.execute("UPDATE bench_raw_accounts SET doc = $2, k = $3 WHERE id = $1",
                           src, '{"balance": 1}', b"s" + src.encode())
        await conn.execute("UPDATE bench_raw_accounts SET doc = $2, k = $3 WHERE id = $1",
                           dst, '{"balance": 1}', b"s" + dst.encode())

    async def transfer(worker: int) -> None:
        src, dst = random.sample(range(ACCOUNTS), 2)
        async with pool.acquire() as conn:
            await retry(conn, lambda c: transfer_body(c, f"a{src}", f"a{dst}"))

    results["transfer"] = await run_workers(CONCURRENCY, duration, transfer)
    await pool.executemany("INSERT INTO bench_raw_items VALUES ($1, $2, $3)",
                           [(f"i{i}", '{"group": "g", "n": 1}', b"g%06d" % i)
                            for i in range(200)])

    async def fifty(worker: int) -> None:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                            readonly=True):
            rows = await conn.fetch("SELECT id, doc FROM bench_raw_items WHERE k >= $1 "
                                    "AND k < $2 ORDER BY k LIMIT 50", b"g", b"h")
            assert len(rows) == 50

    results["query"] = await run_workers(CONCURRENCY, duration, fifty)
    await pool.execute("DROP TABLE bench_raw_accounts, bench_raw_items")
    await pool.close()
    return results


async def ours(url: str, duration: float) -> dict[str, float]:
    conns = [await HttpConnection.open(url) for _ in range(CONCURRENCY)]
    http = conns[0]
    try:
        counter = iter(range(10**9))

        async def insert(worker: int) -> None:
            await call(conns[worker], "mutation", "bench:open",
                       {"owner": f"o{next(counter)}", "balance": i64(1)})

        results = {"insert": await run_workers(CONCURRENCY, duration, insert)}
        ids = [await call(http, "mutation", "bench:open", {"owner": f"acc{i}",
                                                            "balance": i64(1000)})
               for i in range(ACCOUNTS)]

        async def transfer(worker: int) -> None:
            src, dst = random.sample(ids, 2)
            try:
                await call(conns[worker], "mutation", "bench:transfer",
                           {"src": src, "dst": dst, "amount": i64(1)})
            except RuntimeError as exc:
                if "retried" not in str(exc):
                    raise
                GAVE_UP["ours"] += 1

        results["transfer"] = await run_workers(CONCURRENCY, duration, transfer)
        await call(http, "mutation", "bench:fill", {"group": "g", "count": 200})

        async def fifty(worker: int) -> None:
            assert len(await call(conns[worker], "query", "bench:fifty", {"group": "g"})) == 50

        results["query"] = await run_workers(CONCURRENCY, duration, fifty)
        return results
    finally:
        for conn in conns:
            await conn.close()


async def main() -> None:
    duration = seconds(5.0)
    ns = namespace()
    app = write_app(APP)
    base = await baselines(duration)
    try:
        with server(app, ns) as url:
            mine = await ours(url, duration)
    finally:
        await drop(ns)
    report("single-insert mutation, HTTP, 8 clients", mine["insert"], base["insert"], 0.5)
    report("contended transfer mutation with retries", mine["transfer"], base["transfer"], 0.5)
    report("query of 50 documents by index, HTTP", mine["query"], base["query"], 0.3)
    print(f"transfers that ran out of 16 attempts: reactive-store {GAVE_UP['ours']}, "
          f"raw asyncpg {GAVE_UP['raw']}")


if __name__ == "__main__":
    uvloop.run(main())
