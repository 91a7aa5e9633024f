"""Work order targets: exactly one row per work order."""

from reactive_store import mutation, v

from ._lib import order_for


@mutation(args={"workOrderId": v.id("work_orders"), "targetRepo": v.string(),
                "targetBranch": v.string()}, returns=v.id("work_order_targets"))
async def upsert(ctx, workOrderId, targetRepo, targetBranch):
    """Set the work order's target repository and branch. Returns the row's id.
    Errors: `not_found` when the work order does not exist."""
    await order_for(ctx, workOrderId)
    existing = await ctx.db.query("work_order_targets").with_index(
        "by_order", lambda r: r.eq("workOrderId", workOrderId)).unique()
    fields = {"targetRepo": targetRepo, "targetBranch": targetBranch}
    if existing is not None:
        await ctx.db.patch(existing["_id"], fields)
        return existing["_id"]
    return await ctx.db.insert("work_order_targets", {"workOrderId": workOrderId, **fields})
