"""The commit-step floor (issue 13): each way of ordering and announcing a commit, raw asyncpg."""
# 8 connections, single-row SERIALIZABLE insert transactions, every variant in one run, as tx/s
# and p50 latency relative to the plain insert transaction (measured first and again last).

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import uvloop
from common import DATABASE_URL, drop, namespace, quantile, seconds

from reactive_store.storage.sequencer import Sequencer

CONNECTIONS = 8
Body = Callable[[asyncpg.Connection, str, str], Awaitable[None]]


def variants(ns: str) -> dict[str, tuple[str, Body]]:
    """name -> (what it is, one transaction); `m` is the insert, run inside every variant."""
    m = f"INSERT INTO {ns}.m VALUES ($1, 'x')"
    log = f"INSERT INTO {ns}.log VALUES (pg_current_xact_id(), 'k')"

    async def tx(conn: asyncpg.Connection, key: str, *inside: str, after: str = "") -> None:
        async with conn.transaction(isolation="serializable"):
            await conn.execute(m, key)
            for sql in inside:
                await conn.execute(sql)
        if after:
            await conn.execute(after)

    notify = "SELECT pg_notify('rs_bench', 'x')"
    lock = f"SELECT pg_advisory_xact_lock({lock_key(ns)})"
    return {
        "plain": ("plain insert transaction",
                  lambda c, k, ns: tx(c, k)),
        "seq": ("+ nextval() inside",
                lambda c, k, ns: tx(c, k, f"SELECT nextval('{ns}.s')")),
        "notify": ("+ pg_notify inside the transaction",
                   lambda c, k, ns: tx(c, k, notify)),
        "notify_after": ("+ pg_notify as a separate statement after COMMIT",
                         lambda c, k, ns: tx(c, k, after=notify)),
        "xid_log": ("+ commit-log row keyed by pg_current_xact_id(), pg_notify after COMMIT",
                    lambda c, k, ns: tx(c, k, log, after=notify)),
        "xid_log_cte": ("  the same, the log row in the insert's statement (one round trip less)",
                        lambda c, k, ns: one_statement(c, k, ns, notify)),
        "emit_message": ("+ pg_logical_emit_message(transactional) inside (the logical-decoding "
                         "write set)",
                         lambda c, k, ns: tx(c, k, "SELECT pg_logical_emit_message(true, "
                                                   "'rs_bench', 'k')")),
        "lock": ("+ pg_advisory_xact_lock", lambda c, k, ns: tx(c, k, lock)),
        "lock_notify": ("+ advisory lock + pg_notify inside", lambda c, k, ns: tx(c, k, lock,
                                                                                   notify)),
        "today": ("+ one call doing lock, nextval/setval, log row, pg_notify (_commit as of "
                  "2026-11)", lambda c, k, ns: tx(c, k, f"SELECT {ns}.commit_step('k')")),
        "sequenced": ("+ log row by xid, then its timestamp from a batched _sequence call "
                      "(the design in use; a socket mutation waits for it)",
                      lambda c, k, ns: sequenced(c, k, ns, wait=True)),
        "sequenced_nowait": ("  the same, not waiting for the timestamp (an HTTP mutation)",
                             lambda c, k, ns: sequenced(c, k, ns, wait=False)),
        "sequenced_async": ("  waiting, the sequencing transaction committed with "
                            "synchronous_commit off", lambda c, k, ns: sequenced(
                                c, k, ns, wait=True, async_sequence=True)),
        "one_trip": ("  plain, BEGIN + INSERT + COMMIT sent as one simple query (1 round trip)",
                     lambda c, k, ns: c.execute(
                         "BEGIN ISOLATION LEVEL SERIALIZABLE; "
                         f"INSERT INTO {ns}.m VALUES ('{k}', 'x'); COMMIT")),
        "one_trip_emit": ("  BEGIN + INSERT + pg_logical_emit_message + COMMIT as one simple query "
                          "(the write set in the WAL: no log table, nothing after COMMIT)",
                          lambda c, k, ns: c.execute(emit_one_trip(ns, k))),
        "one_trip_sequenced": ("  BEGIN + INSERT + log row by xid + COMMIT as one simple query, "
                               "then a batched _sequence not waited for (an HTTP mutation "
                               "whose writes are all inserts)",
                               lambda c, k, ns: one_trip_sequenced(c, k, ns)),
    }


def emit_one_trip(ns: str, key: str) -> str:
    return ("BEGIN ISOLATION LEVEL SERIALIZABLE; "
            f"INSERT INTO {ns}.m VALUES ('{key}', 'x'); "
            f"SELECT pg_logical_emit_message(true, '{ns}', '{key}'); COMMIT")


async def decoding_cost(ns: str, duration: float) -> str:
    """What reading the emitted write sets back costs: a temporary logical slot (pgoutput,
    messages only) decodes what `one_trip_emit` wrote in `duration`; or why not measured."""
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        level = await conn.fetchval("SHOW wal_level")
        if level != "logical":
            return (f"logical decoding: not measured here (wal_level is {level}; it must be "
                    "logical, which takes a server restart)")
        await conn.execute(f"CREATE PUBLICATION {ns}_pub")  # no tables: messages only
        try:  # a temporary slot holds WAL only while this connection lives
            await conn.execute(f"SELECT pg_create_logical_replication_slot('{ns}_slot', "
                               "'pgoutput', true)")
            rate, _ = await run(ns, lambda c, k, ns: c.execute(emit_one_trip(ns, k)), duration)
            start = time.perf_counter()
            messages = await conn.fetchval(
                "SELECT count(*) FILTER (WHERE get_byte(data, 0) = ascii('M')) FROM "
                f"pg_logical_slot_get_binary_changes('{ns}_slot', NULL, NULL, 'proto_version', "
                f"'1', 'publication_names', '{ns}_pub', 'messages', 'true')")
            took = time.perf_counter() - start
        finally:
            await conn.execute(f"DROP PUBLICATION {ns}_pub")
    finally:
        await conn.close()
    return (f"logical decoding (pgoutput, temporary slot, one backend): {messages:,} write sets "
            f"written at {rate:,.0f} tx/s read back in {took * 1000:,.0f} ms, "
            f"{took / max(messages, 1) * 1e6:.1f} us each")


def lock_key(ns: str) -> int:
    """An advisory lock key of this run only (other users of the database take theirs)."""
    return int(ns.removeprefix("bench_"), 16) % 2**40


SEQUENCERS: dict[str, Sequencer] = {}
ASYNC_SEQUENCE = [False]  # set by the variants below: the sequencing commit not flushed


async def sequenced(conn: asyncpg.Connection, key: str, ns: str, wait: bool,
                    async_sequence: bool = False) -> None:
    """The commit step as the store does it: the log row and COMMIT in one message, then
    the process's Sequencer (shared by every connection here) gives the timestamp."""
    await conn.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
    xid = await conn.fetchval(f"INSERT INTO {ns}.m VALUES ($1, 'x') "
                              "RETURNING pg_current_xact_id()::text::bigint", key)
    await conn.execute(f"INSERT INTO {ns}.clog (xid, writes) VALUES ({xid}, 'k'); COMMIT")
    sequencer = SEQUENCERS[ns]
    ASYNC_SEQUENCE[0] = async_sequence
    if wait:
        await sequencer.timestamp(xid)
    else:
        sequencer.announce(xid)


async def one_trip_sequenced(conn: asyncpg.Connection, key: str, ns: str) -> None:
    """The insert buffered until COMMIT: the whole transaction is one message; the process's
    Sequencer sequences whatever committed, keyed by nothing (it needs no xid)."""
    await conn.execute("BEGIN ISOLATION LEVEL SERIALIZABLE; "
                       f"INSERT INTO {ns}.m VALUES ('{key}', 'x'); "
                       f"INSERT INTO {ns}.clog (xid, writes) "
                       "VALUES (pg_current_xact_id()::text::bigint, 'k'); COMMIT")
    ASYNC_SEQUENCE[0] = True
    SEQUENCERS[ns].nudge()


async def start_sequencer(ns: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(DATABASE_URL)

    async def call(xids: list[int]) -> dict[int, int]:
        rows = await conn.fetch(f"SELECT xid, ts FROM {ns}.sequence($1::bigint[], $2)", xids,
                                ASYNC_SEQUENCE[0])
        return {r[0]: r[1] for r in rows}

    SEQUENCERS[ns] = Sequencer(call, in_flight=1)
    return conn


async def one_statement(conn: asyncpg.Connection, key: str, ns: str, after: str) -> None:
    async with conn.transaction(isolation="serializable"):
        await conn.execute(f"WITH w AS (INSERT INTO {ns}.m VALUES ($1, 'x')) "
                           f"INSERT INTO {ns}.log VALUES (pg_current_xact_id(), 'k')", key)
    await conn.execute(after)


async def setup(ns: str) -> None:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute(f"""
            CREATE SCHEMA {ns};
            CREATE TABLE {ns}.m (id text PRIMARY KEY, body text);
            CREATE SEQUENCE {ns}.s;
            CREATE TABLE {ns}.log (xid xid8 PRIMARY KEY, writes text);
            CREATE TABLE {ns}.commits (ts bigint PRIMARY KEY, writes text NOT NULL,
                                       committed_at timestamptz NOT NULL DEFAULT now());
            CREATE FUNCTION {ns}.commit_step(writes text) RETURNS bigint LANGUAGE plpgsql AS $$
            DECLARE t bigint;
            BEGIN
                PERFORM set_config('lock_timeout', '0', true);
                PERFORM pg_advisory_xact_lock({lock_key(ns) + 1});
                t := greatest(nextval('{ns}.s'),
                              (extract(epoch FROM clock_timestamp()) * 1e9)::bigint);
                PERFORM setval('{ns}.s', t);
                INSERT INTO {ns}.commits (ts, writes) VALUES (t, writes);
                PERFORM pg_notify('rs_bench', t::text || ' ' || writes);
                RETURN t;
            END $$;""")
        await conn.execute(sequence_ddl(ns))
    finally:
        await conn.close()


def sequence_ddl(ns: str) -> str:
    """A commit log keyed by xid and `_sequence` as storage/commit_log_ddl.py has them
    (simplified): the unsequenced rows are searched from the watermark up."""
    unsequenced = "{a}.ts IS NULL AND {a}.xid >= (SELECT below FROM " + ns + ".sequencing)"
    return f"""
        CREATE TABLE {ns}.clog (ts bigint UNIQUE, xid bigint UNIQUE, writes text NOT NULL);
        CREATE INDEX ON {ns}.clog (xid) WHERE ts IS NULL;
        CREATE TABLE {ns}.sequencing (below bigint NOT NULL);
        INSERT INTO {ns}.sequencing VALUES (0);
        CREATE SEQUENCE {ns}.s2;
        CREATE FUNCTION {ns}.sequence(wanted bigint[], async boolean)
        RETURNS TABLE (xid bigint, ts bigint)
        LANGUAGE plpgsql AS $$
        #variable_conflict use_column
        DECLARE t bigint; k bigint := 0; w bigint; r record;
        BEGIN
            IF EXISTS (SELECT 1 FROM {ns}.clog c WHERE {unsequenced.format(a="c")}) THEN
                IF async THEN
                    PERFORM set_config('synchronous_commit', 'off', true);
                END IF;
                PERFORM pg_advisory_xact_lock({lock_key(ns) + 2});
                w := pg_snapshot_xmin(pg_current_snapshot())::text::bigint;
                t := greatest(nextval('{ns}.s2'),
                              (extract(epoch FROM clock_timestamp()) * 1e9)::bigint);
                FOR r IN
                    WITH p AS (SELECT u.ctid AS tid, row_number() OVER (ORDER BY u.xid) - 1
                                   AS i FROM {ns}.clog u WHERE {unsequenced.format(a="u")}),
                         given AS (UPDATE {ns}.clog c SET ts = t + p.i FROM p
                                   WHERE c.ctid = p.tid RETURNING c.ts, c.writes)
                    SELECT given.ts, given.writes FROM given ORDER BY given.ts
                LOOP
                    k := k + 1;
                    PERFORM pg_notify('rs_bench', r.ts::text || ' ' || r.writes);
                END LOOP;
                PERFORM setval('{ns}.s2', t + greatest(k, 1) - 1);
                UPDATE {ns}.sequencing SET below = w;
            END IF;
            RETURN QUERY SELECT c.xid, c.ts FROM {ns}.clog c
                WHERE c.xid = ANY(wanted) AND c.ts IS NOT NULL;
        END $$;"""


async def run(ns: str, body: Body, duration: float) -> tuple[float, float]:
    """Transactions per second and p50 latency (ms) of `body` on CONNECTIONS connections."""
    conns = [await asyncpg.connect(DATABASE_URL) for _ in range(CONNECTIONS)]
    listener = await asyncpg.connect(DATABASE_URL)  # the server LISTENs on its channel too
    await listener.add_listener("rs_bench", lambda *a: None)
    latencies: list[float] = []
    stop = time.perf_counter() + duration

    async def worker(conn: asyncpg.Connection) -> None:
        for _ in range(3):  # prepare the statements
            await body(conn, uuid.uuid4().hex, ns)
        while time.perf_counter() < stop:
            start = time.perf_counter()
            try:
                await body(conn, uuid.uuid4().hex, ns)
            except asyncpg.SerializationError:
                continue
            latencies.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    rate = len(latencies) / (time.perf_counter() - start)
    for conn in [*conns, listener]:
        await conn.close()
    return rate, quantile(latencies, 0.5)


async def main() -> None:
    ns = namespace()
    duration = seconds(4.0)
    await setup(ns)
    sequencer_conn = await start_sequencer(ns)
    try:
        table = variants(ns)
        order = [*table, "plain"]  # plain again last: the drift over the run
        results: dict[str, list[tuple[float, float]]] = {}
        for name in order:
            results.setdefault(name, []).append(await run(ns, table[name][1], duration))
        decoding = await decoding_cost(ns, duration)
    finally:
        await SEQUENCERS.pop(ns).close()
        await sequencer_conn.close()
        await drop(ns)
    plain = [rate for rate, _ in results["plain"]]
    base = sum(plain) / len(plain)
    base_p50 = sum(p50 for _, p50 in results["plain"]) / len(plain)
    print(f"commit step floor: raw asyncpg, {CONNECTIONS} connections, single-row SERIALIZABLE "
          f"insert transactions, {duration:g} s each (plain first {plain[0]:,.0f} and last "
          f"{plain[-1]:,.0f} tx/s)")
    print("    tx/s  vs plain  p50 ms  vs plain  variant")
    for name, (label, _) in table.items():
        rate = sum(r for r, _ in results[name]) / len(results[name])
        p50 = sum(p for _, p in results[name]) / len(results[name])
        print(f"  {rate:6,.0f}  {rate / base:7.2f}x  {p50:6.2f}  {p50 / base_p50:7.2f}x  {label}")
    print(decoding)


if __name__ == "__main__":
    uvloop.run(main())
