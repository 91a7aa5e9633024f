"""Chat sessions: create one, list them by latest activity, get one.

Written with type hints: the validators of each function's arguments and result come from
its annotations (the work order modules write theirs with `v.*`; clients see no difference).
"""

from typing import Annotated, Any

from reactive_store import mutation, query, require_user, v

from ..schema import Session, SessionId
from ._lib import (
    AUTH_REQUIRED,
    DEFAULT_LIST_LIMIT,
    OptionalPagination,
    SessionPage,
    check_user,
    session_for,
)


@mutation
async def create(ctx: Any, userId: str, title: str) -> SessionId:
    """Create a chat session.

    Args: `userId` (the owner), `title`. createdAt and updatedAt are set to now.

    Returns: the new session's id.

    Errors: `forbidden` when auth is configured and `userId` is not the caller's subject.
    """
    await check_user(ctx, userId)
    now = ctx.now()
    session_id: SessionId = await ctx.db.insert("chat_sessions", {
        "userId": userId, "title": title, "createdAt": now, "updatedAt": now})
    return session_id


@query(name="list")
async def list_sessions(ctx: Any, userId: Annotated[str | None, v.string()] = None,
                        paginationOpts: OptionalPagination = None
                        ) -> list[Session] | SessionPage:
    """Sessions, most recently active first (updatedAt descending: a new message or work
    order moves a session to the top).

    Args: `userId` (optional: only this user's sessions; with auth configured it defaults
    to the caller and must be the caller), `paginationOpts` (optional `{numItems, cursor}`).

    Returns: without `paginationOpts`, a list of at most 200 sessions; with it, a page
    `{page, isDone, continueCursor, splitCursor, pageStatus}`.

    Errors: `unauthenticated` / `forbidden` when auth is configured.
    """
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
        sessions: list[Session] = await q.take(DEFAULT_LIST_LIMIT)
        return sessions
    page: SessionPage = await q.paginate(paginationOpts)
    return page


@query
async def get(ctx: Any, sessionId: SessionId) -> Session:
    """One session.

    Args: `sessionId`.

    Returns: the session document (`_id`, `userId`, `title`, `createdAt`, `updatedAt`).

    Errors: `not_found` when there is no such session (an id of another table is refused
    by argument validation); `forbidden` when auth is configured and it is not the caller's.
    """
    return await session_for(ctx, sessionId)
