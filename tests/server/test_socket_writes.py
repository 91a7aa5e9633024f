"""Writes to many sockets: a shared frame is byte for byte what websockets would frame, a
socket with an extension frames its own, and held writes go out after the pass, in order."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from reactive_store.server.socket_writes import HeldWrites, SharedFrame, immediate_sender


class Transport:
    """Records what is written; `closing` as a transport reports it."""

    def __init__(self, written: list[tuple[str, bytes]], name: str = "t") -> None:
        self.written, self.name, self.closing = written, name, False

    def write(self, data: bytes) -> None:
        self.written.append((self.name, data))

    def is_closing(self) -> bool:
        return self.closing


class Protocol:
    """The attributes of uvicorn's sans-I/O WebSocket protocol that a send touches."""

    def __init__(self, transport: Transport, conn: ServerProtocol) -> None:
        self.transport, self.conn, self.close_sent = transport, conn, False


def open_conn(*extensions: Any) -> ServerProtocol:
    conn = ServerProtocol()
    conn.state = State.OPEN
    conn.extensions = list(extensions)
    return conn


def framed_by_websockets(text: str) -> bytes:
    conn = open_conn()
    conn.send_text(text.encode())
    return b"".join(conn.data_to_send())


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536, 200_000])
def test_a_shared_frame_is_what_websockets_would_write(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)
    assert SharedFrame().of(text) == framed_by_websockets(text)


def test_a_shared_frame_is_built_once_per_text() -> None:
    shared = SharedFrame()
    text = "{" + "a" * 100 + "}"
    first = shared.of(text)
    assert shared.of(text) is first
    other = shared.of(text + " ")
    assert other is not first and other == framed_by_websockets(text + " ")


def test_plain_sockets_write_the_shared_frame() -> None:
    written: list[tuple[str, bytes]] = []
    shared = SharedFrame()
    sends = [immediate_sender(Protocol(Transport(written, f"s{i}"), open_conn()), shared)
             for i in range(3)]
    text = '{"type":"Transition"}'
    for send in sends:
        assert send is not None and send(text)
    assert [name for name, _ in written] == ["s0", "s1", "s2"]
    assert {data for _, data in written} == {framed_by_websockets(text)}


def test_a_socket_with_compression_frames_its_own() -> None:
    written: list[tuple[str, bytes]] = []
    deflate = PerMessageDeflate(False, False, 15, 15)
    conn = open_conn(deflate)
    send = immediate_sender(Protocol(Transport(written), conn), SharedFrame())
    text = '{"type":"Transition","modifications":[]}' * 20
    assert send is not None and send(text)
    ((_, data),) = written
    assert data != framed_by_websockets(text)
    assert data[0] & 0x40, "RSV1: the payload is compressed"
    assert data[0] & 0x0F == Opcode.TEXT.value
    length, start = data[1] & 0x7F, 2
    if length == 126:
        length, start = int.from_bytes(data[2:4], "big"), 4
    payload = data[start:]
    assert len(payload) == length < len(text)
    inflated = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
    assert inflated.decode() == text


def test_output_already_queued_in_the_connection_goes_first() -> None:
    written: list[tuple[str, bytes]] = []
    conn = open_conn()
    conn.send_pong(b"p")  # queued by the protocol, not yet written
    send = immediate_sender(Protocol(Transport(written), conn), SharedFrame())
    assert send is not None and send("hi")
    ((_, data),) = written
    pong = Frame(Opcode.PONG, b"p").serialize(mask=False)
    assert data == pong + framed_by_websockets("hi")


def test_several_texts_go_in_one_write_in_order() -> None:
    written: list[tuple[str, bytes]] = []
    send = immediate_sender(Protocol(Transport(written), open_conn()), SharedFrame())
    assert send is not None and send("a", "b")
    assert written == [("t", framed_by_websockets("a") + framed_by_websockets("b"))]


def test_a_closing_socket_declines() -> None:
    written: list[tuple[str, bytes]] = []
    protocol = Protocol(Transport(written), open_conn())
    send = immediate_sender(protocol, SharedFrame())
    protocol.close_sent = True
    assert send is not None and not send("x")
    protocol.close_sent = False
    protocol.transport.closing = True
    assert not send("x")
    assert written == []


def test_an_unknown_protocol_gets_no_sender() -> None:
    assert immediate_sender(object()) is None


def test_held_writes_go_out_after_the_pass_in_order() -> None:
    written: list[tuple[str, bytes]] = []
    writes = HeldWrites()
    a, b = Transport(written, "a"), Transport(written, "b")
    writes.write(a, b"now")
    assert written == [("a", b"now")]
    with writes.holding():
        writes.write(a, b"1")
        writes.write(b, b"2")
        with writes.holding():  # a nested pass leaves the writing to the outer one
            writes.write(a, b"3")
        assert written == [("a", b"now")]
    assert written == [("a", b"now"), ("a", b"1"), ("b", b"2"), ("a", b"3")]


def test_held_writes_skip_a_socket_that_closed_and_survive_an_error() -> None:
    written: list[tuple[str, bytes]] = []
    writes = HeldWrites()
    a, b = Transport(written, "a"), Transport(written, "b")
    with pytest.raises(RuntimeError), writes.holding():
        writes.write(a, b"1")
        writes.write(b, b"2")
        b.closing = True
        raise RuntimeError("a watcher failed")
    assert written == [("a", b"1")]
    writes.write(a, b"after")  # not holding any more
    assert written[-1] == ("a", b"after")


def test_a_sender_given_held_writes_holds_during_a_pass() -> None:
    written: list[tuple[str, bytes]] = []
    writes = HeldWrites()
    send = immediate_sender(Protocol(Transport(written), open_conn()), SharedFrame(), writes)
    assert send is not None
    with writes.holding():
        assert send("x")
        assert written == []
    assert written == [("t", framed_by_websockets("x"))]


def test_a_fan_out_pass_writes_before_its_sessions_settle() -> None:
    """The endpoint's pass: the held writes go out first, then the sessions that took a
    shared step settle (that work is off the way to the sockets)."""
    from types import SimpleNamespace

    from reactive_store.server.sync_endpoint import SyncEndpoint

    events: list[str] = []

    class Session:
        def settle(self) -> None:
            events.append("settled")

    class Recording(Transport):
        def write(self, data: bytes) -> None:
            events.append("written")

    deployment = SimpleNamespace(subscriptions=SimpleNamespace(notify_scope=None))
    endpoint = SyncEndpoint(deployment)  # type: ignore[arg-type]
    assert deployment.subscriptions.notify_scope == endpoint._fan_out_pass
    with endpoint._fan_out_pass():
        endpoint.writes.write(Recording([]), b"frame")
        endpoint.encodings.settle_after_pass(Session())
        assert events == []
    assert events == ["written", "settled"]

