"""A fan-out's writes from several threads: real sockets on uvloop and asyncio transports get
every byte in order, a full or queued socket goes through its transport, and TLS never
takes the direct path."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import socket
import ssl
import struct
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from reactive_store.server import parallel_writes
from reactive_store.server.parallel_writes import (
    PARALLEL_FROM,
    ParallelWrites,
    plain_fd,
    write_lane,
)

BIGGER_THAN_BUFFERS = 32 << 20  # more than a loopback socket's kernel buffers hold
LOOPS: dict[str, Callable[[Awaitable[Any]], Any]] = {"uvloop": uvloop.run,
                                                      "asyncio": asyncio.run}


class Accepted(asyncio.Protocol):
    transports: list[Any]

    def connection_made(self, transport: Any) -> None:
        self.transports.append(transport)


@contextlib.asynccontextmanager
async def connected(count: int) -> AsyncIterator[tuple[list[Any], list[socket.socket]]]:
    """`count` server-side transports of this loop, each with its client socket (in order);
    all closed, with their server, at the end."""
    transports: list[Any] = []
    protocol = type("Recording", (Accepted,), {"transports": transports})
    server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clients: list[socket.socket] = []
    try:
        for i in range(count):
            clients.append(socket.create_connection(("127.0.0.1", port)))
            for _ in range(5000):
                if len(transports) > i:
                    break
                await asyncio.sleep(0.001)
            assert len(transports) > i, "the server did not accept"
        yield transports, clients
    finally:
        for transport in transports:
            transport.close()
        for client in clients:
            client.close()
        server.close()


async def read_exactly(sock: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    got = bytearray()
    while len(got) < size:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, min(size - len(got), 1 << 16)), 10)
        assert chunk, "closed early"
        got += chunk
    return bytes(got)


@pytest.fixture
def threads_writing(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """The names of the threads that wrote to a socket directly."""
    names: set[str] = set()
    real = os.write

    def write(fd: int, data: bytes) -> int:
        names.add(threading.current_thread().name)
        return real(fd, data)

    monkeypatch.setattr(parallel_writes.os, "write", write)
    yield names


@pytest.mark.parametrize("loop", LOOPS)
def test_every_socket_gets_its_bytes_in_order_from_two_threads(
        loop: str, threads_writing: set[str]) -> None:
    async def run() -> None:
        async with connected(PARALLEL_FROM + 6) as (transports, clients):
            writes = ParallelWrites(helpers=1)
            fds = [plain_fd(t) for t in transports]
            assert all(fd >= 0 for fd in fds)
            pairs = list(enumerate(zip(transports, fds, strict=True)))
            held = [(t, b"first %d;" % i, fd) for i, (t, fd) in pairs]
            held += [(t, b"second %d;" % i, fd) for i, (t, fd) in pairs]
            writes.write_all(held)
            for i, client in enumerate(clients):
                want = b"first %d;second %d;" % (i, i)
                assert await read_exactly(client, len(want)) == want

    LOOPS[loop](run())
    assert threading.current_thread().name in threads_writing
    assert any(name.startswith("socket-writes") for name in threads_writing)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_full_socket_takes_the_rest_through_its_transport_in_order(loop: str) -> None:
    async def run() -> None:
        async with connected(PARALLEL_FROM) as (transports, clients):
            writes = ParallelWrites(helpers=1)
            slow = clients[0]
            big = os.urandom(BIGGER_THAN_BUFFERS)  # the socket takes part of it: a short write
            held = [(t, b"x%d" % i, plain_fd(t)) for i, t in enumerate(transports)]
            held[0] = (transports[0], big, plain_fd(transports[0]))
            held.append((transports[0], b"after the big one", plain_fd(transports[0])))
            writes.write_all(held)
            assert transports[0].get_write_buffer_size() > 0  # the tail waits in the transport
            for i, client in enumerate(clients[1:], 1):
                assert await read_exactly(client, len(b"x%d" % i)) == b"x%d" % i
            want = big + b"after the big one"
            assert await read_exactly(slow, len(want)) == want

    LOOPS[loop](run())


@pytest.mark.parametrize("loop", LOOPS)
def test_bytes_already_queued_go_first_and_closed_sockets_are_skipped(
        loop: str, threads_writing: set[str]) -> None:
    async def run() -> None:
        async with connected(PARALLEL_FROM + 1) as (transports, clients):
            writes = ParallelWrites(helpers=1)
            queued, closed = transports[0], transports[1]
            backlog = os.urandom(BIGGER_THAN_BUFFERS)
            queued.write(backlog)
            assert queued.get_write_buffer_size() > 0
            clients[0].settimeout(10)  # the peer reads some while the loop stands still:
            head = b""  # room in the kernel, bytes still queued in the transport
            while len(head) < 1 << 20:
                head += clients[0].recv(1 << 16)
            closed.close()
            held = [(t, b"frame", plain_fd(t)) for t in transports]
            written_before = len(threads_writing)
            writes.write_all(held)
            assert written_before == 0 and threads_writing  # the rest went direct
            want = backlog + b"frame"
            assert head + await read_exactly(clients[0], len(want) - len(head)) == want
            assert await asyncio.get_running_loop().sock_recv(clients[1], 10) == b""
            for client in clients[2:]:
                assert await read_exactly(client, 5) == b"frame"

    LOOPS[loop](run())


@pytest.mark.parametrize("loop", LOOPS)
def test_a_broken_socket_is_left_to_its_transport_and_the_others_are_written(loop: str) -> None:
    async def run() -> None:
        lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

        class Lost(asyncio.Protocol):
            def connection_lost(self, exc: Exception | None) -> None:
                lost.set_result(exc)

        async with connected(PARALLEL_FROM) as (transports, clients):
            writes = ParallelWrites(helpers=1)
            transports[0].set_protocol(Lost())
            transports[0].pause_reading()  # only a write can find the reset
            broken = clients[0]
            broken.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            broken.close()  # linger 0: a reset, so the server's next send fails
            await asyncio.sleep(0.05)
            held = [(t, b"frame", plain_fd(t)) for t in transports]
            writes.write_all(held)
            for client in clients[1:]:
                assert await read_exactly(client, 5) == b"frame"
            assert isinstance(await asyncio.wait_for(lost, 10), OSError)

    LOOPS[loop](run())


def test_a_lane_keeps_a_sockets_later_writes_behind_its_unsent_tail(
        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport = object()
        big = os.urandom(4 << 20)
        rest = write_lane([(transport, big, a.fileno()), (transport, b"next", a.fileno())])
        assert len(rest) == 2 and rest[1] == (transport, b"next")
        tail = rest[0][1]
        assert 0 < len(tail) < len(big) and big.endswith(tail)
        # Had the peer read between the two writes, the kernel would take the second: it
        # must still wait behind the tail (a scripted short write, then room).
        b.setblocking(False)
        while True:
            try:
                b.recv(1 << 20)
            except BlockingIOError:
                break
        calls: list[bytes] = []
        real = os.write

        def short_first(fd: int, data: bytes) -> int:
            calls.append(data)
            return real(fd, data[:1]) if len(calls) == 1 else real(fd, data)

        monkeypatch.setattr(parallel_writes.os, "write", short_first)
        rest = write_lane([(transport, b"abc", a.fileno()), (transport, b"def", a.fileno())])
        assert rest == [(transport, b"bc"), (transport, b"def")] and calls == [b"abc"]
    finally:
        a.close()
        b.close()


def test_few_writes_or_no_helpers_write_through_the_transports(
        threads_writing: set[str]) -> None:
    async def run() -> None:
        async with connected(PARALLEL_FROM) as (transports, clients):
            held = [(t, b"frame", plain_fd(t)) for t in transports]
            ParallelWrites(helpers=1).write_all(held[:-1])  # one short of a parallel batch
            ParallelWrites(helpers=0).write_all(held)
            for client in clients[:-1]:
                assert await read_exactly(client, 10) == b"frame" * 2
            assert await read_exactly(clients[-1], 5) == b"frame"
            assert threads_writing == set()

    uvloop.run(run())


def self_signed(directory: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


@pytest.mark.parametrize("loop", LOOPS)
def test_tls_and_unknown_transports_have_no_plain_fd(loop: str, tmp_path: Path) -> None:
    context = self_signed(tmp_path)

    async def run() -> None:
        transports: list[Any] = []
        protocol = type("Recording", (Accepted,), {"transports": transports})
        server = await asyncio.get_running_loop().create_server(
            protocol, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        client = ssl.create_default_context()
        client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        try:
            while not transports:
                await asyncio.sleep(0.001)
            assert transports[0].get_extra_info("socket") is not None
            assert plain_fd(transports[0]) == -1
        finally:
            writer.close()
            await writer.wait_closed()
            for transport in transports:
                transport.close()
            server.close()

    LOOPS[loop](run())
    assert plain_fd(object()) == -1


@pytest.mark.parametrize(("cores", "helpers"), [(1, 0), (2, 1), (4, 3), (64, 3)])
def test_helpers_follow_the_usable_cores(monkeypatch: pytest.MonkeyPatch, cores: int,
                                         helpers: int) -> None:
    monkeypatch.setattr(parallel_writes, "usable_cores", lambda: cores)
    assert ParallelWrites().helpers == helpers


@pytest.mark.parametrize(("text", "cores"), [
    ("max 100000\n", None), ("200000 100000\n", 2), ("150000 100000\n", 2),
    ("50000 100000\n", 1), ("garbage\n", None), ("1 0\n", None)])
def test_a_cgroup_quota_caps_the_cores(tmp_path: Path, text: str, cores: int | None) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(text)
    assert parallel_writes.cgroup_cores(cpu_max) == cores
    assert parallel_writes.cgroup_cores(tmp_path / "missing") is None


def test_usable_cores_take_the_smaller_of_affinity_and_quota(
        monkeypatch: pytest.MonkeyPatch) -> None:
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(parallel_writes, "cgroup_cores", lambda: None)
    assert parallel_writes.usable_cores() == affinity
    monkeypatch.setattr(parallel_writes, "cgroup_cores", lambda: 1)
    assert parallel_writes.usable_cores() == 1
    monkeypatch.setattr(parallel_writes, "cgroup_cores", lambda: affinity + 8)
    assert parallel_writes.usable_cores() == affinity


def test_a_failing_lane_still_waits_for_the_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop's own lane failing must not return while a helper still writes to fds the
    loop could close and reuse next."""
    loop_thread = threading.current_thread()
    helper_done: list[int] = []
    real = os.write

    def write(fd: int, data: bytes) -> int:
        if threading.current_thread() is loop_thread:
            raise RuntimeError("the loop's lane broke")
        time.sleep(0.001)  # a slow helper: still busy when the loop's lane fails
        sent = real(fd, data)
        helper_done.append(fd)
        return sent

    async def run() -> None:
        async with connected(PARALLEL_FROM) as (transports, _):
            monkeypatch.setattr(parallel_writes.os, "write", write)
            held = [(t, b"frame", plain_fd(t)) for t in transports]
            with pytest.raises(RuntimeError, match="lane broke"):
                ParallelWrites(helpers=1).write_all(held)
            assert len(helper_done) == PARALLEL_FROM // 2  # every helper write had ended
            monkeypatch.undo()

    uvloop.run(run())
