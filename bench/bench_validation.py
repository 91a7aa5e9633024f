"""Argument validation per call (issue 18): the `v.*` form and the annotation form (type
hints, TypedDicts, a pydantic model) next to hand-written `isinstance` checks of the same
arguments, in the same run. No database: this is the CPU a call spends before its handler.

    BENCH_SMOKE=1 ../.venv/bin/python bench_validation.py     # a short run (CI)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, TypedDict

from common import SMOKE
from pydantic import BaseModel

from reactive_store import Id, mutation, v
from reactive_store.app.registry import FunctionSpec
from reactive_store.ids import TABLE_NAMES, new_id, table_of

SESSIONS = 7
ROLE = v.union(v.literal("user"), v.literal("assistant"), v.literal("system"))
SessionId = Id["chat_sessions"]


# -- one chat message: scalars, an id, a literal union, an optional any -------------------------

@mutation(args={"sessionId": v.id("chat_sessions"), "role": ROLE, "content": v.string(),
                "metadata": v.optional(v.any())})
async def append_v(ctx: Any, sessionId: str, role: str, content: str, metadata: Any = None
                   ) -> None:
    pass


@mutation
async def append_typed(ctx: Any, sessionId: SessionId, role: Literal["user", "assistant", "system"],
                       content: str, metadata: Any = None) -> None:
    pass


def append_by_hand(args: Any) -> dict[str, Any]:
    if not isinstance(args, dict) or set(args) - {"sessionId", "role", "content", "metadata"}:
        raise ValueError("args")
    session = args["sessionId"]
    if not isinstance(session, str) or table_of(session) != "chat_sessions":
        raise ValueError("sessionId")
    if args["role"] not in ("user", "assistant", "system") or not isinstance(args["role"], str):
        raise ValueError("role")
    if not isinstance(args["content"], str):
        raise ValueError("content")
    return dict(args)


# -- an order: a list of TypedDicts and a pydantic model (built as an instance) -----------------

class Attachment(TypedDict):
    name: str
    size: int


class NewOrder(BaseModel):
    title: str
    priority: Literal["low", "high"] = "low"
    estimate: float = 0.0


ORDER = v.object({"title": v.string(),
                  "priority": v.optional(v.union(v.literal("low"), v.literal("high"))),
                  "estimate": v.optional(v.float64())})


@mutation(args={"sessionId": v.id("chat_sessions"), "content": v.string(),
                "attachments": v.optional(v.array(v.object({"name": v.string(),
                                                            "size": v.int64()}))),
                "order": v.optional(v.union(ORDER, v.null()))})
async def order_v(ctx: Any, sessionId: str, content: str, attachments: Any = None,
                  order: Any = None) -> None:
    pass


@mutation
async def order_typed(ctx: Any, sessionId: SessionId, content: str,
                      attachments: list[Attachment] | None = None,
                      order: NewOrder | None = None) -> None:
    pass


def order_by_hand(args: Any, build: bool) -> dict[str, Any]:
    if not isinstance(args, dict) or set(args) - {"sessionId", "content", "attachments", "order"}:
        raise ValueError("args")
    session = args["sessionId"]
    if not isinstance(session, str) or table_of(session) != "chat_sessions":
        raise ValueError("sessionId")
    if not isinstance(args["content"], str):
        raise ValueError("content")
    for item in args.get("attachments") or ():
        if (not isinstance(item, dict) or set(item) != {"name", "size"}
                or not isinstance(item["name"], str) or type(item["size"]) is not int):
            raise ValueError("attachments")
    order = args.get("order")
    if order is not None:
        if (not isinstance(order, dict) or not isinstance(order.get("title"), str)
                or order.get("priority", "low") not in ("low", "high")):
            raise ValueError("order")
        estimate = order.get("estimate", 0.0)
        if not isinstance(estimate, int | float) or isinstance(estimate, bool):
            raise ValueError("order.estimate")
        order = {**order, "estimate": float(estimate)}
        if build:
            order = NewOrder(**order)
    return {**args, "order": order}


def validate(spec: FunctionSpec) -> Callable[[Any], Any]:
    """What the engine does with a call's arguments before the handler runs."""
    return lambda args: spec.arguments(spec.args.validate(args))


def per_call(fn: Callable[[Any], Any], args: Any) -> float:
    """Seconds per call: the best of 5 timed runs."""
    fn(args)  # warm up, and fail loudly if the arguments are refused
    n = 2_000 if SMOKE else 50_000
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn(args)
        best = min(best, (time.perf_counter() - start) / n)
    return best


def line(name: str, seconds: float, baseline: float) -> None:
    print(f"  {name:<44} {seconds * 1e6:7.2f} us/call  {1 / seconds:>10,.0f} calls/s  "
          f"ratio {baseline / seconds:.2f}x")


def main() -> None:
    token = TABLE_NAMES.set({SESSIONS: "chat_sessions"})
    session = new_id(SESSIONS)
    message = {"sessionId": session, "role": "user", "content": "hello there",
               "metadata": {"tool": "search", "tokens": 12}}
    order = {"sessionId": session, "content": "ship it",
             "attachments": [{"name": f"file{i}.txt", "size": 1000 + i} for i in range(5)],
             "order": {"title": "Release", "priority": "high", "estimate": 3}}
    try:
        print("argument validation per call (baseline: hand-written isinstance checks)")
        base = per_call(append_by_hand, message)
        print("chat message (id, literal union, string, optional any):")
        line("hand-written isinstance", base, base)
        line("v.* validators", per_call(validate(append_v), message), base)
        line("type hints", per_call(validate(append_typed), message), base)
        base = per_call(lambda a: order_by_hand(a, False), order)
        built = per_call(lambda a: order_by_hand(a, True), order)
        print("order (5 TypedDict attachments, one object / pydantic model):")
        line("hand-written isinstance", base, base)
        line("hand-written isinstance + NewOrder(**order)", built, base)
        line("v.* validators", per_call(validate(order_v), order), base)
        line("type hints (TypedDict, pydantic instance)", per_call(validate(order_typed), order),
             base)
    finally:
        TABLE_NAMES.reset(token)


if __name__ == "__main__":
    main()
