"""chatSessions: create, get, and list by latest activity (filtered, limited, paginated)."""

from __future__ import annotations

from typing import Any

import pytest

from reactive_store.engine.engine import Engine
from reactive_store.errors import ConvexError, ValidationError
from tests.bundled_app.helpers import assert_indexed, missing_id, snapshot


async def create(app: Engine, user: str, title: str) -> str:
    session: str = (await app.run_mutation("chatSessions:create",
                                           {"userId": user, "title": title})).value
    return session


async def listed(app: Engine, args: dict[str, Any]) -> Any:
    outcome = await app.run_query("chatSessions:list", args)
    assert_indexed(outcome)
    return outcome.value


async def test_create_and_get(app: Engine) -> None:
    session = await create(app, "ada", "Export bug")
    outcome = await app.run_query("chatSessions:get", {"sessionId": session})
    assert_indexed(outcome)
    got = outcome.value
    assert got["_id"] == session and got["userId"] == "ada" and got["title"] == "Export bug"
    assert isinstance(got["createdAt"], float) and got["createdAt"] == got["updatedAt"]
    assert set(got) == {"_id", "_creationTime", "userId", "title", "createdAt", "updatedAt"}


async def test_list_newest_activity_first(app: Engine) -> None:
    a = await create(app, "u1", "A")
    b = await create(app, "u1", "B")
    c = await create(app, "u1", "C")
    other = await create(app, "u2", "D")
    assert [s["_id"] for s in await listed(app, {"userId": "u1"})] == [c, b, a]
    # a message, a new work order and a status change each count as activity
    await app.run_mutation("chatMessages:append", {"sessionId": a, "role": "user",
                                                   "content": "bump"})
    assert [s["_id"] for s in await listed(app, {"userId": "u1"})] == [a, c, b]
    order = (await app.run_mutation("workOrders:create", {
        "sessionId": b, "workflowType": "bugfix", "prompt": "p", "title": "t",
        "requestedBy": "u1"})).value
    assert [s["_id"] for s in await listed(app, {"userId": "u1"})] == [b, a, c]
    await app.run_mutation("chatMessages:append", {"sessionId": c, "role": "user",
                                                   "content": "bump"})
    await app.run_mutation("workOrders:updateStatus", {"workOrderId": order,
                                                       "status": "submitted"})
    assert [s["_id"] for s in await listed(app, {"userId": "u1"})] == [b, c, a]
    assert [s["_id"] for s in await listed(app, {"userId": "u2"})] == [other]
    assert await listed(app, {"userId": "nobody"}) == []
    everyone = await listed(app, {})
    assert [s["_id"] for s in everyone] == [b, c, a, other]
    updated = [s["updatedAt"] for s in everyone]
    assert updated == sorted(updated, reverse=True)


async def test_list_pages_through_everything_once(app: Engine) -> None:
    made = [await create(app, "u", f"s{i}") for i in range(7)]
    await create(app, "someone else", "x")
    for args, expected in (({"userId": "u"}, made[::-1]), ({}, None)):
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            page = await listed(app, {**args, "paginationOpts": {"numItems": 3,
                                                                  "cursor": cursor}})
            assert len(page["page"]) <= 3
            seen += [s["_id"] for s in page["page"]]
            cursor = page["continueCursor"]
            if page["isDone"]:
                break
        assert page["isDone"]
        if expected is not None:
            assert seen == expected
        else:
            assert len(seen) == 8 and len(set(seen)) == 8
    # the extra fields the official clients' usePaginatedQuery sends are accepted
    page = await listed(app, {"userId": "u", "paginationOpts": {
        "numItems": 2, "cursor": None, "id": 1, "maximumRowsRead": 1000}})
    assert [s["_id"] for s in page["page"]] == made[:-3:-1] and page["isDone"] is False


async def test_plain_list_is_limited_to_200(app: Engine) -> None:
    for i in range(201):
        await create(app, "busy", f"s{i}")
    sessions = await listed(app, {"userId": "busy"})
    assert len(sessions) == 200
    assert sessions[0]["title"] == "s200" and sessions[-1]["title"] == "s1"
    assert len(await listed(app, {})) == 200


async def test_get_errors(app: Engine) -> None:
    session = await create(app, "u", "t")
    ghost = missing_id(app, "chat_sessions")
    with pytest.raises(ConvexError) as info:
        await app.run_query("chatSessions:get", {"sessionId": ghost})
    assert info.value.data["code"] == "not_found" and info.value.data["id"] == ghost
    assert info.value.message == f"chat session {ghost} does not exist"
    message = (await app.run_mutation("chatMessages:append", {
        "sessionId": session, "role": "user", "content": "hi"})).value
    with pytest.raises(ValidationError, match="expected an id of table 'chat_sessions', "
                                              "got an id of table 'chat_messages'"):
        await app.run_query("chatSessions:get", {"sessionId": message})
    with pytest.raises(ValidationError, match=r"args\.sessionId"):
        await app.run_query("chatSessions:get", {"sessionId": "not-an-id"})


@pytest.mark.parametrize("args", [
    {"userId": "u"},
    {"title": "t"},
    {"userId": 7, "title": "t"},
    {"userId": "u", "title": "t", "createdAt": 1.0},
])
async def test_create_refuses_bad_args_and_writes_nothing(app: Engine,
                                                          args: dict[str, Any]) -> None:
    await create(app, "u", "existing")
    before = await snapshot(app)
    with pytest.raises(ValidationError):
        await app.run_mutation("chatSessions:create", args)
    assert await snapshot(app) == before


async def test_list_refuses_bad_pagination(app: Engine) -> None:
    with pytest.raises(ValidationError, match=r"paginationOpts"):
        await app.run_query("chatSessions:list", {"paginationOpts": {"numItems": 2}})
    with pytest.raises(ValidationError, match=r"args\.userId"):
        await app.run_query("chatSessions:list", {"userId": None})
