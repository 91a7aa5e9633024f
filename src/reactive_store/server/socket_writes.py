"""Writes to many WebSocket transports at once: a frame built once, writes held for a pass.

A commit watched by many sockets is written to all of them from the notification itself
(sync/connection.py), without a task per socket; these are the pieces that keep that pass
cheap. They speak to uvicorn's sans-I/O WebSocket protocol and its transport directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.protocol import State

from reactive_store.server.parallel_writes import Held, ParallelWrites, plain_fd


class SharedFrame:
    """The last text frame built, handed to the next socket that sends the same text: in a
    fan-out every socket sends one Transition text (sync/shared_encodings.py), framed once.

    Only for sockets with no extension: a server's frames are not masked, so without
    compression the bytes of a text frame depend on the text alone."""

    __slots__ = ("_frame", "_text")

    def __init__(self) -> None:
        self._text: str | None = None
        self._frame = b""

    def of(self, text: str) -> bytes:
        if text is not self._text:
            self._frame = Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
            self._text = text
        return self._frame


class HeldWrites:
    """Socket writes held during a fan-out's pass over its sockets, then made in tight
    loops: the Python work for every socket runs before any system call, not between them,
    and a large batch is written from several threads (server/parallel_writes.py)."""

    def __init__(self, parallel: ParallelWrites | None = None) -> None:
        self._held: list[Held] | None = None
        self.parallel = parallel or ParallelWrites(helpers=0)

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        if self._held is not None:  # a pass within a pass: the outer one writes
            yield
            return
        self._held = []
        try:
            yield
        finally:
            held, self._held = self._held, None
            self.parallel.write_all(held)

    def write(self, transport: Any, data: bytes, fd: int = -1) -> None:
        """Write `data` now, or at the end of the pass under way (in the order given);
        `fd` is the transport's own when it is a plain socket one (`plain_fd`), else -1."""
        if self._held is None:
            transport.write(data)
        else:
            self._held.append((transport, data, fd))


def immediate_sender(protocol: Any, shared: SharedFrame | None = None,
                     writes: HeldWrites | None = None) -> Callable[..., bool] | None:
    """A send that writes text frames to the socket now, without a task or an await, or
    None when the server's WebSocket protocol is not one this knows.

    uvicorn's sans-I/O protocol sends a text message by framing it with its websockets
    `conn` and writing the bytes to the transport, nothing more; this does the same, so a
    commit watched by many sockets is written to all of them in one pass instead of waking
    a task per socket. A single text on a plain socket takes its frame from `shared`. It
    declines (False) once the protocol has begun closing.
    """
    conn: Any = getattr(protocol, "conn", None)
    transport: Any = getattr(protocol, "transport", None)
    if not (hasattr(conn, "send_text") and hasattr(conn, "data_to_send")
            and hasattr(protocol, "close_sent") and transport is not None):
        return None
    write = (writes or HeldWrites()).write  # a HeldWrites never holding writes at once
    fd = plain_fd(transport)

    def send_now(*texts: str) -> bool:
        if protocol.close_sent or transport.is_closing():
            return False
        if (shared is not None and len(texts) == 1 and not conn.extensions
                and conn.state is State.OPEN and not conn.expect_continuation_frame):
            # What conn.send_text would write, without building it again for this socket.
            frame = shared.of(texts[0])
            pending = conn.data_to_send()
            write(transport, b"".join([*pending, frame]) if pending else frame, fd)
            return True
        for each in texts:
            conn.send_text(each.encode())
        write(transport, b"".join(conn.data_to_send()), fd)  # one write for all of them
        return True

    return send_now
