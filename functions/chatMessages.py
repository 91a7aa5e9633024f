"""Chat messages: append one to a session, list a session's messages in order.

Written with type hints, like chatSessions.py (the work order modules use `v.*`).
"""

from typing import Any

from reactive_store import mutation, query

from ..schema import Message, MessageId, Role, SessionId
from ._lib import (
    MessagePage,
    OptionalPagination,
    check_session_read,
    list_or_page,
    session_for,
    touch,
)


@mutation
async def append(ctx: Any, sessionId: SessionId, role: Role, content: str,
                 metadata: Any = None) -> MessageId:
    """Append a message to a session and move the session's updatedAt.

    Args: `sessionId`, `role` (`user` | `assistant` | `system`), `content`, `metadata`
    (optional, any value: tool calls, attachments; left out of the document when absent
    or null).

    Returns: the new message's id.

    Errors: `not_found` when the session does not exist (nothing is written);
    `forbidden` when auth is configured and the session is not the caller's.
    """
    await session_for(ctx, sessionId)
    doc: dict[str, Any] = {"sessionId": sessionId, "role": role, "content": content,
                           "createdAt": ctx.now()}
    if metadata is not None:
        doc["metadata"] = metadata
    message_id: MessageId = await ctx.db.insert("chat_messages", doc)
    await touch(ctx, sessionId)
    return message_id


@query(name="listBySession")
async def list_by_session(ctx: Any, sessionId: SessionId,
                          paginationOpts: OptionalPagination = None
                          ) -> list[Message] | MessagePage:
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
    result: list[Message] | MessagePage = await list_or_page(q, paginationOpts)
    return result
