"""Work order links: GitHub issues, pull requests and commits."""

from typing import Any

from reactive_store import mutation, v

from ._lib import find_link, order_for, touch

KIND = v.union(v.literal("github_issue"), v.literal("pr"), v.literal("commit"))


@mutation(args={"workOrderId": v.id("work_orders"), "kind": KIND, "value": v.string()},
          returns=v.id("work_order_links"))
async def add(ctx: Any, workOrderId: str, kind: str, value: str) -> str:
    """Link a work order to a GitHub issue or pull request (URL) or a commit (SHA), and
    move the work order's updatedAt. Adding a link it already has changes nothing.

    Args: `workOrderId`, `kind` (`github_issue` | `pr` | `commit`), `value`.

    Returns: the link's id (the existing link's id for a duplicate).

    Errors: `not_found` when the work order does not exist (nothing is written);
    `forbidden` when auth is configured and its session is not the caller's.
    """
    await order_for(ctx, workOrderId)
    same = await find_link(ctx, workOrderId, kind, value)
    if same is not None:
        return str(same["_id"])
    link_id: str = await ctx.db.insert("work_order_links", {
        "workOrderId": workOrderId, "kind": kind, "value": value})
    await touch(ctx, workOrderId)
    return link_id
