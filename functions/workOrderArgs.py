"""Work order arguments: one row per (workOrderId, name)."""

from reactive_store import mutation, v

from ._lib import order_for


@mutation(args={"workOrderId": v.id("work_orders"), "name": v.string(), "value": v.any()},
          returns=v.id("work_order_args"))
async def upsert(ctx, workOrderId, name, value):
    """Set argument `name` of a work order (insert or replace). Returns the row's id.
    Errors: `not_found` when the work order does not exist."""
    await order_for(ctx, workOrderId)
    existing = await ctx.db.query("work_order_args").with_index(
        "by_order_name", lambda r: r.eq("workOrderId", workOrderId).eq("name", name)).unique()
    if existing is not None:
        await ctx.db.patch(existing["_id"], {"value": value})
        return existing["_id"]
    return await ctx.db.insert("work_order_args", {"workOrderId": workOrderId, "name": name,
                                                   "value": value})
