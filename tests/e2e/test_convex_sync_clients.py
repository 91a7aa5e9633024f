"""The official Convex WebSocket clients against real `reactive-store serve` processes.

- npm `ConvexClient` (convex 1.48.0, `convex/browser` under Node, which bundles its own
  WebSocket), driven through tests/js/sync_client.mjs: one Node process per client, commands on
  stdin, one JSON line per event on stdout (protocol.md §4.3 and §6);
- PyPI `convex` `ConvexClient`, driven through pypi_sync_client.py in a subprocess, because its
  blocking `next()` holds the GIL (protocol.md §4.4);
- our own asyncio client `reactive_store.client` as a third client where convenient.

Writes from "another client" go over HTTP (`/api/mutation`) from the pytest process. The
restart tests SIGKILL a server and start a new one on the same port and Postgres schema; the
clients must reconnect by themselves, resume their subscriptions and apply every mutation
exactly once. Values in events are Convex-encoded JSON (`convexToJson` / `convex_to_json`).
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

from e2e_support import ServeApp, tail
from reactive_store.client import connect
from support import write_app

pytestmark = pytest.mark.e2e

WAIT = 10.0  # seconds for one expected event
RECONNECT_WAIT = 30.0  # a client's backoff after its server died, plus a server start

SYNC_APP = {
    "schema/__init__.py": """
        from reactive_store import define_schema, define_table, v

        schema = define_schema({
            "notes": define_table({"list": v.string(), "body": v.string()})
                .index("by_list", ["list"]),
        })
    """,
    "functions/notes.py": """
        from reactive_store import ConvexError, action, mutation, query, v

        async def _notes(ctx, list):
            return await ctx.db.query("notes").with_index(
                "by_list", lambda q: q.eq("list", list)).collect()

        @query(args={"list": v.string()})
        async def list(ctx, list):
            return [note["body"] for note in await _notes(ctx, list)]

        @query(args={"list": v.string()})
        async def docs(ctx, list):
            return [{"id": note["_id"], "body": note["body"]} for note in await _notes(ctx, list)]

        @query(args={"list": v.string()})
        async def count(ctx, list):
            return float(len(await _notes(ctx, list)))

        @query(args={"list": v.string()})
        async def strict(ctx, list):
            bodies = [note["body"] for note in await _notes(ctx, list)]
            for body in bodies:
                if body.startswith("bad"):
                    raise ConvexError({"bad": body})
            return bodies

        @mutation(args={"list": v.string(), "body": v.string()})
        async def add(ctx, list, body):
            return await ctx.db.insert("notes", {"list": list, "body": body})

        @mutation(args={"list": v.string(), "body": v.string()})
        async def remove(ctx, list, body):
            for note in await _notes(ctx, list):
                if note["body"] == body:
                    await ctx.db.delete(note["_id"])

        @mutation(args={"code": v.string()})
        async def fail(ctx, code):
            raise ConvexError({"code": code})

        @action(args={"value": v.any()})
        async def echo(ctx, value):
            return value
    """,
}

Event = dict[str, Any]
Predicate = Callable[[Event], bool]


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


# --- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sync_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_app(tmp_path_factory.mktemp("sync-app"), SYNC_APP)


@pytest.fixture(scope="module")
async def sync_url(module_serve_app: ServeApp, sync_app: Path) -> str:
    """One server shared by the tests that do not restart it (each uses its own list)."""
    return await module_serve_app(sync_app)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path


# --- npm ConvexClient --------------------------------------------------------------------------

async def test_npm_subscription_sees_other_writers_and_its_own(
    sync_url: str, js_client_dir: Path, log_dir: Path,
) -> None:
    name = unique("npm")
    async with node_client(sync_url, js_client_dir, log_dir) as node:
        await node.subscribe("s", "notes:list", {"list": name})
        seen = await node.update("s", [])

        # A commit by another client (HTTP) is pushed to the subscription.
        await http_call(sync_url, "mutation", "notes:add", {"list": name, "body": "http"})
        seen = await node.update("s", ["http"], after=seen)

        # Read-your-writes: by the time a mutation's promise resolves, the subscription
        # has already been called with a result that includes the write.
        expected = ["http"]
        for i in range(4):
            expected.append(f"own{i}")
            index, result = await node.call("mutation", f"m{i}", "notes:add",
                                            {"list": name, "body": f"own{i}"})
            assert result["ok"] and isinstance(result["value"], str), result
            assert node.last_update("s", index) == expected, node.describe()
            assert result["current"]["s"] == expected, result

        # A ConvexError thrown by a mutation reaches the caller with its data.
        _, failed = await node.call("mutation", "bad", "notes:fail", {"code": "nope"})
        assert not failed["ok"] and failed["name"] == "ConvexError", failed
        assert failed["data"] == {"code": "nope"}, failed

        # Actions and one-shot queries over the socket; int64 keeps its type.
        value = {"n": i64(-5), "s": "x", "l": [1.5, None, True]}
        _, echoed = await node.call("action", "act", "notes:echo", {"value": value})
        assert echoed["ok"] and echoed["value"] == value, echoed
        _, queried = await node.call("query", "q", "notes:list", {"list": name})
        assert queried["ok"] and queried["value"] == expected, queried

        # A concurrent writer's commits keep arriving after all that.
        await http_call(sync_url, "mutation", "notes:add", {"list": name, "body": "last"})
        await node.update("s", [*expected, "last"], after=index)
        await node.close()
    stamps = node.timestamps()
    assert stamps == sorted(stamps), f"timestamps went backwards: {stamps}"


async def test_npm_pipelined_mutations_with_concurrent_writers(
    sync_url: str, js_client_dir: Path, log_dir: Path,
) -> None:
    """Many mutations in flight at once, on two lists, while HTTP writes to both lists too."""
    lists = [unique("burst"), unique("burst")]
    async with node_client(sync_url, js_client_dir, log_dir) as node:
        for i, name in enumerate(lists):
            await node.subscribe(f"s{i}", "notes:list", {"list": name})
            await node.update(f"s{i}", [])
        for n in range(12):
            await node.send(op="mutation", id=f"m{n}", path="notes:add",
                            args={"list": lists[n % 2], "body": f"m{n}"})
        await asyncio.gather(*(
            http_call(sync_url, "mutation", "notes:add", {"list": lists[n % 2], "body": f"h{n}"})
            for n in range(6)))
        for n in range(12):
            index, result = await node.result(f"m{n}")
            assert result["ok"], result
            # Read-your-writes for each of them, in whatever Transition it landed.
            assert f"m{n}" in result["current"][f"s{n % 2}"], result
            assert f"m{n}" in node.last_update(f"s{n % 2}", index), node.describe()
        # The client's mutations ran one at a time, in the order it sent them.
        for i, name in enumerate(lists):
            final = await notes(sync_url, name)
            own = [body for body in final if body.startswith("m")]
            assert own == [f"m{n}" for n in range(i, 12, 2)], final
            assert sorted(final) == sorted([*own, *(f"h{n}" for n in range(i, 6, 2))]), final
            await node.wait(is_event("update", id=f"s{i}", value=final))
        await node.close()
    stamps = node.timestamps()
    assert stamps == sorted(stamps), f"timestamps went backwards: {stamps}"


async def test_npm_query_errors_reach_the_error_callback(
    sync_url: str, js_client_dir: Path, log_dir: Path,
) -> None:
    name = unique("errors")
    async with node_client(sync_url, js_client_dir, log_dir) as node:
        await node.subscribe("missing", "notes:nope", {})
        await node.subscribe("strict", "notes:strict", {"list": name})
        await node.subscribe("list", "notes:list", {"list": name})

        _, missing = await node.error("missing")
        assert "Could not find public function for 'notes:nope'" in missing["message"], missing
        assert "data" not in missing, missing
        await node.update("strict", [])
        mark = await node.update("list", [])

        # The strict query now throws a ConvexError; the other subscription keeps updating.
        await http_call(sync_url, "mutation", "notes:add", {"list": name, "body": "bad1"})
        _, failed = await node.error("strict", after=mark)
        assert failed["name"] == "ConvexError" and failed["data"] == {"bad": "bad1"}, failed
        mark = await node.update("list", ["bad1"], after=mark)
        await http_call(sync_url, "mutation", "notes:add", {"list": name, "body": "good"})
        mark = await node.update("list", ["bad1", "good"], after=mark)

        # Once the bad note is gone, the strict query has a value again.
        await http_call(sync_url, "mutation", "notes:remove", {"list": name, "body": "bad1"})
        await node.update("strict", ["good"], after=mark)
        await node.update("list", ["good"], after=mark)

        # Calling a function that does not exist fails the call, not the client.
        _, result = await node.call("mutation", "nope", "notes:nope", {})
        assert not result["ok"] and result["name"] == "Error", result
        assert "Could not find public function for 'notes:nope'" in result["message"], result
        assert result["current"]["list"] == ["good"], result
        await node.close()


async def test_npm_client_reconnects_after_server_restart(
    serve_app: ServeApp, sync_app: Path, js_client_dir: Path, log_dir: Path,
) -> None:
    """SIGKILL the server under a subscribed client, start a new one on the same port and schema.

    The npm client resumes its subscription by itself and its mutations (one racing the kill,
    one sent while the server is down) are applied exactly once; the PyPI client, subscribed
    through the same restart, comes back too (it re-adds its query under the `.js` path).
    """
    url = await serve_app(sync_app)
    server = serve_app.server(url)
    name = unique("restart")
    plan = [{"op": "subscribe", "path": "notes:count", "args": {"list": name}, "until": 4}]
    async with node_client(url, js_client_dir, log_dir) as node, \
            pypi_client(url, plan, log_dir) as pypi:
        await node.subscribe("s", "notes:list", {"list": name})
        await node.update("s", [])
        mark, result = await node.call("mutation", "before", "notes:add",
                                       {"list": name, "body": "before"})
        assert result["ok"], result
        await pypi.wait(is_event("update", value=1))

        # A mutation racing the kill: it may or may not have committed before the server died.
        await node.send(op="mutation", id="race", path="notes:add",
                        args={"list": name, "body": "race"})
        await server.kill()
        down, _ = await node.wait(is_event("connection", connected=False), after=mark)
        await node.send(op="mutation", id="during", path="notes:add",
                        args={"list": name, "body": "during"})
        await asyncio.sleep(0.3)  # let the client fail a reconnect attempt or two
        await server.start(port=server.port)

        for call_id in ("race", "during"):
            _, result = await node.result(call_id, timeout=RECONNECT_WAIT)
            assert result["ok"], result
            assert call_id in result["current"]["s"], result  # read-your-writes
        _, reconnected = await node.wait(is_event("connection", connected=True), after=down)
        assert reconnected["connectionCount"] >= 2, reconnected
        expected = sorted(["before", "race", "during"])
        assert sorted(await notes(url, name)) == expected

        # The resumed subscription is live: a commit by another client is pushed to it.
        await http_call(url, "mutation", "notes:add", {"list": name, "body": "after"})
        await node.wait(lambda e: is_event("update", id="s")(e)
                        and sorted(e["value"]) == sorted([*expected, "after"]))
        await pypi.wait(is_event("update", value=4), timeout=RECONNECT_WAIT)
        await pypi.finish()
        await node.close()
    stamps = node.timestamps()
    assert stamps == sorted(stamps), f"timestamps went backwards across the restart: {stamps}"
    counts = pypi.updates(0)
    assert counts == sorted(counts) and counts[-1] == 4, pypi.describe()


async def test_npm_mutation_replayed_after_lost_reply_runs_once(
    serve_app: ServeApp, sync_app: Path, js_client_dir: Path, log_dir: Path,
) -> None:
    """The server commits a mutation, its reply is lost, the server dies and comes back.

    The client re-sends the mutation on its new connection (same session id and request id);
    the new server process must answer with the recorded result instead of running it again.
    """
    url = await serve_app(sync_app)
    server = serve_app.server(url)
    proxy = TcpProxy(server.port)
    await proxy.start()
    name = unique("replay")
    try:
        async with node_client(proxy.url, js_client_dir, log_dir) as node:
            await node.subscribe("s", "notes:docs", {"list": name})
            await node.update("s", [])
            proxy.hold_replies()
            await node.send(op="mutation", id="once", path="notes:add",
                            args={"list": name, "body": "once"})
            deadline = time.monotonic() + WAIT
            while await notes(url, name) != ["once"]:  # committed; the client heard nothing
                assert time.monotonic() < deadline, "the mutation never committed"
                await asyncio.sleep(0.05)
            assert not any(is_event("result", id="once")(e) for e in node.events)

            await server.restart()
            _, result = await node.result("once", timeout=RECONNECT_WAIT)
            docs = await http_call(url, "query", "notes:docs", {"list": name})
            assert [d["body"] for d in docs] == ["once"], f"the mutation ran twice: {docs}"
            assert result["ok"] and result["value"] == docs[0]["id"], (result, docs)
            assert result["current"]["s"] == docs, result
            await node.close()
    finally:
        await proxy.close()
    stamps = node.timestamps()
    assert stamps == sorted(stamps), f"timestamps went backwards across the restart: {stamps}"


# --- PyPI ConvexClient -------------------------------------------------------------------------

async def test_pypi_client_subscribes_and_calls_over_the_socket(
    sync_url: str, log_dir: Path,
) -> None:
    name = unique("pypi")
    final = ["a", "b", "c"]
    plan: list[dict[str, Any]] = [
        {"op": "mutation", "path": "notes:add", "args": {"list": name, "body": "a"}},
        {"op": "query", "path": "notes:list", "args": {"list": name}},
        {"op": "mutation", "path": "notes:fail", "args": {"code": "py"}},
        {"op": "action", "path": "notes:echo", "args": {"value": {"n": i64(7)}}},
        {"op": "query", "path": "notes:nope", "args": {}},
        {"op": "subscribe", "path": "notes:list", "args": {"list": name}, "until": final},
        {"op": "query", "path": "notes:list", "args": {"list": name}},
        {"op": "mutation", "path": "notes:add", "args": {"list": name, "body": "bad!"}},
        {"op": "subscribe", "path": "notes:strict", "args": {"list": name}, "max": 1},
    ]
    async with pypi_client(sync_url, plan, log_dir) as pypi:
        _, added = await pypi.wait(is_event("result", step=0))
        assert added["ok"] and isinstance(added["value"], str), added
        _, listed = await pypi.wait(is_event("result", step=1))
        assert listed == {"event": "result", "step": 1, "ok": True, "value": ["a"]}
        _, failed = await pypi.wait(is_event("result", step=2))
        assert not failed["ok"] and failed["name"] == "ConvexError", failed
        assert failed["data"] == {"code": "py"}, failed
        _, echoed = await pypi.wait(is_event("result", step=3))
        assert echoed["ok"] and echoed["value"] == {"n": i64(7)}, echoed
        _, missing = await pypi.wait(is_event("result", step=4))
        assert not missing["ok"], missing
        assert "Could not find public function for 'notes:nope'" in missing["message"], missing

        # Writes by another client while the PyPI client blocks in next().
        index, _ = await pypi.wait(is_event("update", step=5, value=["a"]))
        await http_call(sync_url, "mutation", "notes:add", {"list": name, "body": "b"})
        index, _ = await pypi.wait(is_event("update", step=5, value=["a", "b"]), after=index)
        await http_call(sync_url, "mutation", "notes:add", {"list": name, "body": "c"})
        await pypi.wait(is_event("update", step=5, value=final), after=index)
        _, again = await pypi.wait(is_event("result", step=6))
        assert again["ok"] and again["value"] == final, again
        # A query's ConvexError reaches the subscription iterator, data included.
        _, thrown = await pypi.wait(is_event("error", step=8))
        assert thrown["name"] == "ConvexError" and thrown["data"] == {"bad": "bad!"}, thrown
        await pypi.finish()
    # It yields on every Transition, so values may repeat, but they only move forward.
    seen = pypi.updates(5)
    assert [v for i, v in enumerate(seen) if i == 0 or seen[i - 1] != v] == [
        ["a"], ["a", "b"], final], seen


# --- two server processes, one deployment ------------------------------------------------------

async def test_two_server_processes_on_one_schema(
    serve_app: ServeApp, sync_app: Path, js_client_dir: Path, log_dir: Path,
) -> None:
    url_a = await serve_app(sync_app)
    url_b = await serve_app(sync_app, namespace=serve_app.server(url_a).namespace)
    name = unique("two")
    async with node_client(url_a, js_client_dir, log_dir) as node, connect(url_b) as ours:
        seen_b: list[Any] = []

        async def watch_b() -> None:
            async for value in ours.subscribe("notes:list", {"list": name}):
                seen_b.append(value)

        watcher = asyncio.create_task(watch_b())
        try:
            await node.subscribe("s", "notes:list", {"list": name})
            mark = await node.update("s", [])

            # A commit through process B is pushed to a subscriber on process A.
            await http_call(url_b, "mutation", "notes:add", {"list": name, "body": "via-b"})
            mark = await node.update("s", ["via-b"], after=mark)

            # Read-your-writes on A: the mutation resolves after A's subscription shows it.
            index, result = await node.call("mutation", "a1", "notes:add",
                                            {"list": name, "body": "via-a"})
            assert result["ok"], result
            assert node.last_update("s", index) == ["via-b", "via-a"], node.describe()

            # A's commit is pushed to our own client's subscription on B.
            deadline = time.monotonic() + WAIT
            while ["via-b", "via-a"] not in seen_b:
                assert time.monotonic() < deadline, f"B never pushed A's commit: {seen_b}"
                await asyncio.sleep(0.02)

            # Read-your-writes on B, for our own client.
            await ours.mutation("notes:add", {"list": name, "body": "ours"})
            await asyncio.sleep(0)
            assert seen_b[-1] == ["via-b", "via-a", "ours"], seen_b
            await node.update("s", ["via-b", "via-a", "ours"], after=index)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await node.close()
    assert await notes(url_a, name) == await notes(url_b, name) == ["via-b", "via-a", "ours"]
