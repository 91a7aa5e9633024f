"""Work order targets: exactly one row per work order."""

from typing import Any

from reactive_store import mutation, v

from ._lib import order_for, set_target, touch


@mutation(args={"workOrderId": v.id("work_orders"), "targetRepo": v.string(),
                "targetBranch": v.string()}, returns=v.id("work_order_targets"))
async def upsert(ctx: Any, workOrderId: str, targetRepo: str, targetBranch: str) -> str:
    """Set the repository and branch a work order targets: insert its target row, or
    replace both fields of the existing one. Moves the work order's updatedAt.

    Args: `workOrderId`, `targetRepo` (e.g. `org/repo` or a URL), `targetBranch`.

    Returns: the target row's id (the same id when it already existed).

    Errors: `not_found` when the work order does not exist (nothing is written);
    `forbidden` when auth is configured and its session is not the caller's.
    """
    await order_for(ctx, workOrderId)
    target_id = await set_target(ctx, workOrderId, targetRepo, targetBranch)
    await touch(ctx, workOrderId)
    return target_id
