"""Chat sessions: create, list by activity, get."""

from reactive_store import mutation, query, require_user, v

from ._lib import AUTH_REQUIRED, PAGINATION, check_user, session_for


@mutation(args={"userId": v.string(), "title": v.string()}, returns=v.id("chat_sessions"))
async def create(ctx, userId, title):
    """Create a session for `userId`. Returns its id. With auth configured, `userId` must
    be the caller's subject."""
    await check_user(ctx, userId)
    now = ctx.now()
    return await ctx.db.insert("chat_sessions", {"userId": userId, "title": title,
                                                 "createdAt": now, "updatedAt": now})


@query(args={"userId": v.optional(v.string()), "paginationOpts": PAGINATION})
async def list(ctx, userId=None, paginationOpts=None):
    """Sessions, most recently active first; only `userId`'s when given (with auth
    configured: only the caller's own).

    Without `paginationOpts`: at most 200 sessions. With them: a page
    (`{page, isDone, continueCursor}`)."""
    if AUTH_REQUIRED:
        userId = (await require_user(ctx))["subject"] if userId is None else userId
        await check_user(ctx, userId)
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
    return await session_for(ctx, sessionId)
