"""Orchestrations (keyed by their external orchestrationId), their turns and worker PRs."""

from reactive_store import ConvexError, mutation, query, v


async def _find(ctx, orchestrationId):
    return await ctx.db.query("orchestrations").with_index(
        "by_orchestration_id", lambda r: r.eq("orchestrationId", orchestrationId)).unique()


async def _require(ctx, orchestrationId):
    found = await _find(ctx, orchestrationId)
    if found is None:
        raise ConvexError({"code": "not_found", "what": "orchestration",
                           "id": orchestrationId,
                           "message": f"orchestration {orchestrationId} does not exist"})
    return found


@mutation(args={"orchestrationId": v.string(), "topic": v.string(), "repoUrl": v.string(),
                "status": v.string()}, returns=v.id("orchestrations"))
async def upsert(ctx, orchestrationId, topic, repoUrl, status):
    """Create or update the orchestration with this external id. Returns its document id."""
    now = ctx.now()
    fields = {"topic": topic, "repoUrl": repoUrl, "status": status, "updatedAt": now}
    existing = await _find(ctx, orchestrationId)
    if existing is not None:
        await ctx.db.patch(existing["_id"], fields)
        return existing["_id"]
    return await ctx.db.insert("orchestrations", {"orchestrationId": orchestrationId,
                                                  "createdAt": now, **fields})


@mutation(args={"orchestrationId": v.string(), "index": v.float64(), "threadId": v.string(),
                "finalResponse": v.optional(v.string()), "items": v.optional(v.any()),
                "usage": v.optional(v.any())}, returns=v.id("turns"))
async def appendTurn(ctx, orchestrationId, index, threadId, finalResponse=None, items=None,
                     usage=None):
    """Record turn `index` of an orchestration; a turn with the same index is replaced.
    Returns the turn's id. Errors: `not_found` when the orchestration does not exist."""
    orchestration = await _require(ctx, orchestrationId)
    doc = {"orchestrationId": orchestrationId, "index": index, "threadId": threadId}
    for name, value in (("finalResponse", finalResponse), ("items", items), ("usage", usage)):
        if value is not None:
            doc[name] = value
    existing = await ctx.db.query("turns").with_index(
        "by_orchestration_index",
        lambda r: r.eq("orchestrationId", orchestrationId).eq("index", index)).unique()
    await ctx.db.patch(orchestration["_id"], {"updatedAt": ctx.now()})
    if existing is not None:
        await ctx.db.replace(existing["_id"], {**doc, "createdAt": existing["createdAt"]})
        return existing["_id"]
    return await ctx.db.insert("turns", {**doc, "createdAt": ctx.now()})


@mutation(args={"orchestrationId": v.string(), "prUrl": v.string(), "branch": v.string(),
                "commitSha": v.string(), "notes": v.optional(v.string())},
          returns=v.id("worker_prs"))
async def recordWorkerPr(ctx, orchestrationId, prUrl, branch, commitSha, notes=None):
    """Record a pull request a worker opened for an orchestration. Returns its id.
    Errors: `not_found` when the orchestration does not exist."""
    orchestration = await _require(ctx, orchestrationId)
    doc = {"orchestrationId": orchestrationId, "prUrl": prUrl, "branch": branch,
           "commitSha": commitSha, "createdAt": ctx.now()}
    if notes is not None:
        doc["notes"] = notes
    await ctx.db.patch(orchestration["_id"], {"updatedAt": ctx.now()})
    return await ctx.db.insert("worker_prs", doc)


@query(args={"orchestrationId": v.string()})
async def getState(ctx, orchestrationId):
    """The orchestration with its `turns` (by index) and `workerPrs` (oldest first), or
    None when there is no orchestration with this id."""
    orchestration = await _find(ctx, orchestrationId)
    if orchestration is None:
        return None
    turns = await ctx.db.query("turns").with_index(
        "by_orchestration_index", lambda r: r.eq("orchestrationId", orchestrationId)).collect()
    prs = await ctx.db.query("worker_prs").with_index(
        "by_orchestration_created",
        lambda r: r.eq("orchestrationId", orchestrationId)).collect()
    return {**orchestration, "turns": turns, "workerPrs": prs}
