"""Work orders: create complete ones, the status machine, lists per session, get one, and
similar ones by embedding."""

from typing import Any

from reactive_store import ConvexError, mutation, query, v

from ._embedding import DIMENSIONS, embed
from ._lib import (
    PAGINATION,
    Doc,
    add_link,
    check_session_read,
    list_or_page,
    order_for,
    session_for,
    set_arg,
    set_target,
    touch,
)

# The status machine: each status and the statuses it may move to (web/board.js mirrors it).
NEXT: dict[str, tuple[str, ...]] = {
    "draft": ("submitted", "canceled"),
    "submitted": ("accepted", "canceled"),
    "accepted": ("running", "canceled"),
    "running": ("succeeded", "failed", "canceled"),
    "succeeded": (),
    "failed": (),
    "canceled": (),
}
STATUS = v.union(*(v.literal(s) for s in NEXT))
LINK = v.object({"kind": v.union(v.literal("github_issue"), v.literal("pr"),
                                 v.literal("commit")), "value": v.string()})
TARGET = v.object({"targetRepo": v.string(), "targetBranch": v.string()})


@mutation(args={"sessionId": v.id("chat_sessions"), "workflowType": v.string(),
                "prompt": v.string(), "title": v.string(), "requestedBy": v.string(),
                "status": v.optional(v.union(v.literal("draft"), v.literal("submitted"))),
                "args": v.optional(v.record(v.string(), v.any())),
                "target": v.optional(TARGET), "links": v.optional(v.array(LINK))},
          returns=v.id("work_orders"))
async def create(ctx: Any, sessionId: str, workflowType: str, prompt: str, title: str,
                 requestedBy: str, status: str = "draft", args: Doc | None = None,
                 target: Doc | None = None, links: list[Doc] | None = None) -> str:
    """Create a complete work order in one transaction, and move the session's updatedAt.

    Args: `sessionId`, `workflowType`, `prompt`, `title`, `requestedBy`; optional
    `status` (`draft`, the default, or `submitted`), `args` (object name -> any value: one
    work_order_args row each), `target` (`{targetRepo, targetBranch}`) and `links`
    (list of `{kind: github_issue | pr | commit, value}`; duplicates are stored once).

    The order's `embedding` is computed from its title and prompt (functions/_embedding.py,
    a stand-in for a model; `setEmbedding` replaces it).

    Returns: the new work order's id.

    Errors: `not_found` when the session does not exist (nothing is written);
    `forbidden` when auth is configured and the session is not the caller's.
    """
    await session_for(ctx, sessionId)
    now = ctx.now()
    doc: Doc = {"sessionId": sessionId, "workflowType": workflowType, "prompt": prompt,
                "title": title, "status": status, "requestedBy": requestedBy,
                "createdAt": now, "updatedAt": now}
    vector = embed(f"{title} {prompt}")
    if vector is not None:
        doc["embedding"] = vector
    order_id: str = await ctx.db.insert("work_orders", doc)
    for name, value in (args or {}).items():
        await set_arg(ctx, order_id, name, value)
    if target is not None:
        await set_target(ctx, order_id, target["targetRepo"], target["targetBranch"])
    for link in links or []:
        await add_link(ctx, order_id, link["kind"], link["value"])
    await touch(ctx, sessionId)
    return order_id


@mutation(args={"workOrderId": v.id("work_orders"), "status": STATUS})
async def updateStatus(ctx: Any, workOrderId: str, status: str) -> Doc:
    """Move a work order to `status` and its (and its session's) updatedAt to now.

    The status machine: draft -> submitted -> accepted -> running -> succeeded | failed;
    any non-final status (draft, submitted, accepted, running) may go to canceled;
    succeeded, failed and canceled are final. Staying in the same status is not a move.

    Args: `workOrderId`, `status`.

    Returns: the updated work order document.

    Errors: `not_found` when the work order does not exist; `illegal_transition` (data
    `{code, from, to, allowed, message}`) for any other move. Nothing is written on error.
    """
    order = await order_for(ctx, workOrderId)
    current = order["status"]
    if status not in NEXT[current]:
        allowed = ", ".join(NEXT[current]) or "none: it is final"
        raise ConvexError({"code": "illegal_transition", "from": current, "to": status,
                           "allowed": [*NEXT[current]],
                           "message": f"cannot move a work order from {current} to "
                                      f"{status} (allowed: {allowed})"})
    await ctx.db.patch(workOrderId, {"status": status, "updatedAt": ctx.now()})
    await touch(ctx, order["sessionId"])
    updated: Doc = await ctx.db.get(workOrderId)
    return updated


@query(args={"sessionId": v.id("chat_sessions"), "paginationOpts": PAGINATION})
async def listBySession(ctx: Any, sessionId: str, paginationOpts: Doc | None = None) -> Any:
    """A session's work orders, oldest first (by createdAt).

    Args: `sessionId`, `paginationOpts` (optional `{numItems, cursor}`).

    Returns: without `paginationOpts`, a list of the newest 200 orders, oldest first;
    with it, a page `{page, isDone, continueCursor, splitCursor, pageStatus}` in
    ascending order. A session that does not exist has no orders (an empty list).

    Errors: `forbidden` when auth is configured and the session is not the caller's.
    """
    await check_session_read(ctx, sessionId)
    q = ctx.db.query("work_orders").with_index(
        "by_session_created", lambda r: r.eq("sessionId", sessionId))
    return await list_or_page(q, paginationOpts)


@query(args={"workOrderId": v.id("work_orders")})
async def get(ctx: Any, workOrderId: str) -> Doc:
    """One work order with everything attached.

    Args: `workOrderId`.

    Returns: the work order document plus `args` (object name -> value), `target`
    (the `{targetRepo, targetBranch, ...}` row, or null) and `links` (rows grouped by
    kind, each kind oldest first).

    Errors: `not_found` when the work order does not exist; `forbidden` when auth is
    configured and its session is not the caller's.
    """
    order = await order_for(ctx, workOrderId)
    args = await ctx.db.query("work_order_args").with_index(
        "by_order_name", lambda r: r.eq("workOrderId", workOrderId)).collect()
    target = await ctx.db.query("work_order_targets").with_index(
        "by_order", lambda r: r.eq("workOrderId", workOrderId)).first()
    links = await ctx.db.query("work_order_links").with_index(
        "by_order_kind", lambda r: r.eq("workOrderId", workOrderId)).collect()
    return {**order, "args": {a["name"]: a["value"] for a in args}, "target": target,
            "links": links}


SIMILAR_LIMIT = 5
SIMILAR_SESSIONS = 50  # the owner's most recently updated sessions that are searched


@mutation(args={"workOrderId": v.id("work_orders"), "embedding": v.array(v.float64())})
async def setEmbedding(ctx: Any, workOrderId: str, embedding: list[float]) -> None:
    """Store a work order's embedding (from a real model, say), replacing the computed one.

    Args: `workOrderId`, `embedding` (64 numbers, not all zero).

    Errors: `not_found` when the work order does not exist; a validation error naming the
    expected length when `embedding` does not have 64 numbers.
    """
    await order_for(ctx, workOrderId)
    await ctx.db.patch(workOrderId, {"embedding": embedding})


@query(args={"workOrderId": v.id("work_orders"), "limit": v.optional(v.float64())})
async def similar(ctx: Any, workOrderId: str, limit: float | None = None) -> list[Doc]:
    """Work orders most similar to this one (cosine similarity of their embeddings), from
    the sessions of the same user; live: the list updates when an order in those sessions
    is added or its embedding changes.

    Args: `workOrderId`, `limit` (optional, default 5, at most 50).

    Returns: a list of `{workOrder, score}` (the order document without its embedding,
    and a similarity from -1 to 1), most similar first, the order itself left out; empty
    when the order has no embedding.

    Errors: `not_found` when the work order does not exist; `forbidden` when auth is
    configured and its session is not the caller's.
    """
    order = await order_for(ctx, workOrderId)
    vector = order.get("embedding")
    session = await ctx.db.get(order["sessionId"])
    if vector is None or session is None or len(vector) != DIMENSIONS:
        return []
    sessions = await ctx.db.query("chat_sessions").with_index(
        "by_user_updated", lambda r: r.eq("userId", session["userId"])
    ).order("desc").take(SIMILAR_SESSIONS)
    n = max(1, min(int(limit or SIMILAR_LIMIT), 50))
    hits = await ctx.vector_search("work_orders", "by_embedding", {
        "vector": vector, "limit": n + 1,
        "filter": lambda q: q.or_(*(q.eq("sessionId", s["_id"]) for s in sessions))})
    out: list[Doc] = []
    for hit in hits:
        other = await ctx.db.get(hit["_id"])
        if other is not None and other["_id"] != workOrderId and len(out) < n:
            other.pop("embedding", None)
            out.append({"workOrder": other, "score": hit["_score"]})
    return out
