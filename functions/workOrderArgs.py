"""Work order arguments: one row per (workOrderId, name)."""

from typing import Any

from reactive_store import mutation, v

from ._lib import order_for, set_arg, touch


@mutation(args={"workOrderId": v.id("work_orders"), "name": v.string(), "value": v.any()},
          returns=v.id("work_order_args"))
async def upsert(ctx: Any, workOrderId: str, name: str, value: Any) -> str:
    """Set argument `name` of a work order: insert it, or replace the value of the
    existing row with that name (there is one row per (workOrderId, name)). Moves the
    work order's updatedAt.

    Args: `workOrderId`, `name`, `value` (any value).

    Returns: the argument row's id (the same id when it already existed).

    Errors: `not_found` when the work order does not exist (nothing is written);
    `forbidden` when auth is configured and its session is not the caller's.
    """
    await order_for(ctx, workOrderId)
    arg_id = await set_arg(ctx, workOrderId, name, value)
    await touch(ctx, workOrderId)
    return arg_id
