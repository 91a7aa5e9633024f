"""chatSessions and chatMessages: ordering, pagination, references, errors."""

from __future__ import annotations

from typing import Any

import pytest

from reactive_store.errors import ConvexError, ValidationError


async def test_sessions_create_get_list_by_activity(app: Any) -> None:
    a = (await app.run_mutation("chatSessions:create", {"userId": "u1", "title": "A"})).value
    b = (await app.run_mutation("chatSessions:create", {"userId": "u1", "title": "B"})).value
    await app.run_mutation("chatSessions:create", {"userId": "u2", "title": "C"})
    assert (await app.run_query("chatSessions:get", {"sessionId": a})).value["title"] == "A"
    mine = (await app.run_query("chatSessions:list", {"userId": "u1"})).value
    assert [s["title"] for s in mine] == ["B", "A"]
    await app.run_mutation("chatMessages:append", {"sessionId": a, "role": "user",
                                                   "content": "bump"})
    mine = (await app.run_query("chatSessions:list", {"userId": "u1"})).value
    assert [s["_id"] for s in mine] == [a, b], "the most recently active session comes first"
    everyone = (await app.run_query("chatSessions:list", {})).value
    assert len(everyone) == 3
    page = (await app.run_query("chatSessions:list", {
        "paginationOpts": {"numItems": 2, "cursor": None}})).value
    assert len(page["page"]) == 2 and page["isDone"] is False


async def test_messages_in_order_with_pagination(app: Any) -> None:
    session = (await app.run_mutation("chatSessions:create",
                                       {"userId": "u", "title": "t"})).value
    for i in range(5):
        args: dict[str, Any] = {"sessionId": session, "role": "assistant" if i % 2 else "user",
                                "content": f"m{i}"}
        if i == 2:
            args["metadata"] = {"i": i}
        await app.run_mutation("chatMessages:append", args)
    listed = (await app.run_query("chatMessages:listBySession", {"sessionId": session})).value
    assert [m["content"] for m in listed] == ["m0", "m1", "m2", "m3", "m4"]
    assert listed[2]["metadata"] == {"i": 2} and "metadata" not in listed[0]
    cursor, seen = None, []
    while True:
        page = (await app.run_query("chatMessages:listBySession", {
            "sessionId": session, "paginationOpts": {"numItems": 2, "cursor": cursor}})).value
        seen += [m["content"] for m in page["page"]]
        cursor = page["continueCursor"]
        if page["isDone"]:
            break
    assert seen == ["m0", "m1", "m2", "m3", "m4"]


async def test_message_errors_write_nothing(app: Any) -> None:
    session = (await app.run_mutation("chatSessions:create",
                                       {"userId": "u", "title": "t"})).value
    await app.run_mutation("chatMessages:append", {"sessionId": session, "role": "user",
                                                   "content": "x"})
    await app.run_mutation("chatSessions:create", {"userId": "u", "title": "gone"})
    with pytest.raises(ValidationError, match=r"args\.role"):
        await app.run_mutation("chatMessages:append", {"sessionId": session, "role": "robot",
                                                       "content": "x"})
    order = (await app.run_mutation("workOrders:create", {
        "sessionId": session, "workflowType": "fix", "prompt": "p", "title": "t",
        "requestedBy": "u"})).value
    with pytest.raises(ValidationError, match="expected an id of table 'chat_sessions'"):
        await app.run_mutation("chatMessages:append", {"sessionId": order, "role": "user",
                                                       "content": "x"})
    with pytest.raises(ValidationError, match=r"args\.sessionId"):
        await app.run_mutation("chatMessages:append", {"sessionId": "nonsense",
                                                       "role": "user", "content": "x"})
    missing = await _deleted_session(app)
    with pytest.raises(ConvexError) as info:
        await app.run_mutation("chatMessages:append", {"sessionId": missing, "role": "user",
                                                       "content": "x"})
    assert info.value.data["code"] == "not_found" and "does not exist" in info.value.message
    with pytest.raises(ConvexError, match="does not exist"):
        await app.run_query("chatSessions:get", {"sessionId": missing})
    listed = (await app.run_query("chatMessages:listBySession", {"sessionId": session})).value
    assert [m["content"] for m in listed] == ["x"]


async def _deleted_session(app: Any) -> str:
    """An id of the chat_sessions table that names no document."""
    from reactive_store.ids import new_id

    number: int = app.store.table_numbers["chat_sessions"]
    return new_id(number)
