"""Work orders: create (with args, target and links), move through the status machine,
list per session, and get one with everything attached."""

from reactive_store import ConvexError, mutation, query, v

from ._lib import (
    PAGINATION,
    check_session_read,
    list_or_page,
    order_for,
    session_for,
    touch_session,
)

NEXT = {
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
async def create(ctx, sessionId, workflowType, prompt, title, requestedBy, status="draft",
                 args=None, target=None, links=None):
    """Create a work order in a session, status `draft` (or `submitted`), optionally with
    its args, target and links in the same transaction. Returns its id.
    Errors: `not_found` when the session does not exist."""
    await session_for(ctx, sessionId)
    now = ctx.now()
    order_id = await ctx.db.insert("work_orders", {
        "sessionId": sessionId, "workflowType": workflowType, "prompt": prompt,
        "title": title, "status": status, "requestedBy": requestedBy,
        "createdAt": now, "updatedAt": now})
    for name, value in (args or {}).items():
        await ctx.db.insert("work_order_args", {"workOrderId": order_id, "name": name,
                                                "value": value})
    if target is not None:
        await ctx.db.insert("work_order_targets", {"workOrderId": order_id, **target})
    for link in links or []:
        await ctx.db.insert("work_order_links", {"workOrderId": order_id, **link})
    await touch_session(ctx, sessionId)
    return order_id


@mutation(args={"workOrderId": v.id("work_orders"), "status": STATUS})
async def updateStatus(ctx, workOrderId, status):
    """Move a work order along draft -> submitted -> accepted -> running ->
    succeeded | failed; any non-final status may go to canceled; finals are final.
    Returns the updated order. Errors: `not_found`; `illegal_transition` (nothing written)."""
    order = await order_for(ctx, workOrderId)
    current = order["status"]
    if status not in NEXT[current]:
        allowed = ", ".join(NEXT[current]) or "none: it is final"
        raise ConvexError({"code": "illegal_transition", "from": current, "to": status,
                           "message": f"cannot move a work order from {current} to "
                                      f"{status} (allowed: {allowed})"})
    await ctx.db.patch(workOrderId, {"status": status, "updatedAt": ctx.now()})
    await touch_session(ctx, order["sessionId"])
    return await ctx.db.get(workOrderId)


@query(args={"sessionId": v.id("chat_sessions"), "paginationOpts": PAGINATION})
async def listBySession(ctx, sessionId, paginationOpts=None):
    """A session's work orders by createdAt. Without `paginationOpts`: the newest 200,
    oldest first; with them: a page in ascending order."""
    await check_session_read(ctx, sessionId)
    q = ctx.db.query("work_orders").with_index(
        "by_session_created", lambda r: r.eq("sessionId", sessionId))
    return await list_or_page(q, paginationOpts)


@query(args={"workOrderId": v.id("work_orders")})
async def get(ctx, workOrderId):
    """The work order with `args` (name -> value), `target` (or None) and `links`.
    Errors: `not_found`."""
    order = await order_for(ctx, workOrderId)
    args = await ctx.db.query("work_order_args").with_index(
        "by_order_name", lambda r: r.eq("workOrderId", workOrderId)).collect()
    target = await ctx.db.query("work_order_targets").with_index(
        "by_order", lambda r: r.eq("workOrderId", workOrderId)).first()
    links = await ctx.db.query("work_order_links").with_index(
        "by_order_kind", lambda r: r.eq("workOrderId", workOrderId)).collect()
    return {**order, "args": {a["name"]: a["value"] for a in args}, "target": target,
            "links": links}
