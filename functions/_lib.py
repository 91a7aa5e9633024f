"""Helpers shared by the bundled app's functions (not functions themselves)."""

from __future__ import annotations

from typing import Any

from reactive_store import ConvexError, require_owner, v

from .auth_config import providers

AUTH_REQUIRED = bool(providers)

DEFAULT_LIST_LIMIT = 200
PAGINATION = v.optional(v.object({
    "numItems": v.float64(),
    "cursor": v.union(v.string(), v.null()),
    "endCursor": v.optional(v.union(v.string(), v.null())),
}))


async def must_get(ctx: Any, doc_id: str, what: str) -> dict[str, Any]:
    """The document, or a `not_found` ConvexError naming what was missing."""
    doc = await ctx.db.get(doc_id)
    if doc is None:
        raise ConvexError({"code": "not_found", "what": what, "id": doc_id,
                           "message": f"{what} {doc_id} does not exist"})
    return doc


async def touch_session(ctx: Any, session_id: str) -> None:
    """Move a session's updatedAt, so session lists sort by activity."""
    await ctx.db.patch(session_id, {"updatedAt": ctx.now()})


async def list_or_page(query: Any, pagination: dict[str, Any] | None) -> Any:
    """Without pagination options: the newest DEFAULT_LIST_LIMIT, oldest first.
    With them: a page in ascending order, as `paginate` returns it."""
    if pagination is None:
        newest = await query.order("desc").take(DEFAULT_LIST_LIMIT)
        return list(reversed(newest))
    return await query.paginate(pagination)


async def session_for(ctx: Any, session_id: str) -> dict[str, Any]:
    """The session, checked for ownership when the app requires signed-in users."""
    session = await must_get(ctx, session_id, "chat session")
    if AUTH_REQUIRED:
        await require_owner(ctx, session["userId"], "this chat session")
    return session


async def check_user(ctx: Any, user_id: str) -> None:
    """When the app requires signed-in users, only `user_id` itself may act as `user_id`."""
    if AUTH_REQUIRED:
        await require_owner(ctx, user_id, "this user's data")


async def check_session_read(ctx: Any, session_id: str) -> None:
    """Ownership check before listing a session's items (nothing to read without auth, so
    such lists do not re-run whenever the session's updatedAt moves)."""
    if AUTH_REQUIRED:
        await session_for(ctx, session_id)


async def order_for(ctx: Any, order_id: str) -> dict[str, Any]:
    """The work order, checked for its session's ownership when the app requires users."""
    order = await must_get(ctx, order_id, "work order")
    if AUTH_REQUIRED:
        await session_for(ctx, order["sessionId"])
    return order
