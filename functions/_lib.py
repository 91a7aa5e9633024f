"""Helpers shared by the bundled app's functions (not functions themselves)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, TypedDict

from reactive_store import ConvexError, require_owner, v

from ..schema import Message, Session
from .auth_config import providers

Doc = dict[str, Any]

AUTH_REQUIRED = bool(providers)

# A plain list (no `paginationOpts`) holds at most this many rows: enough for a chat or a
# board, and a bound on what one query reads. Page through with `paginationOpts` for more.
DEFAULT_LIST_LIMIT = 200

# Convex's `paginationOptsValidator`, so the official clients' `usePaginatedQuery` (which
# adds `id`) can call these queries unchanged; only numItems, cursor and endCursor are used.
PAGINATION = v.optional(v.object({
    "numItems": v.float64(),
    "cursor": v.union(v.string(), v.null()),
    "endCursor": v.optional(v.union(v.string(), v.null())),
    "id": v.optional(v.float64()),
    "maximumRowsRead": v.optional(v.float64()),
    "maximumBytesRead": v.optional(v.float64()),
}))


class PaginationOpts(TypedDict):
    """PAGINATION as a type, for functions written with type hints."""

    numItems: float
    cursor: str | None
    endCursor: NotRequired[str | None]
    id: NotRequired[float]
    maximumRowsRead: NotRequired[float]
    maximumBytesRead: NotRequired[float]


# A `paginationOpts` parameter: it may be left out, but not be null (as in Convex). The
# validator in Annotated[...] is used as it is, where the hint alone would also allow null.
OptionalPagination = Annotated[PaginationOpts | None, PAGINATION]


PageStatus = Literal["SplitRecommended", "SplitRequired"] | None


class SessionPage(TypedDict):
    """A page of chat sessions, as `paginate` returns it."""

    page: list[Session]
    isDone: bool
    continueCursor: str
    splitCursor: NotRequired[str | None]
    pageStatus: NotRequired[PageStatus]


class MessagePage(TypedDict):
    """A page of chat messages, as `paginate` returns it."""

    page: list[Message]
    isDone: bool
    continueCursor: str
    splitCursor: NotRequired[str | None]
    pageStatus: NotRequired[PageStatus]


def not_found(what: str, key: str) -> ConvexError:
    """The `not_found` error every function raises for a missing reference."""
    return ConvexError({"code": "not_found", "what": what, "id": key,
                        "message": f"{what} {key} does not exist"})


async def must_get(ctx: Any, doc_id: str, what: str) -> Doc:
    """The document, or a `not_found` ConvexError naming what was missing."""
    doc: Doc | None = await ctx.db.get(doc_id)
    if doc is None:
        raise not_found(what, doc_id)
    return doc


async def touch(ctx: Any, doc_id: str) -> None:
    """Move a document's updatedAt to now (sessions sort by activity, orders by change)."""
    await ctx.db.patch(doc_id, {"updatedAt": ctx.now()})


async def list_or_page(query: Any, pagination: Doc | None) -> Any:
    """Without pagination options: the newest DEFAULT_LIST_LIMIT, oldest first.
    With them: a page in ascending order, as `paginate` returns it."""
    if pagination is None:
        newest = await query.order("desc").take(DEFAULT_LIST_LIMIT)
        return newest[::-1]
    return await query.paginate(pagination)


async def session_for(ctx: Any, session_id: str) -> Doc:
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


async def order_for(ctx: Any, order_id: str) -> Doc:
    """The work order, checked for its session's ownership when the app requires users."""
    order = await must_get(ctx, order_id, "work order")
    if AUTH_REQUIRED:
        await session_for(ctx, order["sessionId"])
    return order


async def find_link(ctx: Any, order_id: str, kind: str, value: str) -> Doc | None:
    """The work order's link of this kind and value, if it has one."""
    found: Doc | None = await ctx.db.query("work_order_links").with_index(
        "by_order_kind", lambda r: r.eq("workOrderId", order_id).eq("kind", kind)
    ).filter(lambda link: link["value"] == value).first()
    return found


async def add_link(ctx: Any, order_id: str, kind: str, value: str) -> str:
    """Link the work order once: an existing identical link's id, else the new link's id."""
    same = await find_link(ctx, order_id, kind, value)
    if same is not None:
        return str(same["_id"])
    return str(await ctx.db.insert("work_order_links", {"workOrderId": order_id,
                                                        "kind": kind, "value": value}))


async def set_arg(ctx: Any, order_id: str, name: str, value: Any) -> str:
    """Insert or replace argument `name` of the work order; the row's id."""
    existing = await ctx.db.query("work_order_args").with_index(
        "by_order_name", lambda r: r.eq("workOrderId", order_id).eq("name", name)).unique()
    if existing is not None:
        await ctx.db.patch(existing["_id"], {"value": value})
        return str(existing["_id"])
    return str(await ctx.db.insert("work_order_args", {"workOrderId": order_id,
                                                       "name": name, "value": value}))


async def set_target(ctx: Any, order_id: str, target_repo: str, target_branch: str) -> str:
    """Insert or replace the work order's one target row; the row's id."""
    existing = await ctx.db.query("work_order_targets").with_index(
        "by_order", lambda r: r.eq("workOrderId", order_id)).unique()
    fields = {"targetRepo": target_repo, "targetBranch": target_branch}
    if existing is not None:
        await ctx.db.patch(existing["_id"], fields)
        return str(existing["_id"])
    return str(await ctx.db.insert("work_order_targets", {"workOrderId": order_id, **fields}))
