"""Finished executions, kept in a bounded ring per process, and the waiters for new ones.

The ring holds at most `max_records` executions and `max_bytes` of their log text (the
oldest go first), so a chatty or busy server cannot grow it without bound. Every execution
gets a completion time strictly after the previous one's, in milliseconds since the epoch:
that time is the cursor of Convex's log API (`/api/stream_function_logs?cursor=`), so a
reader that asks for what came after the last entry it saw misses nothing and sees
nothing twice (while the ring still holds it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from reactive_store.observe.lines import LogLine

UDF_TYPES = {"query": "Query", "mutation": "Mutation", "action": "Action",
             "httpAction": "HttpAction"}
RECORD_OVERHEAD_BYTES = 400  # the fixed fields of one record, roughly


@dataclass(slots=True)
class Execution:
    """One finished call of a function (all its conflict retries included).

    `caller` says where the call came from (HttpApi, SyncWorker, Scheduler, Cron, Action,
    HttpEndpoint, Dashboard, CLI); `identity` who made it (a token's subject, "admin", or
    None for an anonymous caller). `error` is the message the caller was told; `traceback`
    the failing frames of the app's own code, for the logs only. Figures are the final
    attempt's documents and bytes read and written.
    """

    id: str
    path: str
    kind: str
    caller: str
    identity: str | None
    started: float  # ms since the epoch
    duration_ms: float
    ok: bool
    error: str | None = None
    traceback: str | None = None
    retries: int = 0
    lines: list[LogLine] = field(default_factory=list)
    dropped_lines: int = 0
    documents_read: int = 0
    bytes_read: int = 0
    documents_written: int = 0
    bytes_written: int = 0
    parent: str | None = None
    finished: float = 0.0  # ms since the epoch; unique and increasing within a process

    @property
    def outcome(self) -> str:
        return "success" if self.ok else "failure"

    def pack(self) -> Packed:
        """The record as a tuple of plain values, which the garbage collector stops tracking:
        thousands of kept records then cost the collector's full passes nothing."""
        lines = tuple((ln.level, ln.message, ln.timestamp, ln.truncated) for ln in self.lines)
        return (self.id, self.path, self.kind, self.caller, self.identity, self.started,
                self.duration_ms, self.ok, self.error, self.traceback, self.retries, lines,
                self.dropped_lines, self.documents_read, self.bytes_read,
                self.documents_written, self.bytes_written, self.parent, self.finished)

    @classmethod
    def unpack(cls, packed: Packed) -> Execution:
        values = dict(zip(FIELDS, packed, strict=True))
        values["lines"] = [LogLine(*line) for line in values["lines"]]
        return cls(**values)

    def size(self) -> int:
        """Roughly what this record costs to keep, in bytes."""
        size = RECORD_OVERHEAD_BYTES
        for line in self.lines:
            size += len(line.message)
        if self.error is not None:
            size += len(self.error) + len(self.traceback or "")
        return size

    def to_json(self) -> dict[str, Any]:
        """Convex's `FunctionExecutionJson` (what `convex logs` reads), plus our fields."""
        return {
            "kind": "Completion",
            "udfType": UDF_TYPES.get(self.kind, self.kind),
            "identifier": self.path,
            "logLines": [line.to_json() for line in self.lines],
            "timestamp": self.finished / 1000.0,
            "executionTimestamp": self.started / 1000.0,
            "executionTime": self.duration_ms / 1000.0,
            "cachedResult": False,
            "caller": self.caller,
            "identity": self.identity,
            "identityType": "admin" if self.identity == "admin" else (
                "user" if self.identity else "anonymous"),
            "parentExecutionId": self.parent,
            "success": None,
            "error": self.error,
            "traceback": self.traceback,
            "requestId": self.id,
            "executionId": self.id,
            "usageStats": {
                "databaseReadDocuments": self.documents_read,
                "databaseReadBytes": self.bytes_read,
                "databaseWriteDocuments": self.documents_written,
                "databaseWriteBytes": self.bytes_written,
            },
            "occInfo": {"retryCount": self.retries} if self.retries else None,
            "droppedLogLines": self.dropped_lines,
            "willRetry": False,
            "environment": "python",
        }


Packed = tuple[Any, ...]
FIELDS = tuple(f.name for f in fields(Execution))  # the order of `pack`


@dataclass(frozen=True)
class Filter:
    """Which executions a reader wants: by function (a path, or a module ending in ':'),
    outcome ("success" / "failure"), lowest log level present, and text in the path, the
    error or any line (case-insensitive)."""

    function: str | None = None
    outcome: str | None = None
    level: str | None = None
    text: str | None = None

    def matches(self, ex: Execution) -> bool:
        if self.function and not (ex.path == self.function or (
                self.function.endswith(":") and ex.path.startswith(self.function))):
            return False
        if self.outcome and ex.outcome != self.outcome:
            return False
        if self.level and not any(line.level == self.level for line in ex.lines):
            return False
        if self.text:
            needle = self.text.lower()
            haystack = [ex.path, ex.error or "", *(line.message for line in ex.lines)]
            if not any(needle in item.lower() for item in haystack):
                return False
        return True


class ExecutionLog:
    """The ring of recent executions of this process, newest last.

    Entries are `(finished, size, packed record)`: plain tuples, so keeping 10,000 of them
    adds nothing to the garbage collector's work (records kept as objects measurably slowed
    every allocation-heavy call: a full collection walks every tracked object).
    """

    def __init__(self, max_records: int = 10_000, max_bytes: int = 32 * 1024 * 1024) -> None:
        if max_records < 1 or max_bytes < 1:
            raise ValueError("the execution log needs room for at least one record")
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.bytes = 0
        self.total = 0  # executions ever recorded in this process
        self._ring: deque[tuple[float, int, Packed]] = deque()
        self._waiters: set[asyncio.Future[None]] = set()
        self._listeners: tuple[Callable[[Execution], None], ...] = ()

    def __len__(self) -> int:
        return len(self._ring)

    def __iter__(self) -> Iterator[Execution]:
        return (Execution.unpack(packed) for _, _, packed in self._ring)

    def append(self, ex: Execution) -> None:
        """Keep `ex` (stamping its completion time), evict what no longer fits, tell
        listeners and wake waiters."""
        last = self._ring[-1][0] if self._ring else 0.0
        if ex.finished <= last:
            ex.finished = last + 0.001  # one microsecond later: cursors stay exact
        size = ex.size()
        self._ring.append((ex.finished, size, ex.pack()))
        self.bytes += size
        self.total += 1
        while len(self._ring) > self.max_records or (
                self.bytes > self.max_bytes and len(self._ring) > 1):
            _, gone, _ = self._ring.popleft()
            self.bytes -= gone
        for listener in self._listeners:
            listener(ex)
        if self._waiters:
            waiters, self._waiters = self._waiters, set()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def listen(self, listener: Callable[[Execution], None]) -> Callable[[], None]:
        """Call `listener(ex)` for every new execution; returns the way to stop."""
        self._listeners = (*self._listeners, listener)  # a new tuple: append() loops safely

        def stop() -> None:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

        return stop

    def after(self, cursor_ms: float, keep: Filter | None = None, limit: int = 1000
              ) -> list[Execution]:
        """Executions finished after `cursor_ms`, oldest first: the `limit` oldest of them,
        so a reader that continues from the last one it got misses none."""
        found: list[Execution] = []
        for finished, _, packed in reversed(self._ring):
            if finished <= cursor_ms:
                break
            ex = Execution.unpack(packed)
            if keep is None or keep.matches(ex):
                found.append(ex)
        found.reverse()
        return found[:limit]

    def newest(self, keep: Filter | None = None, limit: int = 100) -> list[Execution]:
        """The newest executions that match, newest first."""
        return list(_take(
            (ex for ex in map(Execution.unpack, (p for _, _, p in reversed(self._ring)))
             if keep is None or keep.matches(ex)), limit))

    def find(self, execution_id: str) -> Execution | None:
        for _, _, packed in reversed(self._ring):
            if packed[0] == execution_id:  # FIELDS[0] is "id"
                return Execution.unpack(packed)
        return None

    @property
    def cursor(self) -> float:
        """The completion time of the newest execution (0 when there is none)."""
        return self._ring[-1][0] if self._ring else 0.0

    async def wait(self, cursor_ms: float, timeout: float) -> None:
        """Return once something finished after `cursor_ms`, or after `timeout` seconds."""
        if self.cursor > cursor_ms:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await waiter
        finally:
            self._waiters.discard(waiter)


def _take(items: Iterable[Execution], limit: int) -> Iterator[Execution]:
    for n, item in enumerate(items):
        if n >= limit:
            return
        yield item
