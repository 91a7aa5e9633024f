"""File storage benchmark (issue 16): upload and download throughput through a real server
(the upload URL flow, then `get_url` downloads), against the same bytes written and read in
the same run by raw asyncpg (the same 1 MiB chunk rows, one transaction per file) and by the
file system (write + fsync, read back). One stream and four concurrent streams."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable

import asyncpg
import orjson
import uvloop
from common import DATABASE_URL, SMOKE, HttpConnection, drop, namespace, report, server, write_app

APP = {
    "schema/__init__.py": """
        from reactive_store import define_schema
        schema = define_schema({})
    """,
    "functions/files.py": """
        from reactive_store import mutation, query, v

        @mutation(args={})
        async def upload_url(ctx):
            return await ctx.storage.generate_upload_url()

        @query(args={"id": v.id("_storage")})
        async def url(ctx, id):
            return await ctx.storage.get_url(id)
    """,
}
MIB = 1 << 20
FILE_MIB = 8 if SMOKE else 64
FILES = 2 if SMOKE else 4
BLOCK = os.urandom(MIB)  # incompressible, as most uploaded files are


async def rate(streams: int, op: Callable[[int], Awaitable[None]]) -> float:
    """MiB/s moving FILES files of FILE_MIB each, `streams` at a time."""
    queue = list(range(FILES))
    start = time.perf_counter()

    async def worker() -> None:
        while queue:
            await op(queue.pop())

    await asyncio.gather(*[worker() for _ in range(streams)])
    return FILES * FILE_MIB / (time.perf_counter() - start)


async def call(url: str, kind: str, path: str, args: dict[str, object]) -> object:
    http = await HttpConnection.open(url)
    try:
        body = orjson.loads(await http.post(f"/api/{kind}", orjson.dumps(
            {"path": path, "args": args})))
    finally:
        await http.close()
    assert body["status"] == "success", body
    return body["value"]


async def http_upload(url: str) -> str:
    target = str(await call(url, "mutation", "files:upload_url", {}))
    path = target.split("://", 1)[1].split("/", 1)[1]
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
                 f"application/octet-stream\r\nContent-Length: {FILE_MIB * MIB}\r\n\r\n".encode())
    for _ in range(FILE_MIB):
        writer.write(BLOCK)
        await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    answer = orjson.loads(await reader.readexactly(length))
    writer.close()
    assert b" 200 " in head.split(b"\r\n")[0], answer
    return str(answer["storageId"])


class Sink(asyncio.Protocol):
    """Reads a response and throws the bytes away: the load generator must cost the two
    cores as little as possible (no buffering, no copies)."""

    def __init__(self, body: int) -> None:
        self.left = body
        self.head: bytes = b""
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        if b"\r\n\r\n" not in self.head:
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            if not self.head.startswith(b"HTTP/1.1 200 "):
                self.done.set_exception(RuntimeError(self.head.split(b"\r\n")[0].decode()))
                return
            data = self.head.split(b"\r\n\r\n", 1)[1]
        self.left -= len(data)
        if self.left <= 0 and not self.done.done():
            self.done.set_result(None)


async def http_download(url: str, storage_id: str) -> None:
    file_url = str(await call(url, "query", "files:url", {"id": storage_id}))
    path = file_url.split("://", 1)[1].split("/", 1)[1]
    host, port = url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_connection(lambda: Sink(FILE_MIB * MIB), host,
                                                   int(port))
    transport.write(f"GET /{path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await sink.done
    transport.close()


class RawPostgres:
    """The baseline: the same chunk rows with plain asyncpg, nothing else."""

    def __init__(self, pool: asyncpg.Pool, table: str) -> None:
        self.pool, self.table = pool, table

    async def write(self, n: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for seq in range(FILE_MIB):
                await conn.execute(f"INSERT INTO {self.table} VALUES ($1, $2, $3)",
                                   n, seq, BLOCK)

    async def read(self, n: int) -> None:
        for seq in range(FILE_MIB):
            await self.pool.fetchval(f"SELECT data FROM {self.table} WHERE f = $1 AND seq = $2",
                                     n, seq)


def fs_write(folder: str, n: int) -> None:
    with open(os.path.join(folder, str(n)), "wb") as f:
        for _ in range(FILE_MIB):
            f.write(BLOCK)
        f.flush()
        os.fsync(f.fileno())


def fs_read(folder: str, n: int) -> None:
    with open(os.path.join(folder, str(n)), "rb") as f:
        while f.read(MIB):
            pass


async def measure(url: str, raw: RawPostgres, folder: str, streams: int) -> None:
    """Upload then download FILES files, `streams` at a time, and the same with the
    baselines; print each figure beside them."""
    ids: dict[int, str] = {}

    async def upload(n: int) -> None:
        ids[n] = await http_upload(url)

    ours = await rate(streams, upload)
    baseline = await rate(streams, raw.write)
    disk = await rate(streams, lambda n: asyncio.to_thread(fs_write, folder, n))
    report(f"upload, {streams} stream(s)", ours, baseline, 0.5, "MiB/s")
    print(f"  file system (write + fsync): {disk:,.0f} MiB/s, ratio {ours / disk:.2f}x")
    ours = await rate(streams, lambda n: http_download(url, ids[n]))
    baseline = await rate(streams, raw.read)
    disk = await rate(streams, lambda n: asyncio.to_thread(fs_read, folder, n))
    report(f"download, {streams} stream(s)", ours, baseline, 0.5, "MiB/s")
    print(f"  file system (read, page cache): {disk:,.0f} MiB/s, ratio {ours / disk:.2f}x")


async def main() -> None:
    ns = namespace()
    app = write_app(APP)
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=4, max_size=4)
    table = f'"{ns}"."raw_chunks"'
    try:
        with server(app, ns) as url, tempfile.TemporaryDirectory() as folder:
            await pool.execute(f"CREATE TABLE {table} (f int, seq int, data bytea, "
                               "PRIMARY KEY (f, seq))")
            await pool.execute(f"ALTER TABLE {table} ALTER COLUMN data SET STORAGE EXTERNAL")
            raw = RawPostgres(pool, table)
            print(f"{FILES} files of {FILE_MIB} MiB, random bytes")
            for streams in (1, 4):
                await measure(url, raw, folder, streams)
                await pool.execute(f"TRUNCATE {table}")
    finally:
        await pool.close()
        await drop(ns)


if __name__ == "__main__":
    uvloop.run(main())
