"""Chat sessions: create, list by activity, get."""

from reactive_store import mutation, query, v

from ._lib import PAGINATION, must_get


@mutation(args={"userId": v.string(), "title": v.string()}, returns=v.id("chat_sessions"))
async def create(ctx, userId, title):
    """Create a session for `userId`. Returns its id."""
    now = ctx.now()
    return await ctx.db.insert("chat_sessions", {"userId": userId, "title": title,
                                                 "createdAt": now, "updatedAt": now})


@query(args={"userId": v.optional(v.string()), "paginationOpts": PAGINATION})
async def list(ctx, userId=None, paginationOpts=None):
    """Sessions, most recently active first; only `userId`'s when given.

    Without `paginationOpts`: at most 200 sessions. With them: a page
    (`{page, isDone, continueCursor}`)."""
    q = ctx.db.query("chat_sessions")
    if userId is None:
        q = q.with_index("by_updated")
    else:
        q = q.with_index("by_user_updated", lambda r: r.eq("userId", userId))
    q = q.order("desc")
    if paginationOpts is None:
        return await q.take(200)
    return await q.paginate(paginationOpts)


@query(args={"sessionId": v.id("chat_sessions")})
async def get(ctx, sessionId):
    """The session, or a `not_found` error."""
    return await must_get(ctx, sessionId, "chat session")
