"""Drive the PyPI `convex` WebSocket `ConvexClient` for the end-to-end tests (run as a script).

    python pypi_sync_client.py URL < PLAN_JSON

PLAN_JSON is a list of steps run in order by ONE client object:
    {"op": "mutation" | "query" | "action", "path": ..., "args": {...}}
    {"op": "subscribe", "path": ..., "args": {...}, "until": <value>, "max": N}
`args` and `until` are Convex-encoded JSON. A subscribe step iterates `client.subscribe(...)`
with its blocking `next()` (which holds the GIL, hence a process of its own: protocol.md
§4.4), printing every value it yields, until one equals `until` or `max` values came.

Prints one JSON line per event on stdout, values as `convex_to_json`:
    {"event": "result", "step": i, "ok": true, "value": ...}
    {"event": "result", "step": i, "ok": false, "name": ..., "message": ..., "data"?: ...}
    {"event": "update", "step": i, "value": ...}
    {"event": "error", "step": i, "name": ..., "message": ..., "data"?: ...}   (ends the step)
    {"event": "done"}
"data" is present only for a ConvexError.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from convex import ConvexClient, ConvexError, convex_to_json, json_to_convex


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def decode(value: Any) -> Any:
    """Convex-encoded JSON -> the Python value the client takes (JSON numbers are float64)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).startswith("$"):
            return json_to_convex(value)
        return {k: decode(v) for k, v in value.items()}
    return value


def describe(exc: Exception) -> dict[str, Any]:
    out: dict[str, Any] = {"name": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, ConvexError):
        out["data"] = convex_to_json(exc.data)
    return out


def main() -> int:
    client = ConvexClient(sys.argv[1])
    for i, step in enumerate(json.load(sys.stdin)):
        args = decode(step.get("args", {}))
        if step["op"] == "subscribe":
            until, limit = step.get("until"), step.get("max", 1000)
            subscription = client.subscribe(step["path"], args)
            try:
                for count, value in enumerate(subscription, 1):
                    encoded = convex_to_json(value)
                    emit({"event": "update", "step": i, "value": encoded})
                    if encoded == until or count >= limit:
                        break
            except Exception as exc:
                emit({"event": "error", "step": i, **describe(exc)})
            subscription.unsubscribe()
            continue
        method = {"mutation": client.mutation, "query": client.query,
                  "action": client.action}[step["op"]]
        try:
            value = method(step["path"], args)
        except Exception as exc:
            emit({"event": "result", "step": i, "ok": False, **describe(exc)})
        else:
            emit({"event": "result", "step": i, "ok": True, "value": convex_to_json(value)})
    emit({"event": "done"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
