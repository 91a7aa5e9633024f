"""A fan-out's socket writes made from several threads at once, each lane a run of syscalls.

Writing one frame to 1,000 loopback sockets costs about 10 us of system time a socket, and a
send releases the GIL: the event loop's thread writes one lane while helper threads write the
others, and the loop waits for them before it runs anything else. Only plain socket
transports with nothing queued are written directly (by their file descriptor); what a socket
does not take at once goes through the transport afterwards, so each socket's bytes stay in
order.
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

# Below this many writes, handing a lane to a thread costs more than it saves.
PARALLEL_FROM = 64
MAX_HELPERS = 3
# The transports whose file descriptor carries exactly the bytes given to `write`: uvloop's
# TCP transport and asyncio's selector socket transport (TCP or Unix). A TLS transport is
# another class on both loops.
PLAIN_TRANSPORTS = frozenset({"TCPTransport", "_SelectorSocketTransport"})
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")

Held = tuple[Any, bytes, int]  # (transport, data, the transport's fd or -1)
Rest = tuple[Any, bytes]  # (transport, bytes still to write through it)


def plain_fd(transport: Any) -> int:
    """The socket's file descriptor when `transport` is a plain socket one, else -1."""
    if type(transport).__name__ not in PLAIN_TRANSPORTS:
        return -1
    sock = transport.get_extra_info("socket")
    return int(sock.fileno()) if sock is not None else -1


def usable_cores() -> int:
    """The cores this process may run on: its affinity mask, capped by a cgroup CPU quota
    (a container limited to 2 CPUs on a 64-core host)."""
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count() or 1)
    quota = cgroup_cores()
    return min(cores, quota) if quota is not None else cores


def cgroup_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int | None:
    """The cores a cgroup v2 quota allows (`cpu.max`: "quota period", rounded up), or None
    when there is no quota or no such file."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


@functools.cache
def helper_pool() -> ThreadPoolExecutor:
    """The process's helper threads, shared by every `ParallelWrites` (started on use)."""
    return ThreadPoolExecutor(MAX_HELPERS, thread_name_prefix="socket-writes")


def write_lane(lane: list[Held]) -> list[Rest]:
    """Write each (transport, data, fd) straight to its fd; return what must still go
    through the transport: the unsent tail of a short write, and every later write to that
    socket (it must follow the tail)."""
    rest: list[Rest] = []
    behind: set[int] = set()
    for transport, data, fd in lane:
        if fd in behind:
            rest.append((transport, data))
            continue
        try:
            sent = os.write(fd, data)
        except OSError:  # full (EAGAIN) or broken: the transport meets it on its own write
            sent = 0
        if sent < len(data):
            behind.add(fd)
            rest.append((transport, data[sent:]))
    return rest


class ParallelWrites:
    """Makes a batch of held writes, from the loop's thread and `helpers` more threads."""

    def __init__(self, helpers: int | None = None) -> None:
        if helpers is None:
            helpers = usable_cores() - 1
        self.helpers = min(max(helpers, 0), MAX_HELPERS)

    def write_all(self, held: list[Held]) -> None:
        """Write every held (transport, data, fd) whose transport is still open; the writes
        to one transport go out in the order given."""
        if self.helpers == 0 or len(held) < PARALLEL_FROM:
            for transport, data, _ in held:
                if not transport.is_closing():
                    transport.write(data)
            return
        lanes, queued = self._deal(held)
        # Invariant: no other code runs on the loop's thread until every lane is written, so
        # no transport is written or closed (its fd reused) while a lane holds its fd; hence
        # the wait for every helper even when this thread's lane fails.
        futures: list[Future[list[Rest]]] = []
        rest: list[Rest] = []
        try:
            for lane in lanes[1:]:
                if not lane:
                    continue
                try:
                    futures.append(helper_pool().submit(write_lane, lane))
                except RuntimeError:  # the interpreter is shutting its threads down
                    rest += write_lane(lane)
            rest += write_lane(lanes[0])
        finally:
            wait(futures)
        for future in futures:
            rest += future.result()
        for transport, data in rest + queued:
            transport.write(data)

    def _deal(self, held: list[Held]) -> tuple[list[list[Held]], list[Rest]]:
        """The lanes of the writes that may go straight to their sockets, and the writes
        that must go through their transports (no fd, or bytes already queued there)."""
        lanes: list[list[Held]] = [[] for _ in range(self.helpers + 1)]
        queued: list[Rest] = []
        lane_of: dict[int, int] = {}  # by socket, dealt in turn: one socket's writes, one lane
        for item in held:
            transport, data, fd = item
            if transport.is_closing():
                continue
            if fd < 0 or transport.get_write_buffer_size():
                queued.append((transport, data))
            else:
                lanes[lane_of.setdefault(fd, len(lane_of) % len(lanes))].append(item)
        return lanes, queued
