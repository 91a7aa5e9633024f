"""Observability overhead (issue 15): capture and recording on vs off, and cost per log line.

Single-insert mutation and 50-document query rates with recording on and off, measured in
alternating rounds (A B A B ...) so drift on a shared machine hits both alike; each side's
figure is the median of its rounds, and the ratio on / off is the overhead (target: at
least 0.95, within 5%). First in-process: one deployment whose observer is switched on and
off between rounds (the engine alone, where the per-call cost shows most, and nothing else
differs). Then over HTTP with 8 clients, as bench_engine.py measures, against two server
processes (`--observe on`, the default, and `--observe off`): two processes differ in more
than recording, so read that pair with its noise in mind.
Wall time on a shared machine is noisy, so the in-process part also reports the server
process's CPU time per call (which other processes' load barely moves), and the cost of the
observer alone per execution. Last, the cost of one `print()` line and one `logging`
line: a query logging 100 lines against the same query logging none, per line.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop
from common import (
    DATABASE_URL,
    SMOKE,
    HttpConnection,
    call,
    drop,
    i64,
    namespace,
    report,
    run_workers,
    seconds,
    server,
    write_app,
)

from reactive_store.deployment import Deployment, Settings
from reactive_store.engine.engine import Engine
from reactive_store.observe.metrics import Metrics
from reactive_store.observe.observer import Observer, ObserveSettings

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
        import logging
        from reactive_store import mutation, query, v

        log = logging.getLogger(__name__)

        @mutation(args={"owner": v.string(), "balance": v.int64()})
        async def open(ctx, owner, balance):
            return await ctx.db.insert("accounts", {"owner": owner, "balance": balance})

        @mutation(args={"group": v.string(), "count": v.float64()})
        async def fill(ctx, group, count):
            for i in range(int(count)):
                await ctx.db.insert("items", {"group": group, "n": float(i)})

        @query(args={"group": v.string()})
        async def fifty(ctx, group):
            return await ctx.db.query("items").with_index(
                "by_group", lambda q: q.eq("group", group)).take(50)

        @query(args={"lines": v.float64(), "how": v.string()})
        async def chatty(ctx, lines, how):
            for i in range(int(lines)):
                if how == "print":
                    print("processing item", i, "of the batch")
                else:
                    log.info("processing item %d of the batch", i)
            return 0
    """,
}
ROUNDS = 2 if SMOKE else 6
CONCURRENCY = 8
Op = Callable[[int], Awaitable[None]]


async def alternate(duration: float, on: Op, off: Op, workers: int) -> tuple[float, float]:
    """Median ops/s of each side over alternating rounds."""
    rates: dict[str, list[float]] = {"on": [], "off": []}
    for round_no in range(ROUNDS):
        order = [("on", on), ("off", off)] if round_no % 2 == 0 else [("off", off), ("on", on)]
        for name, op in order:
            rates[name].append(await run_workers(workers, duration, op))
    return statistics.median(rates["on"]), statistics.median(rates["off"])


async def cpu_per_call(on: Op, off: Op, calls: int) -> tuple[float, float]:
    """Median CPU microseconds of this process per call, each side, alternating rounds.
    CPU time barely moves when other processes load the machine; wall time does."""
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    for round_no in range(ROUNDS):
        order = [("on", on), ("off", off)] if round_no % 2 == 0 else [("off", off), ("on", on)]
        for name, op in order:
            start = time.process_time()
            for _ in range(calls):
                await op(0)
            cpu[name].append((time.process_time() - start) / calls * 1e6)
    return statistics.median(cpu["on"]), statistics.median(cpu["off"])


def observer_cost() -> float:
    """Microseconds the observer adds to one execution (no database): the scopes, a
    capture, the record in the ring and the metrics."""
    metrics = Metrics(process_metrics=False)
    observer = Observer(ObserveSettings(), record=metrics.record)
    n = 2_000 if SMOKE else 50_000
    start = time.perf_counter()
    for _ in range(n):
        with observer.execution("bench:open", "mutation", None), observer.attempt(None):
            pass
    return (time.perf_counter() - start) / n * 1e6


async def in_process(app: Path, duration: float) -> dict[str, tuple[float, float]]:
    """One deployment, its observer switched on and off between rounds: the same tables,
    pool and code, so the only difference is the recording."""
    d = Deployment(Settings(app_dir=app, database_url=DATABASE_URL, namespace=namespace(),
                            run_jobs=False))
    engine = await d.start()
    counter = iter(range(10**9))
    try:
        def switched(enabled: bool, op: Op) -> Op:
            async def run(worker: int) -> None:
                engine.observer.enabled = enabled
                await op(worker)
            return run

        async def insert(worker: int) -> None:
            await engine.run_mutation("bench:open", {"owner": f"o{next(counter)}",
                                                     "balance": 1})

        async def query(worker: int) -> None:
            assert len((await engine.run_query("bench:fifty", {"group": "g"})).value) == 50

        calls = 30 if SMOKE else 400
        results = {}
        for name, op in (("insert", insert), ("query", query)):
            if name == "query":
                await engine.run_mutation("bench:fill", {"group": "g", "count": 200})
            on, off = switched(True, op), switched(False, op)
            results[name] = await alternate(duration, on, off, 1)
            results[f"{name} cpu"] = await cpu_per_call(on, off, calls)
        engine.observer.enabled = True
        results["lines"] = await line_cost(engine)
        return results
    finally:
        await d.store.drop()
        await d.stop()


async def line_cost(engine: Engine) -> tuple[float, float]:
    """Microseconds per logged line: print() and logging, 100 lines vs none."""
    async def per_call(lines: int, how: str) -> float:
        n = 20 if SMOKE else 200
        start = time.perf_counter()
        for _ in range(n):
            await engine.run_query("bench:chatty", {"lines": lines, "how": how})
        return (time.perf_counter() - start) / n

    out = []
    for how in ("print", "logging"):
        base = min([await per_call(0, how) for _ in range(3)])
        loud = min([await per_call(100, how) for _ in range(3)])
        out.append(max(0.0, (loud - base) / 100 * 1e6))
    return out[0], out[1]


async def over_http(url_on: str, url_off: str, duration: float) -> dict[str, tuple[float, float]]:
    conns = {url: [await HttpConnection.open(url) for _ in range(CONCURRENCY)]
             for url in (url_on, url_off)}
    counter = iter(range(10**9))
    try:
        def insert(url: str) -> Op:
            async def op(worker: int) -> None:
                await call(conns[url][worker], "mutation", "bench:open",
                           {"owner": f"o{next(counter)}", "balance": i64(1)})
            return op

        def query(url: str) -> Op:
            async def op(worker: int) -> None:
                assert len(await call(conns[url][worker], "query", "bench:fifty",
                                      {"group": "g"})) == 50
            return op

        results = {"insert": await alternate(duration, insert(url_on), insert(url_off),
                                             CONCURRENCY)}
        for url in (url_on, url_off):
            await call(conns[url][0], "mutation", "bench:fill", {"group": "g", "count": 200})
        results["query"] = await alternate(duration, query(url_on), query(url_off),
                                           CONCURRENCY)
        return results
    finally:
        for group in conns.values():
            for conn in group:
                await conn.close()


def show(label: str, figures: tuple[float, float]) -> None:
    report(label, figures[0], figures[1], 0.95, baseline_name="recording off")


async def main() -> None:
    duration = seconds(2.0)
    app = write_app(APP)
    engine = await in_process(app, duration)
    ns_on, ns_off = namespace(), namespace()
    try:
        with server(app, ns_on) as url_on, server(app, ns_off, "--observe", "off") as url_off:
            http = await over_http(url_on, url_off, duration)
    finally:
        await drop(ns_on)
        await drop(ns_off)
    print(f"recording on vs off, median of {ROUNDS} alternating rounds of {duration:g} s")
    show("single-insert mutation, in-process, 1 caller", engine["insert"])
    show("query of 50 documents, in-process, 1 caller", engine["query"])
    for name in ("insert", "query"):
        on, off = engine[f"{name} cpu"]
        print(f"{name}, CPU of the server process per call: recording on {on:.0f} µs | off "
              f"{off:.0f} µs | ratio {off / on:.2f}x of throughput "
              f"({'meets' if off / on >= 0.95 else 'short of'} target 0.95x)")
    show("single-insert mutation, HTTP, 8 clients", http["insert"])
    show("query of 50 documents, HTTP, 8 clients", http["query"])
    per_print, per_logging = engine["lines"]
    print(f"cost per logged line (a query logging 100 lines vs none): print() "
          f"{per_print:.1f} µs, logging {per_logging:.1f} µs")
    print(f"the observer alone, per execution (no database): {observer_cost():.1f} µs")


if __name__ == "__main__":
    uvloop.run(main())
