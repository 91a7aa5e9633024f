"""A function's log lines: levels, Convex's per-execution limits, and their wire formats.

Clients receive a line as the string `"[LEVEL] message"`, with `" (truncated due to
length)"` appended when the message was cut, exactly as Convex sends log lines to the
official clients (the npm client parses the bracketed level and prints
`[CONVEX Q(path)] [LEVEL] message`). Log tools receive the structured form Convex's
`/api/stream_function_logs` uses: `{messages, level, timestamp, isTruncated}`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

# Convex's levels: print() is LOG; the logging module maps onto the other four.
DEBUG, INFO, LOG, WARN, ERROR = "DEBUG", "INFO", "LOG", "WARN", "ERROR"
LEVELS = (DEBUG, INFO, LOG, WARN, ERROR)

TRUNCATED_SUFFIX = " (truncated due to length)"


@dataclass(frozen=True)
class LogLimits:
    """Convex's limits on what one execution may log.

    `lines` counts the overflow notice: after `lines - 1` lines the next one becomes
    "Log overflow (maximum N). Remaining log lines omitted." and the rest are dropped.
    `line_bytes` caps one line's message in UTF-8 bytes; a longer one is cut (on a
    character boundary) and marked truncated. So one execution logs at most
    `lines * line_bytes` bytes (8 MiB with the defaults).
    """

    lines: int = 256
    line_bytes: int = 32_768

    def __post_init__(self) -> None:
        if self.lines < 1 or self.line_bytes < 1:
            raise ValueError(f"log limits must be positive, got {self}")


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line: its level, message, when it was logged (ms since the epoch), and whether
    the message was cut to the line limit."""

    level: str
    message: str
    timestamp: float
    truncated: bool = False

    def wire(self) -> str:
        """The string clients receive in `logLines`."""
        text = f"[{self.level}] {self.message}"
        return text + TRUNCATED_SUFFIX if self.truncated else text

    def to_json(self) -> dict[str, Any]:
        """The structured form of Convex's log API (`LogLineJson`)."""
        return {"messages": [self.message], "level": self.level,
                "timestamp": int(self.timestamp), "isTruncated": self.truncated}


def overflow_notice(limits: LogLimits, timestamp: float) -> LogLine:
    """The line that takes the last slot once an execution logged too much (as Convex)."""
    return LogLine(ERROR, f"Log overflow (maximum {limits.lines}). Remaining log lines "
                          "omitted.", timestamp)


def cut(message: str, limit_bytes: int) -> tuple[str, bool]:
    """`message` within `limit_bytes` UTF-8 bytes, cut on a character boundary; and whether
    it had to be cut."""
    if len(message) * 4 <= limit_bytes:
        return message, False  # even 4-byte characters throughout fit
    raw = message.encode("utf-8", errors="surrogatepass")
    if len(raw) <= limit_bytes:
        return message, False
    return raw[:limit_bytes].decode("utf-8", errors="ignore"), True


def level_of(levelno: int) -> str:
    """A `logging` level number as a Convex level."""
    if levelno >= logging.ERROR:
        return ERROR
    if levelno >= logging.WARNING:
        return WARN
    if levelno >= logging.INFO:
        return INFO
    return DEBUG


def parse_wire(text: str) -> tuple[str, str]:
    """`"[LEVEL] message"` -> (level, message), as the official clients read it."""
    if text.startswith("["):
        end = text.find("] ")
        if end > 1:
            return text[1:end], text[end + 2:]
    return LOG, text
