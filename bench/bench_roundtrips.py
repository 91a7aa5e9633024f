"""Postgres round trips of one single-insert mutation (issue 13), counted on the wire."""
# A logging proxy on loopback sits between a real server process and Postgres and reads the
# frontend protocol, so the count survives any refactoring of the engine.

from __future__ import annotations

import asyncio
import os
import queue
import re
import struct
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
import uvloop
import websockets
from common import (
    DATABASE_URL,
    ROOMS_APP,
    SMOKE,
    HttpConnection,
    drop,
    namespace,
    server,
    sync_url,
    write_app,
)

MUTATIONS = 20 if SMOKE else 200
# A client waits for the server at: Sync and Query (until ReadyForQuery), and Flush, which
# asyncpg sends after Parse + Describe to prepare a statement (until its row description).
SYNC, QUERY, FLUSH = ord("S"), ord("Q"), ord("H")
LITERAL = re.compile(r"E?'(?:[^']|'')*'|\b\d+\b")
SET = re.compile(r"^\s*(SET|RESET)\b|set_config\(", re.IGNORECASE)


@dataclass
class Trip:
    label: str
    sent: float
    ends: bytes  # backend message types that end it


@dataclass
class Tally:
    """What the proxy saw while recording: round trips by label, their time, transactions."""

    trips: Counter[str] = field(default_factory=Counter)
    ms: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    in_tx: Counter[str] = field(default_factory=Counter)
    transactions: Counter[str] = field(default_factory=Counter)
    sets: list[int] = field(default_factory=list)  # SET statements of each transaction


class WireLog:
    """A TCP proxy to Postgres that counts what every client connection asks of the server."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.recording = False
        self.tally = Tally()

    def label(self, sql: str) -> str:
        sql = " ".join(sql.replace(f'"{self.ns}"', "<ns>").replace(self.ns, "<ns>").split())
        sql = LITERAL.sub("?", sql)  # statements sent without parameters: one label
        return sql if len(sql) <= 110 else sql[:107] + "..."

    def start(self) -> int:
        """Serve on a free port from a thread of its own (the server is started by blocking
        code, and the proxy must keep answering meanwhile); return the port."""
        ready: queue.Queue[int] = queue.Queue()

        async def serve() -> None:
            srv = await asyncio.start_server(self._client, "127.0.0.1", 0)
            ready.put(srv.sockets[0].getsockname()[1])
            await srv.serve_forever()

        threading.Thread(target=uvloop.run, args=(serve(),), daemon=True).start()
        return ready.get(timeout=10)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = urlsplit(DATABASE_URL)
        up_reader, up_writer = await asyncio.open_connection(target.hostname or "127.0.0.1",
                                                             target.port or 5432)
        conn = _Connection(self)
        try:
            await asyncio.gather(conn.frontend(reader, up_writer),
                                 conn.backend(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            up_writer.close()


class _Connection:
    """One proxied connection: parses both directions, forwards every byte unchanged."""

    def __init__(self, log: WireLog) -> None:
        self.log = log
        self.statements: dict[str, str] = {}
        self.batch: list[tuple[str, str]] = []  # (prepare|execute, sql) since the last Sync
        self.trips: deque[Trip] = deque()
        self.tx: str | None = None  # the BEGIN of the open transaction
        self.tx_sets = 0

    async def frontend(self, reader: asyncio.StreamReader, up: asyncio.StreamWriter) -> None:
        # Untyped messages first (SSLRequest is refused by the URL's sslmode=disable; the
        # startup message carries the protocol version 3.0).
        while True:
            head = await reader.readexactly(8)
            body = await reader.readexactly(struct.unpack(">i", head[:4])[0] - 8)
            up.write(head + body)
            if struct.unpack(">i", head[4:])[0] == 196608:
                break
        while True:
            head = await reader.readexactly(5)
            body = await reader.readexactly(struct.unpack(">i", head[1:])[0] - 4)
            up.write(head + body)
            self._message(head[0], body)

    async def backend(self, reader: asyncio.StreamReader, down: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readexactly(5)
            body = await reader.readexactly(struct.unpack(">i", head[1:])[0] - 4)
            down.write(head + body)
            if self.trips and head[0] in self.trips[0].ends:
                trip = self.trips.popleft()
                if self.log.recording:
                    self.log.tally.ms[trip.label] += (time.perf_counter() - trip.sent) * 1000

    def _message(self, kind: int, body: bytes) -> None:
        if kind == ord("P"):
            name, rest = body.split(b"\0", 1)
            sql = rest.split(b"\0", 1)[0].decode()
            self.statements[name.decode()] = sql
            self.batch.append(("prepare", sql))
        elif kind == ord("B"):
            statement = body.split(b"\0", 2)[1].decode()
            self.batch.append(("execute", self.statements.get(statement, "?")))
        elif kind == QUERY:
            self._trip(body.rstrip(b"\0").decode(), b"Z")
        elif kind == SYNC and self.batch:
            self._trip(" + ".join(sql for _, sql in self.batch), b"Z",
                       any(step == "prepare" for step, _ in self.batch))
        elif kind == SYNC:
            self._trip("(Sync alone)", b"Z")
        elif kind == FLUSH and self.batch:
            self._trip(" + ".join(sql for _, sql in self.batch), b"TnE", True)

    def _trip(self, sql: str, ends: bytes, prepare: bool = False) -> None:
        self.batch = []
        label = ("prepare: " if prepare else "") + self.log.label(sql)
        self.trips.append(Trip(label, time.perf_counter(), ends))
        first = re.match(r"\s*(\w+)", sql)
        word = first.group(1).upper() if first else ""
        tally = self.log.tally
        if self.log.recording:
            tally.trips[label] += 1
        if word in ("BEGIN", "START"):
            self.tx, self.tx_sets = self.log.label(sql).rstrip(";"), 0
        if self.tx is not None and self.log.recording:
            tally.in_tx[label] += 1
        if self.tx is not None and SET.search(sql):
            self.tx_sets += 1
        # The last statement of a message counts: the commit step travels with COMMIT.
        last = re.match(r"\s*(\w+)", sql.rstrip().rstrip(";").rsplit(";", 1)[-1])
        if last:
            word = last.group(1).upper()
        if word in ("COMMIT", "ROLLBACK", "END", "ABORT") and self.tx is not None:
            if self.log.recording:
                tally.transactions[self.tx] += 1
                tally.sets.append(self.tx_sets)
            self.tx = None


def proxied(port: int) -> str:
    parts = urlsplit(DATABASE_URL)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"{netloc[0]}@127.0.0.1:{port}" if len(netloc) == 2 else f"127.0.0.1:{port}"
    query = "&".join(q for q in (parts.query, "sslmode=disable") if q)
    return urlunsplit((parts.scheme, host, parts.path, query, parts.fragment))


async def function_sets(ns: str, labels: list[str]) -> dict[str, int]:
    """SETs (set_config, SET) inside the deployment's SQL functions that the statements call:
    they do not show on the wire but run once per call."""
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        rows = await conn.fetch("SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n "
                                "ON n.oid = p.pronamespace WHERE n.nspname = $1", ns)
    finally:
        await conn.close()
    called = " ".join(labels)
    return {f"{row[0]}()": len(SET.findall(row[1])) for row in rows
            if re.search(rf'\b{re.escape(row[0])}"?\(', called)}


async def measure(log: WireLog, name: str, mutate: Callable[[int], Awaitable[Any]]) -> None:
    for i in range(20):  # every statement prepared on the connections the mutations use
        await mutate(-i - 1)
    await asyncio.sleep(0.5)
    log.tally, log.recording = Tally(), True
    start = time.perf_counter()
    await asyncio.sleep(1.0)
    idle = sum(log.tally.trips.values())
    log.tally = Tally()
    for i in range(MUTATIONS):
        await mutate(i)
    elapsed = time.perf_counter() - start - 1.0
    await asyncio.sleep(0.05)  # round trips that follow the response (after-commit work)
    log.recording = False
    tally = log.tally
    per = float(MUTATIONS)
    print(f"\nround trips per single-insert mutation, {name} ({MUTATIONS} mutations one at a "
          f"time, {elapsed / per * 1000:.2f} ms each through the proxy; with no mutation the "
          f"server made {idle} round trips in 1 s):")
    print("   count  ms each  in tx  statement (SQL of the round trip; 'prepare:' = "
          "Parse/Describe)")
    for label, n in tally.trips.most_common():
        print(f"  {n / per:6.2f}  {tally.ms[label] / n:7.3f}  {tally.in_tx[label] / per:5.2f}  "
              f"{label}")
    total = sum(tally.trips.values()) / per
    in_tx = sum(tally.in_tx.values()) / per
    sets = sum(tally.sets) / len(tally.sets) if tally.sets else 0.0
    kinds = ", ".join(f"{n / per:.2f} x {begin}" for begin, n in tally.transactions.items())
    hidden = await function_sets(log.ns, list(tally.trips))
    waited = sum(tally.ms.values()) / per
    print(f"  total {total:.2f} round trips per mutation ({in_tx:.2f} inside transactions, "
          f"{total - in_tx:.2f} outside), {waited:.2f} ms of the {elapsed / per * 1000:.2f} ms "
          f"waiting on Postgres; transactions per mutation: {kinds or 'none'}")
    print(f"  SET statements sent per transaction: {sets:.2f}; SETs inside the SQL functions "
          f"called, run once per call: "
          + (", ".join(f"{fn} {n}" for fn, n in hidden.items()) or "none"))


async def main() -> None:
    ns = namespace()
    log = WireLog(ns)
    port = log.start()
    app = write_app(ROOMS_APP)
    try:
        with server(app, ns, database_url=proxied(port)) as url:
            http = await HttpConnection.open(url)

            async def over_http(i: int) -> None:
                await http.post("/api/mutation", orjson.dumps({
                    "path": "rooms:post", "args": {"room": 1.0, "body": f"h{i}"}}))

            await measure(log, "over HTTP (POST /api/mutation)", over_http)
            await http.close()
            async with websockets.connect(sync_url(url), max_size=None) as ws:
                await ws.send(orjson.dumps({
                    "type": "Connect", "sessionId": os.urandom(8).hex(), "connectionCount": 0,
                    "lastCloseReason": None, "clientTs": 0}).decode())
                request = iter(range(10**9))

                async def over_ws(i: int) -> None:
                    rid = next(request)
                    await ws.send(orjson.dumps({
                        "type": "Mutation", "requestId": rid, "udfPath": "rooms:post",
                        "args": [{"room": 1.0, "body": f"w{i}"}]}).decode())
                    answered = False
                    while True:  # the response, then the Transition that reflects it
                        message = orjson.loads(await ws.recv())
                        if message["type"] == "MutationResponse":
                            answered = message["requestId"] == rid
                        elif message["type"] == "Transition" and answered:
                            return

                await measure(log, "over the WebSocket (Mutation message, as the npm client "
                                   "sends it)", over_ws)
    finally:
        await drop(ns)


if __name__ == "__main__":
    uvloop.run(main())
