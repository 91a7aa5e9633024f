"""Helpers for the hostile-input, resource-limit, fault and fuzz tests (issue 12).

A small notes app, a raw WebSocket client speaking the sync protocol message by message (what
an attacker or a broken client sends, not what the official clients hide), and HTTP helpers.
`clean_error` is the one definition of what a client may be told when something fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from reactive_store.storage.store import CommitOutcomeUnknown, DatabaseUnavailable

NOTES_APP = {
    "schema/__init__.py": """
        from reactive_store import define_schema, define_table, v

        schema = define_schema({
            "notes": define_table({"list": v.string(), "body": v.string()})
                .index("by_list", ["list"]),
        })
    """,
    "functions/notes.py": """
        import asyncio

        from reactive_store import action, internal_mutation, mutation, query, v

        @mutation(args={"list": v.string(), "body": v.string()})
        async def add(ctx, list, body):
            return await ctx.db.insert("notes", {"list": list, "body": body})

        @mutation(args={"list": v.string(), "body": v.string()})
        async def add_other(ctx, list, body):
            return await ctx.db.insert("notes", {"list": list, "body": "other:" + body})

        @query(args={"list": v.string()})
        async def list(ctx, list):
            return [n["body"] for n in await ctx.db.query("notes").with_index(
                "by_list", lambda q: q.eq("list", list)).collect()]

        @query(args={"list": v.string()})
        async def count(ctx, list):
            return float(len(await ctx.db.query("notes").with_index(
                "by_list", lambda q: q.eq("list", list)).collect()))

        @query(args={"list": v.string(), "pause": v.float64()})
        async def slow_count(ctx, list, pause):
            await asyncio.sleep(pause)  # holds its snapshot open before its first read
            return float(len(await ctx.db.query("notes").with_index(
                "by_list", lambda q: q.eq("list", list)).collect()))

        @query(args={"depth": v.float64()})
        async def deep(ctx, depth):
            value = "leaf"
            for _ in range(int(depth)):
                value = [value]
            return value

        @query(args={"size": v.float64()})
        async def big(ctx, size):
            return "x" * int(size)

        @action(args={"value": v.any()})
        async def echo(ctx, value):
            return value

        @internal_mutation(args={"n": v.float64()})
        async def tick(ctx, n):
            await ctx.db.insert("notes", {"list": "ticks", "body": str(n)})

        @internal_mutation(args={"n": v.float64(), "pause": v.float64()})
        async def slow_tick(ctx, n, pause):
            await asyncio.sleep(pause)  # holds its transaction open before writing
            await ctx.db.insert("notes", {"list": "slow-ticks", "body": str(n)})

        @mutation(args={"pause": v.float64()})
        async def schedule_slow(ctx, pause):
            return await ctx.scheduler.run_after(0, slow_tick, {"n": 1.0, "pause": pause})

        @mutation(args={"count": v.float64(), "delay": v.float64()})
        async def schedule(ctx, count, delay):
            for i in range(int(count)):
                await ctx.scheduler.run_after(delay, tick, {"n": float(i)})

        @query
        async def jobs(ctx):
            found = await ctx.db.system.query("_scheduled_functions").collect()
            return sorted(j["state"]["kind"] for j in found)
    """,
}

# What a client may be told when the server or its database fails: our own clean messages.
SERVER_ERROR = "Server Error"
CLEAN_FAILURES = {SERVER_ERROR, DatabaseUnavailable.MESSAGE, CommitOutcomeUnknown.MESSAGE}
LEAKS = ("Uncaught", "asyncpg", "Error:", "pool", "rs_fault_", "postgres", "Traceback")


def clean_error(message: str) -> bool:
    """True when an error message shown to a client names nothing behind the server."""
    return message in CLEAN_FAILURES or not any(word in message for word in LEAKS)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def deep_list(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def deep_json(depth: int) -> str:
    """`depth` nested JSON arrays as text (no Python recursion to build or dump it)."""
    return "[" * depth + '"x"' + "]" * depth


async def post(url: str, path: str, body: Any, *, raw: bytes | None = None,
               headers: dict[str, str] | None = None, timeout: float = 10.0) -> httpx.Response:
    async with httpx.AsyncClient(timeout=timeout) as http:
        if raw is not None:
            return await http.post(url + path, content=raw, headers={
                "content-type": "application/json", **(headers or {})})
        return await http.post(url + path, json=body, headers=headers)


async def call(url: str, kind: str, path: str, args: dict[str, Any]) -> dict[str, Any]:
    """POST /api/<kind>; the UdfResponse body (asserting HTTP 200)."""
    response = await post(url, f"/api/{kind}", {"path": path, "args": args,
                                                 "format": "convex_encoded_json"})
    assert response.status_code == 200, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    return body


async def value(url: str, kind: str, path: str, args: dict[str, Any]) -> Any:
    body = await call(url, kind, path, args)
    assert body["status"] == "success", body
    return body["value"]


@dataclass
class Closed:
    """How a socket ended: the close code (1006 when no close frame came) and reason."""

    code: int
    reason: str
    frame: bool


class RawSocket:
    """One WebSocket to /api/sync, driven message by message."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.query_set = 0
        self.identity = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str, **options: Any) -> AsyncIterator[RawSocket]:
        ws_url = "ws" + url.removeprefix("http") + "/api/sync"
        async with websockets.connect(ws_url, max_size=None, open_timeout=10,
                                      close_timeout=2, **options) as ws:
            yield cls(ws)

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def send_text(self, text: str) -> None:
        await self.ws.send(text)

    async def connect(self, session: str | None = None, count: int = 0) -> str:
        session = session or str(uuid.uuid4())
        await self.send(type="Connect", sessionId=session, connectionCount=count,
                        lastCloseReason="InitialConnect", clientTs=0)
        return session

    async def subscribe(self, query_id: int, path: str, args: dict[str, Any]) -> None:
        await self.send(type="ModifyQuerySet", baseVersion=self.query_set,
                        newVersion=self.query_set + 1, modifications=[
                            {"type": "Add", "queryId": query_id, "udfPath": path,
                             "args": [args]}])
        self.query_set += 1

    async def mutation(self, request_id: int, path: str, args: dict[str, Any],
                       timeout: float = 10.0) -> dict[str, Any]:
        await self.send(type="Mutation", requestId=request_id, udfPath=path, args=[args])
        return await self.next(lambda m: m.get("type") == "MutationResponse"
                               and m.get("requestId") == request_id, timeout)

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next message other than Ping."""
        while True:
            text = await asyncio.wait_for(self.ws.recv(), timeout)
            message: dict[str, Any] = json.loads(text)
            if message.get("type") != "Ping":
                return message

    async def next(self, wanted: Callable[[dict[str, Any]], bool],
                   timeout: float = 10.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.recv(max(0.01, deadline - loop.time()))
            if wanted(message):
                return message

    async def query_value(self, query_id: int, timeout: float = 10.0) -> dict[str, Any]:
        """The next QueryUpdated / QueryFailed of `query_id` (from Transitions)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.recv(max(0.01, deadline - loop.time()))
            if message.get("type") != "Transition":
                continue
            for mod in message["modifications"]:
                if mod.get("queryId") == query_id and mod["type"] in (
                        "QueryUpdated", "QueryFailed"):
                    return dict(mod)

    async def closed(self, timeout: float = 10.0) -> Closed | None:
        """Read until the server closes the socket; None when it is still open at `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), max(0.01, deadline - loop.time()))
        except TimeoutError:
            return None
        except websockets.ConnectionClosed as exc:
            if exc.rcvd is None:
                return Closed(1006, "", False)
            return Closed(exc.rcvd.code, exc.rcvd.reason, True)
