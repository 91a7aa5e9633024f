"""The observer: the one object the engine calls around every execution and every attempt.

`execution(path, kind, identity)` brackets one call (with all its retries): on the way out
it records an `Execution` in the ring and the metrics, and puts the log lines where the
caller finds them (`Running.wire_lines()` on success; `lines_of(exc)` on the exception it
raised). `attempt(usage)` brackets one run of the function body: it starts a fresh capture,
so lines of an attempt that conflicted and ran again are not kept (as in Convex).
Where a call came from is read from `SOURCE`, a contextvar the transports set.
"""

from __future__ import annotations

import itertools
import os
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reactive_store.errors import ConvexError, FunctionNotFound, ReactiveStoreError
from reactive_store.failures import error_message
from reactive_store.limits import Usage
from reactive_store.observe.capture import CAPTURE, Capture, route_logging, route_streams
from reactive_store.observe.lines import LogLimits
from reactive_store.observe.records import Execution, ExecutionLog

SYSTEM_PREFIX = "_system/"  # the dashboard's own functions: never recorded
LINES_ATTRIBUTE = "reactive_store_log_lines"  # set on an exception an execution raised
PACKAGE_DIR = str(Path(__file__).resolve().parents[1])
NESTED_CALLERS = {"action": "Action", "httpAction": "HttpEndpoint"}  # ctx.run_* inside them


@dataclass(frozen=True)
class Source:
    """Where calls come from (set by the transport) and whether the caller is the admin."""

    caller: str = "Unknown"
    admin: bool = False


UNKNOWN = Source()
SOURCE: ContextVar[Source] = ContextVar("reactive_store_source", default=UNKNOWN)


@contextmanager
def source(caller: str, admin: bool = False) -> Iterator[None]:
    """Attribute the executions started in this block to `caller`."""
    token = SOURCE.set(Source(caller, admin))
    try:
        yield
    finally:
        SOURCE.reset(token)


@dataclass(frozen=True)
class ObserveSettings:
    """Whether executions are captured and recorded, and the bounds of what is kept."""

    enabled: bool = True
    limits: LogLimits = field(default_factory=LogLimits)
    records: int = 10_000  # executions kept in memory per process
    record_bytes: int = 32 * 1024 * 1024  # their log text, at most


@dataclass(slots=True)
class Running:
    """An execution in progress: what is known of it so far."""

    path: str | None
    kind: str
    identity: str | None
    caller: str
    parent: str | None
    id: str = ""
    started: float = 0.0
    clock: float = 0.0
    capture: Capture | None = None
    usage: Usage | None = None
    retries: int = 0
    lines: list[str] = field(default_factory=list)

    def wire_lines(self) -> list[str]:
        """The lines to send to the caller (set once the execution has finished)."""
        return self.lines


RUNNING: ContextVar[Running | None] = ContextVar("reactive_store_running", default=None)


def lines_of(exc: BaseException) -> list[str]:
    """The log lines of the execution that raised `exc` (empty when none were captured)."""
    lines: list[str] = getattr(exc, LINES_ATTRIBUTE, [])
    return lines


def describe_identity(identity: dict[str, Any] | None, admin: bool) -> str | None:
    subject = None if identity is None else identity.get("subject") or identity.get(
        "tokenIdentifier")
    if admin:
        return "admin" if subject is None else f"admin as {subject}"
    return None if subject is None else str(subject)


def app_traceback(exc: BaseException) -> str | None:
    """The frames of the app's own code that led to `exc` (for the logs, never clients)."""
    if isinstance(exc, ConvexError | ReactiveStoreError):
        return None
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(PACKAGE_DIR)]
    if not frames:
        return None
    return "".join(traceback.format_list(frames)).rstrip() + f"\n{type(exc).__name__}: {exc}"


class ExecutionScope:
    """`with observer.execution(...) as run:` (a class, not a generator: it runs per call).

    A `deferred` scope records nothing on exit: `record()` does, once the caller knows the
    execution counts (a scheduled mutation run in a batch: when the batch commits)."""

    __slots__ = ("deferred", "error", "observer", "run", "token")

    def __init__(self, observer: Observer, run: Running, deferred: bool = False) -> None:
        self.observer = observer
        self.run = run
        self.token: Token[Running | None] | None = None
        self.deferred = deferred
        self.error: BaseException | None = None

    def __enter__(self) -> Running:
        run = self.run
        if run.id:
            run.started = time.time() * 1000.0
            run.clock = time.perf_counter()
            self.token = RUNNING.set(run)
        return run

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: Any) -> None:
        if self.token is None:
            return
        RUNNING.reset(self.token)
        if self.deferred:
            self.error = exc
        else:
            self.observer.finish(self.run, exc)
        if exc is not None:
            with suppress(AttributeError, TypeError):  # an exception class with __slots__
                setattr(exc, LINES_ATTRIBUTE, self.run.lines)

    def record(self) -> None:
        """Record a deferred execution that has ended (once; nothing if it never began)."""
        if self.deferred and self.token is not None:
            self.deferred = False
            self.observer.finish(self.run, self.error)


class AttemptScope:
    """`with observer.attempt(usage):` around one run of a function body."""

    __slots__ = ("capture", "limits", "token", "usage")

    def __init__(self, limits: LogLimits, usage: Usage | None) -> None:
        self.limits = limits
        self.usage = usage
        self.capture: Capture | None = None
        self.token: Token[Capture | None] | None = None

    def __enter__(self) -> None:
        run = RUNNING.get()
        if run is None or not run.id:
            return
        route_streams()
        capture = self.capture = run.capture = Capture(self.limits)
        run.usage = self.usage
        self.token = CAPTURE.set(capture)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: Any) -> None:
        if self.capture is not None and self.token is not None:
            self.capture.close()
            CAPTURE.reset(self.token)


class Observer:
    """Captures and records every execution of one deployment (or does nothing, when off)."""

    def __init__(self, settings: ObserveSettings | None = None,
                 record: Callable[[Execution], None] | None = None) -> None:
        self.settings = settings or ObserveSettings()
        self.enabled = self.settings.enabled
        self.log = ExecutionLog(self.settings.records, self.settings.record_bytes)
        self._record = record  # metrics, called for every execution
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid():x}-{int(time.time()):x}"
        if self.enabled:
            route_logging()

    def on_execution(self, record: Callable[[Execution], None]) -> None:
        self._record = record

    def execution(self, path: str | None, kind: str, identity: dict[str, Any] | None,
                  deferred: bool = False) -> ExecutionScope:
        """Bracket one call; see the module docstring. `path` None: not known to exist."""
        src = SOURCE.get()
        parent = RUNNING.get()
        caller = src.caller if parent is None else NESTED_CALLERS.get(parent.kind, src.caller)
        run = Running(path, kind, describe_identity(identity, src.admin), caller,
                      None if parent is None else parent.id)
        if self.enabled and not (path is not None and path.startswith(SYSTEM_PREFIX)):
            run.id = f"{self._prefix}-{next(self._ids)}"
        return ExecutionScope(self, run, deferred)

    def attempt(self, usage: Usage | None) -> AttemptScope:
        """Bracket one run of a function body: its own capture, its own figures."""
        return AttemptScope(self.settings.limits, usage)

    def finish(self, run: Running, exc: BaseException | None) -> None:
        """Record a finished execution (called by `ExecutionScope`)."""
        capture = run.capture
        if run.path is None or not run.id or isinstance(exc, FunctionNotFound):
            return  # no such function: nothing ran, nothing to record
        if run.path.startswith(SYSTEM_PREFIX) or (capture is None and exc is None):
            return  # the dashboard's own call; or a replay, or a job another process ran
        lines = [] if capture is None else capture.lines
        run.lines = [line.wire() for line in lines]
        usage = run.usage
        ex = Execution(
            run.id, run.path, run.kind, run.caller, run.identity, run.started,
            (time.perf_counter() - run.clock) * 1000.0, exc is None,
            None if exc is None else error_message(exc),
            None if exc is None else app_traceback(exc), run.retries, lines,
            0 if capture is None else capture.dropped, parent=run.parent,
            finished=time.time() * 1000.0)
        if usage is not None:
            ex.documents_read, ex.bytes_read = usage.documents_scanned, usage.bytes_read
            ex.documents_written, ex.bytes_written = usage.documents_written, usage.bytes_written
        self.log.append(ex)
        if self._record is not None:
            self._record(ex)
