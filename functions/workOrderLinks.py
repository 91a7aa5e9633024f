"""Work order links: GitHub issues, pull requests and commits."""

from reactive_store import mutation, v

from ._lib import order_for

KIND = v.union(v.literal("github_issue"), v.literal("pr"), v.literal("commit"))


@mutation(args={"workOrderId": v.id("work_orders"), "kind": KIND, "value": v.string()},
          returns=v.id("work_order_links"))
async def add(ctx, workOrderId, kind, value):
    """Link a work order to an issue, PR (URL) or commit (SHA); adding the same link twice
    returns the existing one. Errors: `not_found` when the work order does not exist."""
    await order_for(ctx, workOrderId)
    same = await ctx.db.query("work_order_links").with_index(
        "by_order_kind", lambda r: r.eq("workOrderId", workOrderId).eq("kind", kind)
    ).filter(lambda link: link["value"] == value).first()
    if same is not None:
        return same["_id"]
    return await ctx.db.insert("work_order_links", {"workOrderId": workOrderId, "kind": kind,
                                                    "value": value})
