"""Shared benchmark plumbing: a real server process, a fresh namespace, timed worker loops."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx

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
def server(app: Path, namespace: str, *extra: str) -> Iterator[str]:
    """A `reactive-store serve` process on a free port; yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reactive_store", "serve", "--app", str(app),
         "--database-url", DATABASE_URL, "--db-schema", namespace, "--port", str(port),
         "--log-level", "warning", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
        proc.wait(10)


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


def report(name: str, ours: float, baseline: float, target: float, unit: str = "ops/s",
           baseline_name: str = "raw asyncpg") -> None:
    ratio = ours / baseline if baseline else 0.0
    verdict = "meets" if ratio >= target else "short of"
    print(f"{name}: reactive-store {ours:,.0f} {unit} | {baseline_name} {baseline:,.0f} {unit} "
          f"| ratio {ratio:.2f}x ({verdict} target {target}x)")
