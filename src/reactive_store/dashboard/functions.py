"""The Functions page's system functions: the catalog, per-function figures, and running.

`run` calls any function of the app (public or internal) with arguments given as readable
JSON, optionally as an identity (what `Authorization: Convex <key>:<identity>` does). It
answers with the outcome instead of raising, so the page shows the result or the error
together with the function's log lines and how long it took; the call is recorded in the
logs like any other, with the caller "Dashboard".
"""

from __future__ import annotations

import time
from typing import Any

from reactive_store.app.catalog import type_text
from reactive_store.app.registry import (
    FunctionSpec,
    Visibility,
    internal_action,
    internal_mutation,
    internal_query,
)
from reactive_store.dashboard.readable import parse_object, to_text
from reactive_store.deployment import Deployment
from reactive_store.errors import ConvexError, ReactiveStoreError
from reactive_store.failures import error_message
from reactive_store.observe.observer import lines_of, source
from reactive_store.validators import v


def describe(spec: FunctionSpec) -> dict[str, Any]:
    entry = spec.describe()
    module, _, name = (spec.path or "").partition(":")
    return {**entry, "module": module, "name": name,
            "argsType": type_text(entry["args"]), "returnsType": type_text(entry["returns"]),
            "internal": spec.visibility is Visibility.INTERNAL}


PLACEHOLDERS: dict[str, Any] = {"string": "", "number": 0.0, "bigint": 0, "boolean": False,
                                "null": None, "array": [], "record": {}, "any": None, "id": ""}


def placeholder(validator: dict[str, Any] | None) -> Any:
    """A value to start typing from: a literal's value, a union's first member, ..."""
    kind = (validator or {}).get("type")
    if validator is None or kind is None:
        return None
    if kind == "literal":
        return validator["value"]
    if kind == "union":
        return placeholder(validator["value"][0]) if validator["value"] else None
    if kind == "object":
        return {name: placeholder(spec["fieldType"]) for name, spec in
                validator["value"].items() if not spec.get("optional")}
    return PLACEHOLDERS.get(kind)


def skeleton(validator: dict[str, Any] | None) -> str:
    """Arguments to start editing from: every required field with a placeholder value."""
    value = placeholder(validator)
    return to_text(value if isinstance(value, dict) else {})


def _outcome(started: float, ok: bool, **fields: Any) -> dict[str, Any]:
    return {"ok": ok, "durationMs": round((time.perf_counter() - started) * 1000.0, 2),
            **fields}


def functions(deployment: Deployment) -> dict[str, FunctionSpec]:
    @internal_query(args={})
    async def catalog(ctx: Any) -> list[dict[str, Any]]:
        """Every function of the app, public and internal, with its types and docstring."""
        specs = sorted(deployment.engine.app.functions, key=lambda s: s.path or "")
        return [{**describe(spec), "skeleton": skeleton(spec.describe()["args"])}
                for spec in specs]

    @internal_query(args={})
    async def figures(ctx: Any) -> list[dict[str, Any]]:
        """Calls, errors, p50/p95/p99 and recent durations of every function that ran."""
        return [f.to_json() for _, f in sorted(deployment.metrics.functions.items())]

    @internal_action(args={"path": v.string(), "args": v.string(),
                           "identity": v.optional(v.union(v.string(), v.null()))})
    async def run(ctx: Any, path: str, args: str, identity: str | None = None
                  ) -> dict[str, Any]:
        """Run one function as the admin (or as `identity`); report what happened."""
        started = time.perf_counter()
        try:
            parsed = parse_object(args, "the arguments object")
            acting = parse_object(identity, "the identity") if identity and \
                identity.strip() else None
        except ConvexError as exc:
            return _outcome(started, False, error=exc.message, logLines=[], input=True)
        with source("Dashboard", admin=True):
            try:
                outcome = await deployment.engine.run(path, parsed, acting, internal_ok=True)
            except Exception as exc:
                data = exc.data if isinstance(exc, ConvexError) else None
                return _outcome(started, False, error=error_message(exc),
                                errorData=None if data is None else to_text(data),
                                logLines=lines_of(exc), input=False)
        return _outcome(started, True, value=to_text(outcome.value),
                        logLines=outcome.log_lines)

    @internal_mutation(args={"path": v.string(), "args": v.string(),
                             "delaySeconds": v.float64()})
    async def schedule(ctx: Any, path: str, args: str, delaySeconds: float) -> str:
        """Schedule a mutation or action to run later (it shows on the Schedules page)."""
        if delaySeconds < 0:
            raise ConvexError("the delay must be zero or more seconds")
        parsed = parse_object(args, "the arguments object")
        try:
            job_id: str = await ctx.scheduler.run_after(delaySeconds, path, parsed)
        except ReactiveStoreError as exc:
            raise ConvexError(exc.message) from None
        return job_id

    return {"catalog": catalog, "figures": figures, "run": run, "schedule": schedule}
