"""Official-client drivers for the e2e tests: Node and PyPI sync clients, HTTP calls, a proxy.

Each client runs in its own process (tests/js/sync_client.mjs under Node; pypi_sync_client.py
under Python) and reports one JSON line per event; `LineClient.wait` finds the next matching
event or fails the test with the client's recent events and stderr.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import struct
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
import pytest

from tests.e2e.servers import tail

Event = dict[str, Any]
Predicate = Callable[[Event], bool]
WAIT = 10.0  # seconds for one expected event
RECONNECT_WAIT = 30.0  # a client's backoff after its server died, plus a server start


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def i64(n: int) -> dict[str, str]:
    return {"$integer": base64.b64encode(struct.pack("<q", n)).decode()}


async def http_call(url: str, kind: str, path: str, args: dict[str, Any]) -> Any:
    """Run a function over HTTP (another client than the one under test); return its value."""
    async with httpx.AsyncClient(timeout=WAIT) as http:
        response = await http.post(f"{url}/api/{kind}", json={
            "path": path, "args": args, "format": "convex_encoded_json"})
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", body
    return body["value"]


async def notes(url: str, list_name: str) -> list[str]:
    bodies: list[str] = await http_call(url, "query", "notes:list", {"list": list_name})
    return bodies


# --- subprocess clients that print JSON lines ------------------------------------------------

@dataclass
class LineClient:
    """A client subprocess printing one JSON event per stdout line; `wait` for events."""

    name: str
    proc: asyncio.subprocess.Process
    stderr_path: Path
    events: list[Event] = field(default_factory=list)
    _new: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def spawn(cls, name: str, argv: list[str], cwd: Path, stderr_path: Path) -> Self:
        with stderr_path.open("wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=cwd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=stderr)
        client = cls(name, proc, stderr_path)
        client._reader = asyncio.create_task(client._read())
        return client

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            text = line.decode().strip()
            if text:
                try:
                    self.events.append(json.loads(text))
                except ValueError:
                    self.events.append({"event": "garbage", "text": text})
                self._new.set()
        self._new.set()

    def describe(self) -> str:
        shown = "\n".join(json.dumps(e) for e in self.events[-60:])
        return (f"{self.name} (exit code {self.proc.returncode}); events:\n{shown}\n"
                f"stderr:\n{tail(self.stderr_path, 4000)}")

    async def wait(self, predicate: Predicate, *, after: int = 0, timeout: float = WAIT
                   ) -> tuple[int, Event]:
        """The first event at index >= `after` that matches; fails the test after `timeout`."""
        deadline = time.monotonic() + timeout
        checked = after
        while True:
            for index in range(checked, len(self.events)):
                if predicate(self.events[index]):
                    return index, self.events[index]
            checked = max(checked, len(self.events))
            assert self._reader is not None
            if self._reader.done():
                pytest.fail(f"{self.name} ended before the expected event; {self.describe()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no expected event from {self.name} within {timeout:g} s; "
                            f"{self.describe()}")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), remaining)

    async def exit_code(self, timeout: float = WAIT) -> int:
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            pytest.fail(f"{self.name} did not exit within {timeout:g} s; {self.describe()}")
        if self._reader is not None:
            await self._reader
        return code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            await self._reader


def is_event(kind: str, **fields: Any) -> Predicate:
    return lambda e: e.get("event") == kind and all(e.get(k) == v for k, v in fields.items())


class NodeSync(LineClient):
    """tests/js/sync_client.mjs: one npm ConvexClient."""

    async def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def subscribe(self, sub: str, path: str, args: dict[str, Any]) -> None:
        await self.send(op="subscribe", id=sub, path=path, args=args)

    async def update(self, sub: str, value: Any, *, after: int = 0,
                     timeout: float = WAIT) -> int:
        """Wait for an onUpdate of `sub` with exactly `value`; return its event index."""
        index, _ = await self.wait(is_event("update", id=sub, value=value), after=after,
                                   timeout=timeout)
        return index

    async def error(self, sub: str, *, after: int = 0) -> tuple[int, Event]:
        return await self.wait(is_event("error", id=sub), after=after)

    async def call(self, op: str, call_id: str, path: str, args: dict[str, Any],
                   timeout: float = WAIT) -> tuple[int, Event]:
        await self.send(op=op, id=call_id, path=path, args=args)
        return await self.result(call_id, timeout)

    async def result(self, call_id: str, timeout: float = WAIT) -> tuple[int, Event]:
        return await self.wait(is_event("result", id=call_id), timeout=timeout)

    def last_update(self, sub: str, before: int) -> Any:
        """The value of the last onUpdate of `sub` printed before event `before`."""
        for event in reversed(self.events[:before]):
            if event.get("event") == "update" and event.get("id") == sub:
                return event["value"]
        pytest.fail(f"no update of {sub} before event {before}; {self.describe()}")

    def timestamps(self) -> list[int]:
        return [int(e["ts"]) for e in self.events if e.get("event") == "transition"]

    async def close(self) -> None:
        """`client.close()`; Node must then exit by itself with code 0 (it never crashed)."""
        if self.proc.returncode is None:
            await self.send(op="close")
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        code = await self.exit_code()
        assert code == 0, f"node exited with code {code}; {self.describe()}"
        assert any(e.get("event") == "closed" for e in self.events), self.describe()


class PypiSync(LineClient):
    """pypi_sync_client.py: one PyPI ConvexClient running a fixed plan of steps."""

    async def finish(self) -> None:
        code = await self.exit_code()
        assert code == 0 and self.events[-1:] == [{"event": "done"}], self.describe()

    def updates(self, step: int) -> list[Any]:
        return [e["value"] for e in self.events if is_event("update", step=step)(e)]


@contextlib.asynccontextmanager
async def node_client(url: str, js_dir: Path, log_dir: Path, name: str = "node"
                      ) -> AsyncIterator[NodeSync]:
    client = await NodeSync.spawn(
        f"sync_client.mjs {url}", ["node", str(js_dir / "sync_client.mjs"), url], js_dir,
        log_dir / f"{name}-{uuid.uuid4().hex[:6]}.stderr")
    try:
        await client.wait(is_event("ready"))
        yield client
    finally:
        await client.kill()  # no-op after a clean close()


@contextlib.asynccontextmanager
async def pypi_client(url: str, plan: list[dict[str, Any]], log_dir: Path
                      ) -> AsyncIterator[PypiSync]:
    script = Path(__file__).with_name("pypi_sync_client.py")
    client = await PypiSync.spawn(
        f"pypi_sync_client.py {url}", [sys.executable, str(script), url], script.parent,
        log_dir / f"pypi-{uuid.uuid4().hex[:6]}.stderr")
    assert client.proc.stdin is not None
    client.proc.stdin.write(json.dumps(plan).encode())
    client.proc.stdin.close()
    try:
        yield client
    finally:
        await client.kill()


class TcpProxy:
    """A loopback TCP proxy to `target_port` that can stop passing the server's bytes on.

    `hold_replies()` makes every open connection drop what the server sends from then on
    (the client's bytes still reach the server), as if the replies were lost in the network.
    When either side closes, the proxy closes the other.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._conns: dict[asyncio.Task[None], list[bool]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def hold_replies(self) -> None:
        for held in self._conns.values():
            held[0] = True

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        held = [False]
        self._conns[task] = held
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
            pipes = [asyncio.create_task(self._pipe(reader, upstream, None)),
                     asyncio.create_task(self._pipe(up_reader, writer, held))]
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        except OSError:
            pass  # the server is down: the client sees its connection closed
        finally:
            self._conns.pop(task, None)
            for stream in (writer, upstream):
                if stream is not None:
                    stream.close()
                    with contextlib.suppress(OSError):
                        await stream.wait_closed()

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter,
                    held: list[bool] | None) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                if held is not None and held[0]:
                    continue
                sink.write(data)
                await sink.drain()
