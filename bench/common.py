"""Shared benchmark plumbing: server processes, raw asyncpg baselines, timed loops, reports."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
SMOKE = os.environ.get("BENCH_SMOKE") == "1"


def seconds(default: float) -> float:
    """Run length: short in smoke mode (CI), `default` otherwise."""
    return 0.5 if SMOKE else float(os.environ.get("BENCH_SECONDS", default))


def write_app(files: dict[str, str]) -> Path:
    root = Path(tempfile.mkdtemp(prefix="rs-bench-"))
    for rel, source in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip())
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def server(app: Path, namespace: str, *extra: str,
           database_url: str = DATABASE_URL) -> Iterator[str]:
    """A `reactive-store serve` process on a free port; yields its URL.

    Every load generator here connects from 127.0.0.1, so the per-address socket limit is
    off for benchmark servers (a count of 0 is no limit)."""
    port = free_port()
    env = {**os.environ, "REACTIVE_STORE_LIMIT_SOCKETS_PER_ADDRESS": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reactive_store", "serve", "--app", str(app),
         "--database-url", database_url, "--db-schema", namespace, "--port", str(port),
         "--log-level", "warning", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/version").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("server did not start: " + proc.stderr.read().decode()[-2000:])
        time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:  # a slow shutdown must not cost the figures
            proc.kill()
            proc.wait()


def namespace() -> str:
    return "bench_" + uuid.uuid4().hex[:10]


async def drop(ns: str) -> None:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{ns}" CASCADE')
    finally:
        await conn.close()


async def run_workers(n: int, duration: float, op: Callable[[int], Awaitable[None]]) -> float:
    """Run `n` concurrent loops of `op(worker)` for `duration` seconds; return ops/s."""
    count = 0
    stop = time.perf_counter() + duration

    async def loop(worker: int) -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await op(worker)
            count += 1

    start = time.perf_counter()
    await asyncio.gather(*[loop(i) for i in range(n)])
    return count / (time.perf_counter() - start)


class HttpConnection:
    """A bare keep-alive HTTP/1.1 client: the load generator should cost the server's two
    cores as little as possible, so requests are written and parsed by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 host: str) -> None:
        self._reader, self._writer, self._host = reader, writer, host

    @classmethod
    async def open(cls, url: str) -> HttpConnection:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer, f"{host}:{port}")

    async def get(self, path: str) -> bytes:
        self._writer.write(f"GET {path} HTTP/1.1\r\nHost: {self._host}\r\n\r\n".encode())
        return await self._response()

    async def post(self, path: str, body: bytes) -> bytes:
        self._writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self._host}\r\nContent-Type: application/json"
            f"\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        return await self._response()

    async def _response(self) -> bytes:
        head = await self._reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return await self._reader.readexactly(length)

    async def close(self) -> None:
        self._writer.close()


def i64(n: int) -> dict[str, str]:
    """An int64 argument in Convex-encoded JSON."""
    return {"$integer": base64.b64encode(struct.pack("<q", n)).decode()}


async def call(http: HttpConnection, kind: str, path: str, args: dict[str, Any]) -> Any:
    """Run a function over HTTP; its value, or RuntimeError with the server's message."""
    raw = await http.post(f"/api/{kind}", orjson.dumps({
        "path": path, "args": args, "format": "convex_encoded_json"}))
    body = orjson.loads(raw)
    if body["status"] != "success":
        raise RuntimeError(body["errorMessage"])
    return body["value"]


def report(name: str, ours: float, baseline: float, target: float, unit: str = "ops/s",
           baseline_name: str = "raw asyncpg") -> None:
    ratio = ours / baseline if baseline else 0.0
    verdict = "meets" if ratio >= target else "short of"
    print(f"{name}: reactive-store {ours:,.0f} {unit} | {baseline_name} {baseline:,.0f} {unit} "
          f"| ratio {ratio:.2f}x ({verdict} target {target}x)")


def report_latency(name: str, ours: list[float], baseline: list[float], targets: str = "",
                   baseline_name: str = "raw asyncpg") -> None:
    """Latency percentiles (ms) next to the same-run baseline's; ratio of p50s (lower wins)."""
    ratio = quantile(ours, 0.5) / quantile(baseline, 0.5) if ours and baseline else 0.0
    print(f"{name}: reactive-store {percentiles(ours)} | {baseline_name} "
          f"{percentiles(baseline)} | p50 ratio {ratio:.1f}x"
          + (f" (targets {targets})" if targets else ""))


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"p50 {quantile(values, 0.5):.1f} ms, p99 {quantile(values, 0.99):.1f} ms "
            f"(n={len(values)})")


def server_pid(url: str) -> int:
    """The pid of the `reactive-store serve` process listening at `url`."""
    port = url.rsplit(":", 1)[1]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read().split(b"\0")
            except OSError:
                continue
            if b"serve" in cmdline and port.encode() in cmdline:
                return int(entry)
    raise RuntimeError("server process not found")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sync_url(url: str) -> str:
    return url.replace("http", "ws") + "/api/1.48.0/sync"


# One room of a chat: a writer posts, subscribers watch the room's newest messages.
ROOMS_APP = {
    "schema/__init__.py": """
        from reactive_store import define_schema, define_table, v
        schema = define_schema({
            "messages": define_table({"room": v.float64(), "body": v.string()})
                .index("by_room", ["room"]),
        })
    """,
    "functions/rooms.py": """
        from reactive_store import mutation, query, v

        @query(args={"room": v.float64()})
        async def latest(ctx, room):
            return await ctx.db.query("messages").with_index(
                "by_room", lambda q: q.eq("room", room)).order("desc").take(5)

        @mutation(args={"room": v.float64(), "body": v.string()})
        async def post(ctx, room, body):
            await ctx.db.insert("messages", {"room": room, "body": body})
    """,
}


# -- raw asyncpg baselines ------------------------------------------------------------------
async def no_reset(conn: asyncpg.Connection) -> None:
    """The baseline skips asyncpg's per-release reset query too, as the server does."""


async def raw_pool(size: int) -> asyncpg.Pool:
    """Connections set up as the server's are (lock_timeout, no reset on release)."""
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=size, max_size=size,
                                     server_settings={"lock_timeout": "50ms"}, reset=no_reset)
    assert pool is not None
    return pool


async def raw_retry(conn: asyncpg.Connection, body: Callable[[asyncpg.Connection],
                                                              Awaitable[Any]]) -> bool:
    """`body` in a SERIALIZABLE transaction, retried as the engine does; False if it gave up."""
    for attempt in range(16):
        try:
            async with conn.transaction(isolation="serializable"):
                await body(conn)
            return True
        except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError,
                asyncpg.LockNotAvailableError):
            await asyncio.sleep(random.uniform(0, min(0.1, 0.002 * 2**attempt)))
    return False


class RawInserts:
    """Single-row SERIALIZABLE insert transactions into a table shaped like an engine table
    (text id, JSON document, two unique index keys): the baseline of a one-insert mutation."""

    def __init__(self, pool: asyncpg.Pool, table: str = "bench_raw_inserts") -> None:
        self.pool, self.table = pool, table
        self._n = iter(range(10**9))

    async def create(self) -> None:
        await self.pool.execute(f"DROP TABLE IF EXISTS {self.table}")
        await self.pool.execute(f"CREATE TABLE {self.table} (id text PRIMARY KEY, doc jsonb, "
                                "k bytea UNIQUE, kc bytea UNIQUE, ts double precision)")

    async def drop(self) -> None:
        await self.pool.execute(f"DROP TABLE IF EXISTS {self.table}")

    async def one(self, worker: int = 0) -> None:
        i = next(self._n)
        sql = f"INSERT INTO {self.table} VALUES ($1, $2, $3, $4, $5)"
        async with self.pool.acquire() as conn:
            await raw_retry(conn, lambda c: c.execute(
                sql, f"id{i}", '{"owner": "x", "balance": 1}', b"k%d" % i, b"c%d" % i, 1.0))

    async def rate(self, clients: int, duration: float) -> float:
        return await run_workers(clients, duration, self.one)

    async def latencies(self, count: int, gap: float) -> list[float]:
        """Milliseconds per transaction, one at a time with `gap` seconds between them."""
        out = []
        for _ in range(count):
            start = time.perf_counter()
            await self.one()
            out.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(gap)
        return out


# -- the official npm client ------------------------------------------------------------------
NODE_CLIENTS = Path(__file__).resolve().parent / "js" / "clients.mjs"


async def npm_clients(mode: str, url: str, **options: Any) -> dict[str, Any]:
    """Run bench/js/clients.mjs (the official npm `convex` client from tests/js) and return
    the JSON object it prints last, plus "cpu_s", the CPU time Node used. Its stderr passes
    through."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = await asyncio.create_subprocess_exec(
        "node", str(NODE_CLIENTS), mode, url, json.dumps(options),
        stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"clients.mjs {mode} exited with {proc.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result
