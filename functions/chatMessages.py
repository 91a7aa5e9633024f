"""Chat messages: append to a session, list a session's messages in order."""

from reactive_store import mutation, query, v

from ._lib import PAGINATION, check_session_read, list_or_page, session_for, touch_session

ROLE = v.union(v.literal("user"), v.literal("assistant"), v.literal("system"))


@mutation(args={"sessionId": v.id("chat_sessions"), "role": ROLE, "content": v.string(),
                "metadata": v.optional(v.any())},
          returns=v.id("chat_messages"))
async def append(ctx, sessionId, role, content, metadata=None):
    """Append a message (role user|assistant|system) to a session. Returns its id.
    Errors: `not_found` when the session does not exist."""
    await session_for(ctx, sessionId)
    doc = {"sessionId": sessionId, "role": role, "content": content, "createdAt": ctx.now()}
    if metadata is not None:
        doc["metadata"] = metadata
    message_id = await ctx.db.insert("chat_messages", doc)
    await touch_session(ctx, sessionId)
    return message_id


@query(args={"sessionId": v.id("chat_sessions"), "paginationOpts": PAGINATION})
async def listBySession(ctx, sessionId, paginationOpts=None):
    """A session's messages by createdAt. Without `paginationOpts`: the newest 200, oldest
    first; with them: a page in ascending order."""
    await check_session_read(ctx, sessionId)
    q = ctx.db.query("chat_messages").with_index(
        "by_session_created", lambda r: r.eq("sessionId", sessionId))
    return await list_or_page(q, paginationOpts)
