"""Executions as terminal text, the way `convex dev` and `convex logs` print them.

    11/30/2026, 9:05:03 AM [CONVEX M(chatMessages:append)] [LOG] appended 3 messages
    11/30/2026, 9:05:04 AM [CONVEX M(workOrders:updateStatus)] Uncaught ValueError: ...
    11/30/2026, 9:05:04 AM [CONVEX Q(chatMessages:list)] Function executed in 3 ms

Input is the JSON form of an execution (`Execution.to_json()`), so the dev server and
`reactive-store logs` (which reads it from the server) print the same lines.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from reactive_store.observe.capture import real_stdout
from reactive_store.observe.records import Execution

CYAN, RED, GREEN, DIM, RESET = "\033[36m", "\033[31m", "\033[32m", "\033[2m", "\033[0m"


@dataclass(frozen=True)
class Show:
    """What to print: successful and failed executions, a completion line for each
    success (`convex logs --success`), and whether to color the text."""

    successes: bool = True
    failures: bool = True
    completions: bool = False
    color: bool = False

    def paint(self, color: str, text: str) -> str:
        return f"{color}{text}{RESET}" if self.color else text


def local_time(ms: float) -> str:
    """`11/30/2026, 9:05:03 AM`, as Node's `toLocaleString()` prints it in en-US."""
    t = datetime.fromtimestamp(ms / 1000.0)
    hour = t.hour % 12 or 12
    return (f"{t.month}/{t.day}/{t.year}, {hour}:{t.minute:02d}:{t.second:02d} "
            f"{'AM' if t.hour < 12 else 'PM'}")


def prefix(entry: dict[str, Any], ms: float) -> str:
    letter = str(entry.get("udfType") or "?")[:1]
    return f"{local_time(ms)} [CONVEX {letter}({entry.get('identifier')})]"


def format_entry(entry: dict[str, Any], show: Show = Show()) -> list[str]:
    """The lines to print for one execution (none when `show` leaves it out)."""
    failed = bool(entry.get("error"))
    if (failed and not show.failures) or (not failed and not show.successes):
        return []
    finished = float(entry.get("timestamp") or 0.0) * 1000.0
    out = []
    for line in entry.get("logLines") or []:
        if isinstance(line, str):
            out.append(f"{show.paint(CYAN, prefix(entry, finished))} {line}")
            continue
        text = " ".join(str(m) for m in line.get("messages", []))
        if line.get("isTruncated"):
            text += " (truncated due to length)"
        head = f"{prefix(entry, float(line.get('timestamp') or finished))} [{line.get('level')}]"
        out.append(f"{show.paint(CYAN, head)} {text}")
    if entry.get("droppedLogLines"):
        out.append(show.paint(DIM, f"{prefix(entry, finished)} ({entry['droppedLogLines']} "
                                   "more log lines were dropped)"))
    if failed:
        out.append(show.paint(RED, f"{prefix(entry, finished)} {entry['error']}"))
        if entry.get("traceback"):
            out += [show.paint(DIM, "    " + row) for row in str(entry["traceback"]).split("\n")]
    elif show.completions:
        ms = math.ceil(float(entry.get("executionTime") or 0.0) * 1000.0)
        out.append(show.paint(GREEN, f"{prefix(entry, finished)} Function executed in {ms} ms"))
    return out


def printer(show: Show, jsonl: bool = False) -> Callable[[Execution], None]:
    """A log listener that prints each execution on the terminal's stdout, as text or as
    one JSON object per line (for log shippers), whatever execution is running."""

    def print_execution(ex: Execution) -> None:
        entry = ex.to_json()
        if jsonl:
            if (ex.ok and show.successes) or (not ex.ok and show.failures):
                text = orjson.dumps(entry).decode() + "\n"
            else:
                text = ""
        else:
            lines = format_entry(entry, show)
            text = "".join(line + "\n" for line in lines)
        if text:
            stream = real_stdout()
            stream.write(text)
            stream.flush()

    return print_execution
