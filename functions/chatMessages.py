"""Chat messages: append one to a session, list a session's messages in order, search them."""

from typing import Any

from reactive_store import mutation, query, v

from ._lib import PAGINATION, Doc, check_session_read, list_or_page, session_for, touch

ROLE = v.union(v.literal("user"), v.literal("assistant"), v.literal("system"))


@mutation(args={"sessionId": v.id("chat_sessions"), "role": ROLE, "content": v.string(),
                "metadata": v.optional(v.any())},
          returns=v.id("chat_messages"))
async def append(ctx: Any, sessionId: str, role: str, content: str,
                 metadata: Any = None) -> str:
    """Append a message to a session and move the session's updatedAt.

    Args: `sessionId`, `role` (`user` | `assistant` | `system`), `content`, `metadata`
    (optional, any value: tool calls, attachments; left out of the document when absent
    or null).

    Returns: the new message's id.

    Errors: `not_found` when the session does not exist (nothing is written);
    `forbidden` when auth is configured and the session is not the caller's.
    """
    await session_for(ctx, sessionId)
    doc: Doc = {"sessionId": sessionId, "role": role, "content": content,
                "createdAt": ctx.now()}
    if metadata is not None:
        doc["metadata"] = metadata
    message_id: str = await ctx.db.insert("chat_messages", doc)
    await touch(ctx, sessionId)
    return message_id


@query(args={"sessionId": v.id("chat_sessions"), "paginationOpts": PAGINATION})
async def listBySession(ctx: Any, sessionId: str, paginationOpts: Doc | None = None) -> Any:
    """A session's messages, oldest first (by createdAt).

    Args: `sessionId`, `paginationOpts` (optional `{numItems, cursor}`).

    Returns: without `paginationOpts`, a list of the newest 200 messages, oldest first;
    with it, a page `{page, isDone, continueCursor}` in ascending order. A session that
    does not exist has no messages (an empty list).

    Errors: `forbidden` when auth is configured and the session is not the caller's.
    """
    await check_session_read(ctx, sessionId)
    q = ctx.db.query("chat_messages").with_index(
        "by_session_created", lambda r: r.eq("sessionId", sessionId))
    return await list_or_page(q, paginationOpts)


SEARCH_LIMIT = 20
MAX_SEARCH_LIMIT = 100


@query(args={"sessionId": v.id("chat_sessions"), "text": v.string(),
             "limit": v.optional(v.float64())})
async def search(ctx: Any, sessionId: str, text: str, limit: float | None = None) -> Any:
    """A session's messages that match `text`, best match first (live: the list updates
    when a message with one of the words is added, edited or removed).

    Any word of `text` matches, the last one also as the start of a word (typeahead);
    case and punctuation are ignored. Relevance is BM25 over the session's messages.

    Args: `sessionId`, `text`, `limit` (optional, default 20, at most 100).

    Returns: a list of message documents (empty when `text` has no words).

    Errors: `forbidden` when auth is configured and the session is not the caller's.
    """
    await check_session_read(ctx, sessionId)
    n = max(1, min(int(limit or SEARCH_LIMIT), MAX_SEARCH_LIMIT))
    return await ctx.db.query("chat_messages").with_search_index(
        "search_content", lambda q: q.search("content", text).eq("sessionId", sessionId)
    ).take(n)
