"""Chat messages: append one (with file attachments) to a session, list a session's messages in
order, search them, remove one with its files, and hand out upload URLs for attachments."""

import logging
from typing import Any

from reactive_store import ConvexError, mutation, query, v

from ._lib import (
    PAGINATION,
    Doc,
    check_session_read,
    list_or_page,
    must_get,
    session_for,
    touch,
)

ROLE = v.union(v.literal("user"), v.literal("assistant"), v.literal("system"))
log = logging.getLogger(__name__)
ATTACHMENT_IN = v.object({"storageId": v.id("_storage"), "name": v.string()})
MAX_ATTACHMENTS = 10
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
MAX_NAME_CHARS = 255


@mutation(args={"sessionId": v.id("chat_sessions")}, returns=v.string())
async def generateUploadUrl(ctx: Any, sessionId: str) -> str:
    """An upload URL for one attachment to a message of this session.

    Args: `sessionId`.

    Returns: a single-use URL, valid for an hour: `POST` the file's bytes to it with its
    `Content-Type`; the answer is `{"storageId": ...}`, which `append` takes. Files up to
    25 MiB.

    Errors: `not_found` when the session does not exist; `forbidden` when auth is configured
    and the session is not the caller's.
    """
    await session_for(ctx, sessionId)
    url: str = await ctx.storage.generate_upload_url(max_size=MAX_ATTACHMENT_BYTES)
    return url


async def _attachments(ctx: Any, given: list[Doc]) -> list[Doc]:
    """The attachments as stored: name from the client, type and size from `_storage`."""
    if len(given) > MAX_ATTACHMENTS:
        raise ConvexError({"code": "too_many_attachments", "limit": MAX_ATTACHMENTS,
                           "message": f"a message takes at most {MAX_ATTACHMENTS} files"})
    stored = []
    for item in given:
        name = item["name"].strip()
        if not name or len(name) > MAX_NAME_CHARS:
            raise ConvexError({"code": "invalid_attachment", "message": "an attachment needs "
                               f"a name of 1 to {MAX_NAME_CHARS} characters"})
        file = await ctx.db.system.get(item["storageId"])
        if file is None:
            raise ConvexError({"code": "not_found", "what": "file", "id": item["storageId"],
                               "message": f"file {item['storageId']} does not exist"})
        stored.append({"storageId": item["storageId"], "name": name, "size": file["size"],
                       "contentType": file.get("contentType", "application/octet-stream")})
    return stored


@mutation(args={"sessionId": v.id("chat_sessions"), "role": ROLE, "content": v.string(),
                "metadata": v.optional(v.any()),
                "attachments": v.optional(v.array(ATTACHMENT_IN))},
          returns=v.id("chat_messages"))
async def append(ctx: Any, sessionId: str, role: str, content: str,
                 metadata: Any = None, attachments: list[Doc] | None = None) -> str:
    """Append a message to a session and move the session's updatedAt.

    Args: `sessionId`, `role` (`user` | `assistant` | `system`), `content`, `metadata`
    (optional, any value: tool calls; left out of the document when absent or null),
    `attachments` (optional, at most 10 `{storageId, name}`: files uploaded through
    `generateUploadUrl`; their content type and size are taken from file storage).

    Returns: the new message's id.

    Errors: `not_found` when the session or an attached file does not exist (nothing is
    written); `too_many_attachments`, `invalid_attachment` (an empty or over-long name);
    `forbidden` when auth is configured and the session is not the caller's.
    """
    await session_for(ctx, sessionId)
    doc: dict[str, Any] = {"sessionId": sessionId, "role": role, "content": content,
                           "createdAt": ctx.now()}
    if metadata is not None:
        doc["metadata"] = metadata
    if attachments:
        doc["attachments"] = await _attachments(ctx, attachments)
    message_id: str = await ctx.db.insert("chat_messages", doc)
    await touch(ctx, sessionId)
    log.info("appended a %s message (%d chars) to session %s", role, len(content), sessionId)
    return message_id


@mutation(args={"messageId": v.id("chat_messages")})
async def remove(ctx: Any, messageId: str) -> None:
    """Delete a message and the files attached to it.

    Args: `messageId`.

    Returns: nothing. The files' bytes are deleted once this commits; their URLs stop
    working.

    Errors: `not_found` when the message does not exist; `forbidden` when auth is
    configured and the session is not the caller's.
    """
    message = await must_get(ctx, messageId, "chat message")
    await session_for(ctx, message["sessionId"])
    for attachment in message.get("attachments", []):
        if await ctx.db.system.get(attachment["storageId"]) is not None:
            await ctx.storage.delete(attachment["storageId"])
    await ctx.db.delete(messageId)


@query(args={"sessionId": v.id("chat_sessions"), "paginationOpts": PAGINATION})
async def listBySession(ctx: Any, sessionId: str, paginationOpts: Doc | None = None) -> Any:
    """A session's messages, oldest first (by createdAt).

    Args: `sessionId`, `paginationOpts` (optional `{numItems, cursor}`).

    Returns: without `paginationOpts`, a list of the newest 200 messages, oldest first;
    with it, a page `{page, isDone, continueCursor, splitCursor, pageStatus}` in
    ascending order, whose bounds stay put while it is subscribed. A session that does
    not exist has no messages (an empty list). Each attachment carries a `url` to
    download or show it (null once its file is deleted).

    Errors: `forbidden` when auth is configured and the session is not the caller's.
    """
    await check_session_read(ctx, sessionId)
    q = ctx.db.query("chat_messages").with_index(
        "by_session_created", lambda r: r.eq("sessionId", sessionId))
    result = await list_or_page(q, paginationOpts)
    for message in result if isinstance(result, list) else result["page"]:
        for attachment in message.get("attachments", []):
            attachment["url"] = await ctx.storage.get_url(attachment["storageId"])
    return result


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
