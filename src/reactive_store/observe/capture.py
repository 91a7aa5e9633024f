"""Per-execution capture of `print()` and `logging` output, routed by a contextvar.

`sys.stdout` and `sys.stderr` are wrapped once by `_Routed` streams that look up the
`Capture` of the running execution in `CAPTURE`: an execution's task (and every task or
`asyncio.to_thread` call it starts, which copy its context) writes into its own capture,
so two concurrent functions never mix lines; code outside any execution writes to the real
stream as before. Logging is routed the same way: records logged on the root logger or on
an app's own loggers (`logging.getLogger(__name__)` in `functions/`) go to the capture and
nowhere else while an execution runs, at every level; other loggers (libraries, the server
itself) keep logging to the server's log.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from typing import IO, Any

from reactive_store.observe.lines import ERROR, LOG, LogLimits, LogLine, cut, level_of
from reactive_store.observe.lines import overflow_notice as overflow

CAPTURE: contextvars.ContextVar[Capture | None] = contextvars.ContextVar(
    "reactive_store_capture", default=None)

class Capture:
    """The log lines of one attempt of one execution, within its limits.

    Writes to a stream are buffered until a write ends with a newline (a `print()` call
    ends with one), so `print("a", "b")` is one line and `print("x\\ny")` one line holding
    a newline, as one `console.log` call is one line in Convex. `close()` ends the
    capture: a partial line is kept, and later writes (from a task the function left
    running) go to the real stream.
    """

    __slots__ = ("closed", "dropped", "limits", "lines", "overlong", "partial")

    def __init__(self, limits: LogLimits) -> None:
        self.limits = limits
        self.lines: list[LogLine] = []
        self.dropped = 0  # lines past the limit
        self.partial: dict[str, list[str]] = {}  # per level, text not yet ended by "\n"
        self.overlong: set[str] = set()  # levels whose current line was already emitted, cut
        self.closed = False

    def add(self, level: str, message: str) -> None:
        """Keep one line, or the overflow notice in the last slot, or count it dropped."""
        kept = len(self.lines)
        now = time.time() * 1000.0
        if kept < self.limits.lines - 1:
            text, truncated = cut(message, self.limits.line_bytes)
            self.lines.append(LogLine(level, text, now, truncated))
        elif kept == self.limits.lines - 1:
            self.lines.append(overflow(self.limits, now))
            self.dropped += 1
        else:
            self.dropped += 1

    def write(self, level: str, text: str) -> None:
        if not text:
            return
        pending = self.partial.setdefault(level, [])
        if text.endswith("\n"):  # a write that ends a line (print's end): emit it whole
            pending.append(text[:-1])
            line = "".join(pending)
            pending.clear()
            if line or level not in self.overlong:
                self.add(level, line)
            self.overlong.discard(level)
            return
        pending.append(text)
        if sum(map(len, pending)) > self.limits.line_bytes:
            self.add(level, "".join(pending))  # cut and marked by add()
            pending.clear()
            self.overlong.add(level)  # the newline that ends this line adds no empty one

    def close(self) -> None:
        for level, pending in self.partial.items():
            if pending:
                self.add(level, "".join(pending))
        self.partial.clear()
        self.closed = True

    def wire(self) -> list[str]:
        return [line.wire() for line in self.lines]


def active() -> Capture | None:
    """The capture of the execution running in this context, if any."""
    capture = CAPTURE.get()
    return None if capture is None or capture.closed else capture


class _Routed:
    """A process-wide stand-in for sys.stdout / sys.stderr that routes by context."""

    def __init__(self, real: IO[str], level: str) -> None:
        self.real = real
        self.level = level

    def write(self, text: str) -> int:
        capture = active()
        if capture is None:
            return self.real.write(text)
        capture.write(self.level, text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if active() is None:
            self.real.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def route_streams() -> None:
    """Wrap sys.stdout and sys.stderr (again when something replaced them since)."""
    if not isinstance(sys.stdout, _Routed):
        sys.stdout = _Routed(sys.stdout, LOG)
    if not isinstance(sys.stderr, _Routed):
        sys.stderr = _Routed(sys.stderr, ERROR)


def real_stdout() -> IO[str]:
    """The terminal's stdout, whatever execution is running (for printing logs)."""
    stream = sys.stdout
    return stream.real if isinstance(stream, _Routed) else stream


_FORMAT = logging.Formatter("%(message)s")


def _message(record: logging.LogRecord) -> str:
    return _FORMAT.format(record)  # the message, plus the traceback of log.exception()


class _RootRouter(logging.Filter):
    """On the root logger: a record logged on it while an execution runs is captured and
    goes no further."""

    def filter(self, record: logging.LogRecord) -> bool:
        capture = active()
        if capture is None:
            return True
        capture.add(level_of(record.levelno), _message(record))
        return False


class _AppLogs(logging.Handler):
    """On an app's package logger (which does not propagate): while an execution runs its
    records are captured at every level; otherwise they go to the root logger's handlers
    when the root's level lets them through, as if they had propagated."""

    def emit(self, record: logging.LogRecord) -> None:
        capture = active()
        if capture is not None:
            capture.add(level_of(record.levelno), _message(record))
            return
        root = logging.getLogger()
        if record.levelno >= root.getEffectiveLevel():
            root.handle(record)


_installed = False


def route_logging() -> None:
    """Install the routing on the root logger (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    root = logging.getLogger()
    root.addFilter(_RootRouter())  # a filter, not a handler: basicConfig() still works
    enabled = root.isEnabledFor

    def enabled_or_capturing(level: int) -> bool:
        # `logging.info(...)` inside a function must be captured even when the server's
        # log level would drop it; only calls on the root logger itself come through here.
        return active() is not None or enabled(level)

    root.isEnabledFor = enabled_or_capturing  # type: ignore[method-assign]


def route_app_logs(package: str) -> None:
    """Capture the loggers of an app's modules (`<package>.functions.<module>`)."""
    logger = logging.getLogger(package)
    if not any(isinstance(handler, _AppLogs) for handler in logger.handlers):
        logger.addHandler(_AppLogs())
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
