"""Orchestrations (keyed by their external orchestrationId), their turns and worker PRs."""

import math
from typing import Any

from reactive_store import ConvexError, mutation, query, v

from ._lib import Doc, not_found, touch


async def _find(ctx: Any, orchestrationId: str) -> Doc | None:
    found: Doc | None = await ctx.db.query("orchestrations").with_index(
        "by_orchestration_id", lambda r: r.eq("orchestrationId", orchestrationId)).unique()
    return found


async def _require(ctx: Any, orchestrationId: str) -> Doc:
    found = await _find(ctx, orchestrationId)
    if found is None:
        raise not_found("orchestration", orchestrationId)
    return found


@mutation(args={"orchestrationId": v.string(), "topic": v.string(), "repoUrl": v.string(),
                "status": v.string()}, returns=v.id("orchestrations"))
async def upsert(ctx: Any, orchestrationId: str, topic: str, repoUrl: str, status: str) -> str:
    """Create the orchestration with this external id, or update its topic, repoUrl and
    status (there is at most one per orchestrationId). updatedAt moves either way;
    createdAt is kept on update.

    Args: `orchestrationId` (the orchestrator's own key), `topic`, `repoUrl`, `status`
    (free text, as the orchestrator reports it).

    Returns: the orchestration's document id (the same id on every upsert).

    Errors: none beyond argument validation.
    """
    now = ctx.now()
    fields = {"topic": topic, "repoUrl": repoUrl, "status": status, "updatedAt": now}
    existing = await _find(ctx, orchestrationId)
    if existing is not None:
        await ctx.db.patch(existing["_id"], fields)
        return str(existing["_id"])
    created: str = await ctx.db.insert("orchestrations", {
        "orchestrationId": orchestrationId, "createdAt": now, **fields})
    return created


@mutation(args={"orchestrationId": v.string(), "index": v.float64(), "threadId": v.string(),
                "finalResponse": v.optional(v.string()), "items": v.optional(v.any()),
                "usage": v.optional(v.any())}, returns=v.id("turns"))
async def appendTurn(ctx: Any, orchestrationId: str, index: float, threadId: str,
                     finalResponse: str | None = None, items: Any = None,
                     usage: Any = None) -> str:
    """Record turn `index` of an orchestration: insert it, or replace the turn with the
    same index (one turn per (orchestrationId, index); a replaced turn keeps its createdAt
    and loses optional fields the new call leaves out). Moves the orchestration's
    updatedAt.

    Args: `orchestrationId`, `index` (a whole number >= 0), `threadId`; optional
    `finalResponse` (absent while the turn is still running), `items` and `usage` (any
    values, as the agent reports them).

    Returns: the turn's id (the same id when the index already existed).

    Errors: `not_found` when the orchestration does not exist; `invalid_argument` when
    `index` is not a whole number >= 0. Nothing is written on error.
    """
    if not (math.isfinite(index) and index >= 0 and index.is_integer()):
        raise ConvexError({"code": "invalid_argument", "field": "index",
                           "message": f"turn index must be a whole number >= 0, got {index}"})
    orchestration = await _require(ctx, orchestrationId)
    doc: Doc = {"orchestrationId": orchestrationId, "index": index, "threadId": threadId}
    for name, value in (("finalResponse", finalResponse), ("items", items), ("usage", usage)):
        if value is not None:
            doc[name] = value
    existing = await ctx.db.query("turns").with_index(
        "by_orchestration_index",
        lambda r: r.eq("orchestrationId", orchestrationId).eq("index", index)).unique()
    await touch(ctx, orchestration["_id"])
    if existing is not None:
        await ctx.db.replace(existing["_id"], {**doc, "createdAt": existing["createdAt"]})
        return str(existing["_id"])
    turn_id: str = await ctx.db.insert("turns", {**doc, "createdAt": ctx.now()})
    return turn_id


@mutation(args={"orchestrationId": v.string(), "prUrl": v.string(), "branch": v.string(),
                "commitSha": v.string(), "notes": v.optional(v.string())},
          returns=v.id("worker_prs"))
async def recordWorkerPr(ctx: Any, orchestrationId: str, prUrl: str, branch: str,
                         commitSha: str, notes: str | None = None) -> str:
    """Record a pull request a worker opened for an orchestration (each call adds one
    row), and move the orchestration's updatedAt.

    Args: `orchestrationId`, `prUrl`, `branch`, `commitSha`, `notes` (optional).

    Returns: the new worker PR row's id.

    Errors: `not_found` when the orchestration does not exist (nothing is written).
    """
    orchestration = await _require(ctx, orchestrationId)
    doc: Doc = {"orchestrationId": orchestrationId, "prUrl": prUrl, "branch": branch,
                "commitSha": commitSha, "createdAt": ctx.now()}
    if notes is not None:
        doc["notes"] = notes
    await touch(ctx, orchestration["_id"])
    pr_id: str = await ctx.db.insert("worker_prs", doc)
    return pr_id


@query(args={"orchestrationId": v.string()})
async def getState(ctx: Any, orchestrationId: str) -> Doc | None:
    """An orchestration with everything recorded for it.

    Args: `orchestrationId` (the external key).

    Returns: the orchestration document plus `turns` (in index order) and `workerPrs`
    (oldest first); null (None) when there is no orchestration with this id.

    Errors: none (a missing orchestration is null, not an error).
    """
    orchestration = await _find(ctx, orchestrationId)
    if orchestration is None:
        return None
    turns = await ctx.db.query("turns").with_index(
        "by_orchestration_index", lambda r: r.eq("orchestrationId", orchestrationId)).collect()
    prs = await ctx.db.query("worker_prs").with_index(
        "by_orchestration_created",
        lambda r: r.eq("orchestrationId", orchestrationId)).collect()
    return {**orchestration, "turns": turns, "workerPrs": prs}
