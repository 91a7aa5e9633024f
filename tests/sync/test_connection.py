"""The sync protocol over a real socket, with a raw client: what the official clients hide."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from reactive_store.limits import ServerLimits
from tests.support import ACCOUNTS_APP

EXTRA = """
from reactive_store import ConvexError, action, mutation, query, v

@query(args={"owner": v.string()})
async def explode(ctx, owner):
    found = ctx.db.query("accounts").with_index("by_owner", lambda q: q.eq("owner", owner))
    if await found.first():
        raise ConvexError({"owner": owner})
    raise ValueError("nobody named " + owner)

@action(args={"x": v.float64()})
async def double(ctx, x):
    return x * 2

@query(args={"opts": v.any(), "desc": v.optional(v.boolean())})
async def owners(ctx, opts, desc=False):
    q = ctx.db.query("accounts").with_index("by_owner").order("desc" if desc else "asc")
    r = await q.paginate(opts)
    return [d["owner"] for d in r["page"]]
"""


def integer(n: int) -> dict[str, str]:
    return {"$integer": base64.b64encode(struct.pack("<q", n)).decode()}


def ts_of(version: dict[str, Any]) -> int:
    value: int = struct.unpack("<Q", base64.b64decode(version["ts"]))[0]
    return value


class Client:
    """A raw protocol client that checks version chaining on every Transition (Rule 1)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.version = {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}
        self.query_set = 0

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] == "Ping":
                continue
            if message["type"] == "Transition":
                assert message["startVersion"] == self.version, "Transition must chain"
                assert ts_of(message["endVersion"]) >= ts_of(self.version), "ts moved back"
                self.version = message["endVersion"]
            return message

    async def connect(self, session: str = "s1", count: int = 0) -> None:
        await self.send(type="Connect", sessionId=session, connectionCount=count,
                        lastCloseReason="InitialConnect", clientTs=0)

    async def modify(self, *mods: dict[str, Any]) -> None:
        await self.send(type="ModifyQuerySet", baseVersion=self.query_set,
                        newVersion=self.query_set + 1, modifications=list(mods))
        self.query_set += 1


def add(query_id: int, path: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Add", "queryId": query_id, "udfPath": path, "args": [args]}


@pytest.fixture
async def url(make_app: Any, serve: Any) -> str:
    base, _ = await serve(make_app({**ACCOUNTS_APP, "functions/extra.py": EXTRA}))
    return str(base)


@pytest.fixture
async def client(url: str) -> AsyncIterator[Client]:
    async with websockets.connect(url.replace("http", "ws") + "/api/1.48.0/sync") as ws:
        c = Client(ws)
        await c.connect()
        yield c


async def test_empty_query_set_is_answered(client: Client) -> None:
    await client.modify()
    message = await client.recv()
    assert message["type"] == "Transition" and message["modifications"] == []
    assert message["endVersion"]["querySet"] == 1


async def test_read_your_writes_order(client: Client) -> None:
    await client.modify(add(1, "accounts:total", {}))
    first = await client.recv()
    assert first["modifications"][0]["value"] == integer(0)
    await client.send(type="Mutation", requestId=0, udfPath="accounts:open",
                      args=[{"owner": "ann", "balance": integer(5)}])
    response = await client.recv()
    assert response["type"] == "MutationResponse" and response["success"] is True
    transition = await client.recv()
    assert transition["type"] == "Transition"
    assert ts_of(transition["endVersion"]) >= ts_of(response)
    assert transition["modifications"] == [{"type": "QueryUpdated", "queryId": 1,
                                            "value": integer(5), "logLines": [],
                                            "journal": None}]


async def test_failed_mutation_is_followed_by_a_transition(client: Client) -> None:
    await client.modify()
    await client.recv()
    await client.send(type="Mutation", requestId=0, udfPath="accounts:open",
                      args=[{"owner": "ann"}])
    response = await client.recv()
    assert response["success"] is False and "missing required field" in response["result"]
    assert response["ts"] is None
    assert (await client.recv())["type"] == "Transition"


async def test_pushes_other_writers_commits_only_when_changed(client: Client, url: str) -> None:
    await client.modify(add(1, "accounts:by_owner", {"owner": "bob"}))
    await client.recv()
    async with httpx.AsyncClient() as http:
        await http.post(url + "/api/mutation", json={
            "path": "accounts:open", "args": {"owner": "zed", "balance": integer(1)}})
        await http.post(url + "/api/mutation", json={
            "path": "accounts:open", "args": {"owner": "bob", "balance": integer(2)}})
    pushed = await client.recv()
    assert pushed["type"] == "Transition"
    assert pushed["modifications"][0]["value"]["owner"] == "bob"


def record_immediate_writes(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every write a server started afterwards makes at once (`immediate_sender`), as the
    types of the messages in it."""
    from reactive_store.server import sync_endpoint

    writes: list[list[str]] = []
    make_sender = sync_endpoint.immediate_sender

    def recording(protocol: Any, shared: Any = None, held: Any = None) -> Any:
        send_now = make_sender(protocol, shared, held)
        assert send_now is not None, "the server's WebSocket protocol is not the expected one"

        def send(*texts: str) -> bool:
            sent = send_now(*texts)
            if sent:
                writes.append([json.loads(t)["type"] for t in texts])
            return sent
        return send

    monkeypatch.setattr(sync_endpoint, "immediate_sender", recording)
    return writes


async def fan_out(base: str, sockets: int, commits: int, session: str) -> None:
    """`sockets` raw clients watch `accounts:total`; each of `commits` accounts opened over
    HTTP must reach every one of them, complete and chained (Client.recv checks)."""
    opened = [await websockets.connect(base.replace("http", "ws") + "/api/1.48.0/sync")
              for _ in range(sockets)]
    try:
        clients = [Client(ws) for ws in opened]
        for i, c in enumerate(clients):
            await c.connect(session=f"{session}{i}")
            await c.modify(add(1, "accounts:total", {}))
            assert (await c.recv())["modifications"][0]["value"] == integer(0)
        async with httpx.AsyncClient() as http:
            for n in range(1, commits + 1):
                await http.post(base + "/api/mutation", json={
                    "path": "accounts:open", "args": {"owner": f"o{n}", "balance": integer(1)}})
                for c in clients:
                    got = await c.recv()
                    assert got["modifications"][0]["value"] == integer(n)
    finally:
        for ws in opened:
            await ws.close()


async def test_a_fan_out_is_written_at_once_and_chains_on_every_socket(
        make_app: Any, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sockets whose pump is idle get a commit's Transition written by the notification
    itself (no task woken per socket): every one still chains, in order, and is complete."""
    writes = record_immediate_writes(monkeypatch)
    base, _ = await serve(make_app(ACCOUNTS_APP))
    await fan_out(base, sockets=20, commits=5, session="fan")
    assert len(writes) >= 20 * 5 - 5, len(writes)


async def test_a_large_fan_out_is_written_from_two_threads_and_chains_everywhere(
        make_app: Any, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit watched by more sockets than PARALLEL_FROM is written from the loop's thread
    and a helper thread (server/parallel_writes.py): every socket still gets every Transition,
    complete and chained."""
    from reactive_store.server import parallel_writes

    writers: set[str] = set()
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        writers.add(threading.current_thread().name)
        return real_write(fd, data)

    monkeypatch.setattr(parallel_writes, "usable_cores", lambda: 2)
    monkeypatch.setattr(parallel_writes.os, "write", write)
    base, _ = await serve(make_app(ACCOUNTS_APP))
    await fan_out(base, sockets=parallel_writes.PARALLEL_FROM + 16, commits=3, session="wide")
    assert threading.current_thread().name in writers
    assert any(name.startswith("socket-writes") for name in writers), writers


async def test_sockets_in_the_same_state_get_the_same_transition_text(
        make_app: Any, serve: Any) -> None:
    """A fan-out encodes once: sockets holding the same versions and query get the very same
    text (one serverTs), while a socket whose query id differs gets its own."""
    base, _ = await serve(make_app(ACCOUNTS_APP))
    url = base.replace("http", "ws") + "/api/1.48.0/sync"
    sockets = [await websockets.connect(url) for _ in range(6)]
    try:
        for i, ws in enumerate(sockets):
            c = Client(ws)
            await c.connect(session=f"same{i}")
            await c.modify(add(2 if i == 5 else 1, "accounts:total", {}))
            await c.recv()
        async with httpx.AsyncClient() as http:
            await http.post(base + "/api/mutation", json={
                "path": "accounts:open", "args": {"owner": "o", "balance": integer(7)}})
        texts = []
        for ws in sockets:
            text = await asyncio.wait_for(ws.recv(), 5)
            while json.loads(text)["type"] == "Ping":
                text = await asyncio.wait_for(ws.recv(), 5)
            texts.append(text)
        assert len(set(texts[:5])) == 1, "one text for the sockets in the same state"
        same, other = json.loads(texts[0]), json.loads(texts[5])
        assert same["modifications"][0] == {"type": "QueryUpdated", "queryId": 1,
                                            "value": integer(7), "logLines": [],
                                            "journal": None}
        assert other["modifications"][0]["queryId"] == 2
        assert other["endVersion"] == same["endVersion"]
    finally:
        for ws in sockets:
            await ws.close()


async def test_a_mutation_response_and_its_transition_share_one_write(
        make_app: Any, serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A socket's mutation response and the Transition reaching its timestamp are usually
    ready together: they go out in one write, response first, and still chain."""
    writes = record_immediate_writes(monkeypatch)
    base, _ = await serve(make_app(ACCOUNTS_APP))
    async with websockets.connect(base.replace("http", "ws") + "/api/1.48.0/sync") as ws:
        client = Client(ws)
        await client.connect(session="together")
        await client.modify(add(1, "accounts:total", {}))
        await client.recv()
        for n in range(1, 11):
            await client.send(type="Mutation", requestId=n, udfPath="accounts:open",
                              args=[{"owner": f"t{n}", "balance": integer(1)}])
            response = await client.recv()
            assert response["type"] == "MutationResponse" and response["success"]
            transition = await client.recv()  # Client.recv checks the chaining
            assert ts_of(transition["endVersion"]) >= ts_of(response)
            assert transition["modifications"][0]["value"] == integer(n)
    together = [w for w in writes if w == ["MutationResponse", "Transition"]]
    assert len(together) >= 5, writes


async def test_failing_queries_report_and_others_keep_working(client: Client) -> None:
    await client.modify(add(1, "extra:explode", {"owner": "x"}), add(2, "nope:missing", {}),
                        add(3, "accounts:total", {}))
    message = await client.recv()
    by_id = {m["queryId"]: m for m in message["modifications"]}
    assert by_id[1]["type"] == "QueryFailed" and "nobody named x" in by_id[1]["errorMessage"]
    assert by_id[2]["type"] == "QueryFailed"
    assert "Could not find public function for 'nope:missing'" in by_id[2]["errorMessage"]
    assert by_id[3]["type"] == "QueryUpdated"
    await client.send(type="Mutation", requestId=0, udfPath="accounts:open",
                      args=[{"owner": "x", "balance": integer(1)}])
    await client.recv()
    message = await client.recv()
    by_id = {m["queryId"]: m for m in message["modifications"]}
    assert by_id[1]["type"] == "QueryFailed" and by_id[1]["errorData"] == {"owner": "x"}
    assert by_id[3]["value"] == integer(1)


async def test_remove_and_action(client: Client) -> None:
    await client.modify(add(1, "accounts:total", {}))
    await client.recv()
    await client.modify({"type": "Remove", "queryId": 1})
    message = await client.recv()
    assert message["modifications"] == [{"type": "QueryRemoved", "queryId": 1}]
    await client.send(type="Action", requestId=7, udfPath="extra:double", args=[{"x": 2.5}])
    response = await client.recv()
    assert response == {"type": "ActionResponse", "requestId": 7, "success": True,
                        "result": 5.0, "logLines": []}


async def test_replayed_mutation_runs_once(url: str) -> None:
    ws_url = url.replace("http", "ws") + "/api/1.48.0/sync"
    open_ann = {"type": "Mutation", "requestId": 3, "udfPath": "accounts:open",
                "args": [{"owner": "ann", "balance": integer(5)}]}
    async with websockets.connect(ws_url) as ws:
        first = Client(ws)
        await first.connect("same-session", 0)
        await first.send(**open_ann)
        original = await first.recv()
    async with websockets.connect(ws_url) as ws:
        again = Client(ws)
        await again.connect("same-session", 1)
        await again.modify(add(1, "accounts:total", {}))
        await again.send(**open_ann)
        messages = [await again.recv()]
        while not (messages[-1]["type"] == "Transition"
                   and any(m["type"] == "MutationResponse" for m in messages)):
            messages.append(await again.recv())
    replay = next(m for m in messages if m["type"] == "MutationResponse")
    assert replay["result"] == original["result"] and replay["ts"] == original["ts"]
    totals = [m["modifications"][0]["value"] for m in messages
              if m["type"] == "Transition" and m["modifications"]]
    assert totals == [integer(5)], "the replay must not run the mutation a second time"


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        (["not json"], "not valid JSON"),
        ([{"type": "Bogus"}], "unknown message type"),
        ([{"type": "ModifyQuerySet", "baseVersion": 5, "newVersion": 6, "modifications": []}],
         "BaseVersionMismatch"),
        ([{"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
           "modifications": [{"type": "Remove", "queryId": 9}]}], "unknown query id 9"),
        ([{"type": "Mutation", "requestId": -1, "udfPath": "a:b", "args": [{}]}], "u32"),
        ([{"type": "Mutation", "requestId": 1, "udfPath": "a:b", "args": {}}], "one object"),
    ],
)
async def test_protocol_violations_close_the_socket_with_a_reason(
    url: str, messages: list[Any], reason: str
) -> None:
    async with websockets.connect(url.replace("http", "ws") + "/api/sync") as ws:
        await ws.send(json.dumps({"type": "Connect", "sessionId": "s", "connectionCount": 0,
                                  "lastCloseReason": None, "clientTs": 0}))
        for message in messages:
            await ws.send(message if isinstance(message, str) else json.dumps(message))
        with pytest.raises(websockets.ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None and reason in info.value.rcvd.reason
    # The server keeps serving everyone else.
    async with websockets.connect(url.replace("http", "ws") + "/api/sync") as ws:
        c = Client(ws)
        await c.connect()
        await c.modify()
        assert (await c.recv())["type"] == "Transition"


async def test_oversized_messages_close_only_that_socket(url: str) -> None:
    async with websockets.connect(url.replace("http", "ws") + "/api/sync",
                                  max_size=None) as ws:
        await ws.send("x" * (17 * 1024 * 1024))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)


async def closed_with(ws: Any) -> tuple[int, str]:
    with pytest.raises(websockets.ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is not None, "the server must send a close frame"
    return info.value.rcvd.code, info.value.rcvd.reason


@pytest.mark.parametrize("first", [
    {"type": "Mutation", "requestId": 0, "udfPath": "accounts:open",
     "args": [{"owner": "early", "balance": integer(1)}]},
    {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": []},
    {"type": "Action", "requestId": 0, "udfPath": "extra:double", "args": [{"x": 1}]},
])
async def test_messages_before_connect_are_a_protocol_error(url: str, first: Any) -> None:
    async with websockets.connect(url.replace("http", "ws") + "/api/sync") as ws:
        await ws.send(json.dumps(first))
        code, reason = await closed_with(ws)
    assert code == 1002 and "before Connect" in reason
    async with httpx.AsyncClient(base_url=url) as http:
        found = await http.post("/api/query", json={"path": "accounts:by_owner",
                                                    "args": {"owner": "early"}})
    assert found.json()["value"] is None, "a mutation sent before Connect never runs"


async def test_a_second_connect_is_a_protocol_error(client: Client) -> None:
    await client.connect()
    code, reason = await closed_with(client.ws)
    assert code == 1002 and "Connect: sent twice" in reason


async def test_malformed_messages_close_with_1002(url: str) -> None:
    async with websockets.connect(url.replace("http", "ws") + "/api/sync") as ws:
        await ws.send("{not json")
        assert await closed_with(ws) == (1002, "message is not valid JSON")


async def test_too_many_queries_close_with_1008(url: str, serve: Any, make_app: Any) -> None:
    base, deployment = await serve(make_app(ACCOUNTS_APP))
    deployment.settings.limits = ServerLimits(subscriptions_per_socket=3)
    async with websockets.connect(base.replace("http", "ws") + "/api/sync") as ws:
        c = Client(ws)
        await c.connect()
        await c.modify(*[add(i, "accounts:total", {}) for i in range(3)])
        assert (await c.recv())["type"] == "Transition"
        await c.modify(add(3, "accounts:total", {}))
        code, reason = await closed_with(ws)
    assert code == 1008 and reason == "TooManySubscriptions: at most 3 subscriptions per socket"


async def test_sockets_per_address_are_limited(serve: Any, make_app: Any) -> None:
    base, deployment = await serve(make_app(ACCOUNTS_APP))
    deployment.settings.limits = ServerLimits(sockets_per_address=2)
    sync = base.replace("http", "ws") + "/api/sync"
    async with websockets.connect(sync) as a, websockets.connect(sync) as b:
        for ws in (a, b):
            c = Client(ws)
            await c.connect()
            await c.modify()
            assert (await c.recv())["type"] == "Transition"
        async with websockets.connect(sync) as third:
            code, reason = await closed_with(third)
        assert code == 1008 and "TooManyConnections: at most 2" in reason
    # Closing frees the places.
    async with websockets.connect(sync) as again:
        c = Client(again)
        await c.connect()
        await c.modify()
        assert (await c.recv())["type"] == "Transition"


@pytest.mark.parametrize("reason", ["é" * 200, "x" * 300, "日本語" * 60])
def test_close_reasons_fit_123_bytes_on_a_character_boundary(reason: str) -> None:
    from reactive_store.server.sync_endpoint import close_reason

    cut = close_reason(reason)
    assert len(cut.encode()) <= 123 and reason.startswith(cut) and len(cut.encode()) > 117


BIG_APP = {
    "schema/__init__.py": """
from reactive_store import define_schema, define_table, v
schema = define_schema({"blobs": define_table({"body": v.string()})})
""",
    "functions/blobs.py": """
from reactive_store import mutation, query, v

@mutation(args={"size": v.float64()})
async def add(ctx, size):
    await ctx.db.insert("blobs", {"body": "b" * int(size)})

@query(args={})
async def everything(ctx):
    return [b["body"] for b in await ctx.db.query("blobs").collect()]

@query(args={})
async def count(ctx):
    return float(len(await ctx.db.query("blobs").collect()))
""",
}


async def test_a_client_that_stops_reading_is_dropped_and_others_keep_going(
        serve: Any, make_app: Any) -> None:
    """A raw socket that completes the handshake, subscribes, then never reads again: the
    server's sends block once the socket buffers are full, and after the configured time
    without progress it closes that socket and drops its live query; others are unaffected."""
    base, deployment = await serve(make_app(BIG_APP))
    deployment.settings.limits = ServerLimits(stalled_socket_seconds=1.0)
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.transport.get_extra_info("socket").setsockopt(
        __import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096)
    writer.write(b"GET /api/sync HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n")
    assert b" 101 " in await reader.readuntil(b"\r\n\r\n")

    def frame(message: dict[str, Any]) -> bytes:  # a masked client text frame
        data = json.dumps(message).encode()
        mask = b"\x01\x02\x03\x04"
        head = b"\x81" + (bytes([0x80 | 126]) + len(data).to_bytes(2, "big") if len(data) > 125
                          else bytes([0x80 | len(data)]))
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    writer.write(frame({"type": "Connect", "sessionId": "stalled", "connectionCount": 0,
                        "lastCloseReason": None, "clientTs": 0}))
    writer.write(frame({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                        "modifications": [add(0, "blobs:everything", {})]}))
    await writer.drain()
    async with websockets.connect(base.replace("http", "ws") + "/api/sync") as ws:
        healthy = Client(ws)
        await healthy.connect("healthy")
        await healthy.modify(add(0, "blobs:count", {}))
        await healthy.recv()
        async with httpx.AsyncClient(base_url=base) as http:
            loop = asyncio.get_running_loop()
            for i in range(20):  # ~10 MB in all to the stalled socket, growing each time
                added = await http.post("/api/mutation", json={
                    "path": "blobs:add", "args": {"size": 50_000 * (i + 1)}})
                assert added.json()["status"] == "success", added.text[:200]
                started = loop.time()
                while True:
                    message = await healthy.recv()
                    values = [m.get("value") for m in message.get("modifications", [])]
                    if float(i + 1) in values:
                        break
                assert loop.time() - started < 2.0, "the healthy client was held up"
        deadline = asyncio.get_running_loop().time() + 10
        while len(deployment.subscriptions.queries) > 1:
            assert asyncio.get_running_loop().time() < deadline, "the stalled socket lives on"
            await asyncio.sleep(0.1)
    writer.close()


def page_of(query_id: int, journal: str | None = None, desc: bool = False) -> dict[str, Any]:
    args = {"opts": {"numItems": 2.0, "cursor": None}, "desc": desc}
    return {**add(query_id, "extra:owners", args), "journal": journal}


async def open_accounts(client: Client, *owners: str) -> dict[str, Any]:
    """Open accounts one by one; the Transition that followed the last one."""
    transition: dict[str, Any] = {}
    for n, owner in enumerate(owners):
        await client.send(type="Mutation", requestId=100 + n, udfPath="accounts:open",
                          args=[{"owner": owner, "balance": integer(1)}])
        while (transition := await client.recv())["type"] != "Transition":
            pass
    return transition


async def test_journals_keep_a_page_across_reconnects(client: Client, url: str) -> None:
    await open_accounts(client, "a", "c", "e")
    await client.modify(page_of(1))
    first = (await client.recv())["modifications"][0]
    assert first["value"] == ["a", "c"]
    journal = first["journal"]
    assert isinstance(journal, str) and journal.startswith("page1:")
    pushed = (await open_accounts(client, "b"))["modifications"][0]
    assert pushed["value"] == ["a", "b", "c"] and pushed["journal"] == journal
    async with websockets.connect(url.replace("http", "ws") + "/api/1.48.0/sync") as ws:
        again = Client(ws)
        await again.connect("s1", count=1)
        await again.modify(page_of(1, journal), page_of(2))
        got = {m["queryId"]: m for m in (await again.recv())["modifications"]}
        assert got[1]["value"] == ["a", "b", "c"] and got[1]["journal"] == journal
        assert got[2]["value"] == ["a", "b"] and got[2]["journal"] != journal


async def test_bad_journals_fail_only_their_query(client: Client) -> None:
    await open_accounts(client, "a", "c")
    await client.modify(page_of(1, desc=True))
    desc_journal = (await client.recv())["modifications"][0]["journal"]
    await client.modify(page_of(2, "garbage"), page_of(3, desc_journal), page_of(4))
    got = {m["queryId"]: m for m in (await client.recv())["modifications"]}
    assert got[2]["type"] == "QueryFailed"
    assert "malformed query journal 'garbage'" in got[2]["errorMessage"]
    assert got[3]["type"] == "QueryFailed"
    assert got[3]["errorMessage"].startswith("InvalidCursor: ")
    assert got[3]["errorData"] == {"isConvexSystemError": True,
                                   "paginationError": "InvalidCursor"}
    assert got[4]["type"] == "QueryUpdated" and got[4]["value"] == ["a", "c"]


def test_a_socket_is_urgent_while_its_write_awaits_a_transition() -> None:
    from types import SimpleNamespace

    from reactive_store.sync.connection import ResultWatcher
    from reactive_store.sync.protocol import StateVersion
    from reactive_store.sync.session import SyncSession

    session: SyncSession[Any] = SyncSession()
    watcher = ResultWatcher(SimpleNamespace(session=session))  # type: ignore[arg-type]
    assert not watcher.urgent
    session.min_ts = 10  # a MutationResponse at ts 10 went out
    assert watcher.urgent
    session.sent = StateVersion(ts=10)  # the Transition that includes it went out
    assert not watcher.urgent
