"""The Logs page's system functions: recent executions by filter, and one in full.

They read this process's execution ring, not the database, so no commit re-runs them:
`LiveRefresh` (live.py) re-runs them when an execution is recorded, at most every
REFRESH_SECONDS. The list carries a summary per execution (the first line, counts); the
detail query carries every line, the error with its traceback, and the figures.
"""

from __future__ import annotations

from typing import Any

from reactive_store.app.registry import FunctionSpec, internal_query
from reactive_store.deployment import Deployment
from reactive_store.errors import ConvexError
from reactive_store.observe.lines import LEVELS
from reactive_store.observe.records import Execution, Filter
from reactive_store.validators import v

MAX_ROWS = 500


def summary(ex: Execution) -> dict[str, Any]:
    first = ex.lines[0] if ex.lines else None
    levels = sorted({line.level for line in ex.lines}, key=LEVELS.index)
    return {
        "id": ex.id, "path": ex.path, "kind": ex.kind, "ok": ex.ok, "error": ex.error,
        "caller": ex.caller, "identity": ex.identity, "started": ex.started,
        "finished": ex.finished, "durationMs": round(ex.duration_ms, 3),
        "retries": ex.retries, "lineCount": len(ex.lines) + ex.dropped_lines,
        "levels": levels, "firstLine": None if first is None else {
            "level": first.level, "message": first.message[:300]},
    }


def detail(ex: Execution) -> dict[str, Any]:
    return {**summary(ex), "traceback": ex.traceback, "parent": ex.parent,
            "lines": [{"level": line.level, "message": line.message,
                       "timestamp": line.timestamp, "truncated": line.truncated}
                      for line in ex.lines],
            "droppedLines": ex.dropped_lines,
            "documentsRead": ex.documents_read, "bytesRead": ex.bytes_read,
            "documentsWritten": ex.documents_written, "bytesWritten": ex.bytes_written}


def _filter(function: str | None, outcome: str | None, level: str | None,
            text: str | None) -> Filter:
    if outcome not in (None, "", "success", "failure"):
        raise ConvexError(f"outcome must be success or failure, not {outcome!r}")
    if level not in (None, "", *LEVELS):
        raise ConvexError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    return Filter(function or None, outcome or None, level or None, (text or "").strip() or None)


def functions(deployment: Deployment) -> dict[str, FunctionSpec]:
    log = deployment.observer.log

    @internal_query(args={"function": v.optional(v.string()), "outcome": v.optional(v.string()),
                          "level": v.optional(v.string()), "text": v.optional(v.string()),
                          "limit": v.optional(v.float64())})
    async def recent(ctx: Any, function: str | None = None, outcome: str | None = None,
                     level: str | None = None, text: str | None = None,
                     limit: float | None = None) -> dict[str, Any]:
        """The newest executions that match, newest first, and how many the ring holds."""
        keep = _filter(function, outcome, level, text)
        rows = log.newest(keep, max(1, min(int(limit or 200), MAX_ROWS)))
        return {"executions": [summary(ex) for ex in rows], "kept": len(log),
                "recorded": log.total, "enabled": deployment.observer.enabled}

    @internal_query(args={"id": v.string()})
    async def execution(ctx: Any, id: str) -> dict[str, Any] | None:
        """One execution with all its lines and figures (None once the ring dropped it)."""
        ex = log.find(id)
        return None if ex is None else detail(ex)

    return {"recent": recent, "execution": execution}
