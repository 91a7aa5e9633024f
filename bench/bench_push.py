"""Commit -> push with 1,000 clients and fan-out to 1,000 sockets (issue 13), vs a raw floor."""
# Measured at the official npm client's callback and at the socket, each next to a raw floor
# of the same run: asyncpg INSERT + NOTIFY, LISTEN, the same SELECT, one shared frame written
# to every watching socket by a bare WebSocket server.

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
import uvloop
from common import (
    DATABASE_URL,
    ROOMS_APP,
    SMOKE,
    HttpConnection,
    drop,
    free_port,
    namespace,
    npm_clients,
    report_latency,
    seconds,
    server,
    write_app,
)

CLIENTS = 100 if SMOKE else 1000
QUERIES = 100
RATE = 50.0
ROUNDS = 3 if SMOKE else 20
BLOCKS = 4  # the fan-out rounds alternate between ours and the floor in this many blocks
GAP = 0.3  # seconds between fan-out rounds
# Named per run (the floor server, a child process, is handed the suffix): two runs at once
# on one database (a test suite's smoke run beside a benchmark) must not share them.
FLOOR_RUN = os.environ.get("BENCH_FLOOR_RUN") or uuid.uuid4().hex[:10]
FLOOR_TABLE = f"bench_floor_messages_{FLOOR_RUN}"
FLOOR_CHANNEL = f"bench_floor_{FLOOR_RUN}"
MARKER = re.compile(rb'"body":"([a-z]\d+)"')


# -- a bare WebSocket client, timed at the socket rather than after a client library ---------
def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame (RFC 6455 5.3)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def server_frame(payload: bytes) -> bytes:
    """An unmasked text frame, as a server sends it."""
    n = len(payload)
    if n < 126:
        return bytes([0x81, n]) + payload
    if n < 65536:
        return bytes([0x81, 126]) + struct.pack(">H", n) + payload
    return bytes([0x81, 127]) + struct.pack(">Q", n) + payload


# Linux: the kernel stamps each received segment (SO_TIMESTAMPNS = SCM_TIMESTAMPNS = 35), so a
# delivery is timed when it reached the socket, not when this process got round to reading it:
# the probe's own processing of 1,000 sockets would otherwise be most of a fan-out's figure.
SO_TIMESTAMPNS = 35
ANCILLARY = socket.CMSG_SPACE(16)


class ProbeSocket:
    """One subscriber socket. Reports every message body it sees for the first time, with the
    time (ns since the epoch) its bytes reached the socket."""

    def __init__(self, probe: Probe, sock: socket.socket, messages: list[bytes]) -> None:
        self.probe, self.sock, self.messages = probe, sock, messages
        self.buffer = bytearray()
        self.upgraded = False
        self.ready = asyncio.get_running_loop().create_future()
        self.seen: set[bytes] = set()

    @classmethod
    async def open(cls, probe: Probe, port: int, path: str,
                   messages: list[bytes]) -> ProbeSocket:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self = cls(probe, sock, messages)
        loop.add_reader(sock.fileno(), self._readable)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.send((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        return self

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()

    def _readable(self) -> None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(65536, ANCILLARY)
        except BlockingIOError:
            return
        except OSError as exc:
            data, ancillary = b"", []
            if not self.ready.done():
                self.ready.set_exception(exc)
        if not data:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            if not self.ready.done():
                self.ready.set_exception(ConnectionError("closed before the first result"))
            return
        arrived = time.time_ns()
        for level, kind, stamp in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(stamp) >= 16:
                sec, nsec = struct.unpack("qq", stamp[:16])
                arrived = sec * 1_000_000_000 + nsec
        self._received(data, arrived)

    def _received(self, data: bytes, arrived: int) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(RuntimeError(bytes(self.buffer[:200]).decode()))
                return
            del self.buffer[:end + 4]
            self.upgraded = True
            for message in self.messages:
                self.sock.send(client_frame(message))
        while len(self.buffer) >= 2:
            opcode, n, start = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
            if n == 126:
                if len(self.buffer) < 4:
                    return
                n, start = struct.unpack(">H", self.buffer[2:4])[0], 4
            elif n == 127:
                if len(self.buffer) < 10:
                    return
                n, start = struct.unpack(">Q", self.buffer[2:10])[0], 10
            if len(self.buffer) < start + n:
                return
            payload = bytes(self.buffer[start:start + n])
            del self.buffer[:start + n]
            if opcode == 0x9:  # ping
                self.sock.send(client_frame(payload, 0xA))
            elif opcode in (0x1, 0x2):
                self._message(payload, arrived)

    def _message(self, payload: bytes, arrived: int) -> None:
        if not self.ready.done() and b'"QueryUpdated"' in payload:
            self.ready.set_result(None)
        for body in MARKER.findall(payload):
            if body not in self.seen:
                self.seen.add(body)
                self.probe.delivered(body, arrived)


class Probe:
    """Bare subscriber sockets; `sent[body]` is when the write of `body` began (ns, epoch)."""

    def __init__(self) -> None:
        self.sent: dict[bytes, int] = {}
        self.deliveries: dict[bytes, list[float]] = defaultdict(list)
        self.sockets: list[ProbeSocket] = []

    def delivered(self, body: bytes, arrived: int) -> None:
        at = self.sent.get(body)
        if at is not None:
            self.deliveries[body].append((arrived - at) / 1e6)

    async def open(self, port: int, room_of: Callable[[int], int], count: int,
                   path: Callable[[int], str], messages: Callable[[int], list[bytes]]) -> None:
        for i in range(count):
            self.sockets.append(await ProbeSocket.open(self, port, path(room_of(i)),
                                                       messages(room_of(i))))
        await asyncio.wait_for(asyncio.gather(*[s.ready for s in self.sockets]), 120)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def subscribe_messages(room: int) -> list[bytes]:
    """Connect and ModifyQuerySet for `rooms:latest` of one room (the Convex sync protocol)."""
    return [orjson.dumps({"type": "Connect", "sessionId": os.urandom(8).hex(),
                          "connectionCount": 0, "lastCloseReason": None, "clientTs": 0}),
            orjson.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                          "modifications": [{"type": "Add", "queryId": 0,
                                             "udfPath": "rooms:latest",
                                             "args": [{"room": float(room)}]}]})]


# -- the floor: raw asyncpg and a bare WebSocket broadcaster --------------------------------
FLOOR_SELECT = (f"SELECT _id, _creation_time, doc FROM {FLOOR_TABLE} WHERE k >= $1 AND k < $2 "
                "ORDER BY k DESC LIMIT 5")


def room_key(room: int) -> bytes:
    return b"%08d" % room


async def floor_server(port: int) -> None:
    """Serves /room/N WebSockets: on each NOTIFY of a room, runs the room's query once, encodes
    one frame and writes it to every socket of that room without waiting for any."""
    rooms: dict[int, list[asyncio.StreamWriter]] = defaultdict(list)
    reader_conn = await asyncpg.connect(DATABASE_URL)
    changed: asyncio.Queue[int] = asyncio.Queue()

    async def push() -> None:
        while True:
            room = await changed.get()
            rows = await reader_conn.fetch(FLOOR_SELECT, room_key(room), room_key(room + 1))
            value = [{"_id": r[0], "_creationTime": r[1], **orjson.loads(r[2])} for r in rows]
            frame = server_frame(orjson.dumps({"type": "Transition", "modifications": [
                {"type": "QueryUpdated", "queryId": 0, "value": value}]}))
            for writer in rooms[room]:
                writer.write(frame)

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        room = int(head.split(" ", 2)[1].rsplit("/", 1)[1])
        key = re.search(r"(?i)sec-websocket-key: *(\S+)", head)
        assert key is not None
        accept = base64.b64encode(hashlib.sha1(
            (key.group(1) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        writer.write(server_frame(b'{"type":"Transition","modifications":[{"type":'
                                  b'"QueryUpdated","queryId":0,"value":[]}]}'))
        rooms[room].append(writer)
        while await reader.read(65536):  # client frames are ignored
            pass
        rooms[room].remove(writer)

    listener = await asyncpg.connect(DATABASE_URL)
    await listener.add_listener(FLOOR_CHANNEL, lambda *a: changed.put_nowait(int(a[3])))
    pusher = asyncio.create_task(push())
    srv = await asyncio.start_server(accept, "127.0.0.1", port, backlog=2048)
    print("ready", flush=True)
    async with srv:
        await asyncio.gather(srv.serve_forever(), pusher)


class Floor:
    """The floor server in its own process (the engine runs in its own too), and its writer."""

    async def __aenter__(self) -> Floor:
        self.pool = await asyncpg.create_pool(DATABASE_URL, min_size=4, max_size=4)
        assert self.pool is not None
        await self.pool.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        await self.pool.execute(f"CREATE TABLE {FLOOR_TABLE} (_id text PRIMARY KEY, "
                                "_creation_time double precision, doc json, k bytea UNIQUE)")
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, __file__, "floor", str(self.port)],
                                     stdout=subprocess.PIPE,
                                     env={**os.environ, "BENCH_FLOOR_RUN": FLOOR_RUN})
        assert self.proc.stdout is not None
        line = await asyncio.to_thread(self.proc.stdout.readline)
        if line.strip() != b"ready":
            raise RuntimeError("the floor server did not start")
        self.n = 0
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        await self.pool.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        await self.pool.close()

    async def write(self, room: int, body: str) -> None:
        self.n += 1
        doc = orjson.dumps({"room": float(room), "body": body}).decode()
        async with self.pool.acquire() as conn, conn.transaction(isolation="serializable"):
            await conn.execute(f"INSERT INTO {FLOOR_TABLE} VALUES ($1, $2, $3, $4)",
                               f"f{self.n}", time.time() * 1000, doc,
                               room_key(room) + b"%012d" % self.n)
            await conn.execute("SELECT pg_notify($1, $2)", FLOOR_CHANNEL, str(room))

    async def probe(self, count: int, room_of: Callable[[int], int]) -> Probe:
        probe = Probe()
        await probe.open(self.port, room_of, count, lambda room: f"/room/{room}",
                         lambda room: [])
        return probe


class Ours:
    """The engine's writer: HTTP mutations, a few connections so that a slow ack does not
    hold up the next write's start."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> Ours:
        self.conns: asyncio.Queue[HttpConnection] = asyncio.Queue()
        await self.reopen()
        return self

    async def __aexit__(self, *exc: object) -> None:
        while not self.conns.empty():
            await self.conns.get_nowait().close()

    async def reopen(self) -> None:
        """Fresh connections: the server closes keep-alive connections idle for 5 s."""
        await self.__aexit__()
        for _ in range(4):
            self.conns.put_nowait(await HttpConnection.open(self.url))

    async def write(self, room: int, body: str) -> None:
        http = await self.conns.get()
        try:
            await http.post("/api/mutation", orjson.dumps({
                "path": "rooms:post", "args": {"room": float(room), "body": body}}))
        finally:
            self.conns.put_nowait(http)

    async def probe(self, count: int, room_of: Callable[[int], int]) -> Probe:
        probe = Probe()
        port = int(self.url.rsplit(":", 1)[1])
        await probe.open(port, room_of, count, lambda room: "/api/1.48.0/sync",
                         subscribe_messages)
        return probe


# -- the two measurements -------------------------------------------------------------------
Writer = Callable[[int, str], Awaitable[None]]


async def steady_writes(probe: Probe, write: Writer, duration: float) -> list[float]:
    """RATE writes/s to rooms in turn for `duration`; returns the writes' ack times (ms).
    Bodies are "p<n>" (the npm client's phase wrote "m<n>" to the same rooms)."""
    acks: list[float] = []

    async def one(n: int) -> None:
        body = f"p{n}"
        start = time.perf_counter()
        probe.sent[body.encode()] = time.time_ns()
        await write(n % QUERIES, body)
        acks.append((time.perf_counter() - start) * 1000)

    tasks = []
    start = time.perf_counter()
    for n in range(int(RATE * duration)):
        await asyncio.sleep(max(0.0, start + n / RATE - time.perf_counter()))
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    await asyncio.sleep(0.5)
    return acks


async def fan_rounds(probe: Probe, write: Writer, first: int, count: int
                     ) -> tuple[list[float], list[float]]:
    """`count` writes "q<r>" (r from `first`) to room 0, each after the last one reached every
    socket (or 10 s); returns each round's last delivery and the writer's ack (ms)."""
    last, acks = [], []
    for r in range(first, first + count):
        await asyncio.sleep(GAP)
        body = f"q{r}".encode()
        start = time.perf_counter()
        probe.sent[body] = time.time_ns()
        await write(0, body.decode())
        acks.append((time.perf_counter() - start) * 1000)
        while (len(probe.deliveries[body]) < len(probe.sockets)
               and time.perf_counter() - start < 10):
            await asyncio.sleep(0.001)
        got = probe.deliveries[body]
        if len(got) < len(probe.sockets):
            print(f"  round {r}: only {len(got)} of {len(probe.sockets)} sockets got it in 10 s")
        last.append(max(got, default=10_000.0))
    return last, acks


async def alternating_fan_out(ours: Ours, floor: Floor) -> dict[str, list[float]]:
    """The fan-out rounds of ours and of the floor in alternating blocks, both servers and
    both sets of sockets open throughout: the machine's drift over minutes hits both alike."""
    probes = {"ours": await ours.probe(CLIENTS, lambda i: 0),
              "floor": await floor.probe(CLIENTS, lambda i: 0)}
    await ours.reopen()  # idle through the floor's steady writes; a block is shorter
    writers: dict[str, Writer] = {"ours": ours.write, "floor": floor.write}
    out: dict[str, list[float]] = defaultdict(list)
    per_block = -(-ROUNDS // BLOCKS)
    for first in range(0, ROUNDS, per_block):
        for name, probe in probes.items():
            last, acks = await fan_rounds(probe, writers[name], first,
                                          min(per_block, ROUNDS - first))
            out[f"{name}_fan"] += last
            out[f"{name}_fan_acks"] += acks
    for name, probe in probes.items():
        out[f"{name}_fan_all"] = flat(probe)
        probe.close()
    return out


def flat(probe: Probe) -> list[float]:
    return [ms for values in probe.deliveries.values() for ms in values]


async def main() -> None:
    duration = seconds(10.0)
    ns = namespace()
    app = write_app(ROOMS_APP)
    results: dict[str, Any] = {}
    try:
        with server(app, ns) as url:
            npm = await npm_clients("push", url, clients=CLIENTS, queries=QUERIES, rate=RATE,
                                    seconds=duration)
            fan_npm = await npm_clients("fanout", url, clients=CLIENTS, rounds=ROUNDS,
                                        gapMs=GAP * 1000)
            async with Ours(url) as ours, Floor() as floor:
                for name, side in (("ours", ours), ("floor", floor)):
                    probe = await side.probe(CLIENTS, lambda i: i % QUERIES)
                    results[f"{name}_acks"] = await steady_writes(probe, side.write, duration)
                    results[f"{name}_push"] = flat(probe)
                    probe.close()
                results.update(await alternating_fan_out(ours, floor))
    finally:
        await drop(ns)
    name = "raw floor"
    report_latency(f"commit -> push, {npm['connected']} official npm clients, {QUERIES} queries, "
                   f"{RATE:.0f} writes/s, {duration:g} s, mutation() to onUpdate callback",
                   npm["latencies"], results["floor_push"], "p50 <= 3 ms, p99 <= 10 ms",
                   f"{name} at the socket")
    report_latency("  the writer's mutation() ack at that load", npm["acks"],
                   results["floor_acks"], baseline_name=f"{name} transaction")
    report_latency(f"  the same at the socket, {CLIENTS} bare sockets, HTTP writer",
                   results["ours_push"], results["floor_push"], baseline_name=name)
    report_latency("  the writer's HTTP ack at that load", results["ours_acks"],
                   results["floor_acks"], baseline_name=f"{name} transaction")
    report_latency(f"fan-out to {CLIENTS} sockets on one query, last delivery of each of "
                   f"{ROUNDS} commits (in {min(BLOCKS, ROUNDS)} blocks alternating with the "
                   "floor's)",
                   results["ours_fan"], results["floor_fan"],
                   "last delivery p50 <= 20 ms", name)
    report_latency("  every delivery at the socket", results["ours_fan_all"],
                   results["floor_fan_all"], baseline_name=name)
    report_latency("  the writer's HTTP ack during fan-out", results["ours_fan_acks"],
                   results["floor_fan_acks"], baseline_name=f"{name} transaction")
    deliveries = [ms for rnd in fan_npm["rounds"] for ms in rnd["deliveries"]]
    last_npm = [max(rnd["deliveries"], default=10_000.0) for rnd in fan_npm["rounds"]]
    report_latency(f"  at {fan_npm['connected']} official npm clients' callbacks, every "
                   "delivery", deliveries, results["floor_fan_all"],
                   baseline_name=f"{name} at the socket")
    report_latency("  at the npm callbacks, last delivery", last_npm, results["floor_fan"],
                   baseline_name=f"{name} at the socket")
    report_latency("  the npm writer's mutation() ack during fan-out",
                   [r["ack"] for r in fan_npm["rounds"]], results["floor_fan_acks"],
                   baseline_name=f"{name} transaction")
    print(f"  ({name}: asyncpg INSERT + pg_notify in one SERIALIZABLE transaction; a bare "
          "WebSocket server in its own process LISTENs, runs the room's SELECT once and writes "
          "one frame to every socket of the room. Bare sockets: one process, each delivery timed "
          "by the kernel's receive timestamp. Shared 2-core machine: clients, server and "
          "Postgres compete.)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["floor"]:
        uvloop.run(floor_server(int(sys.argv[2])))
    else:
        uvloop.run(main())
