"""chatMessages: append (references, roles, metadata), listBySession order, limit, pages."""

from __future__ import annotations

from typing import Any

import pytest

from reactive_store.engine.engine import Engine
from reactive_store.errors import ConvexError, ValidationError
from tests.bundled_app.helpers import assert_indexed, missing_id, snapshot


async def new_session(app: Engine, user: str = "u") -> str:
    session: str = (await app.run_mutation("chatSessions:create",
                                           {"userId": user, "title": "chat"})).value
    return session


async def append(app: Engine, session: str, content: str, role: str = "user",
                 **extra: Any) -> str:
    outcome = await app.run_mutation("chatMessages:append", {
        "sessionId": session, "role": role, "content": content, **extra})
    assert_indexed(outcome)
    message: str = outcome.value
    return message


async def messages(app: Engine, session: str, pagination: dict[str, Any] | None = None
                   ) -> Any:
    args: dict[str, Any] = {"sessionId": session}
    if pagination is not None:
        args["paginationOpts"] = pagination
    outcome = await app.run_query("chatMessages:listBySession", args)
    assert_indexed(outcome)
    return outcome.value


async def test_append_all_roles_with_optional_metadata(app: Engine) -> None:
    session = await new_session(app)
    created = (await app.run_query("chatSessions:get", {"sessionId": session})).value
    first = await append(app, session, "The export crashes", "user")
    await append(app, session, "Looking", "assistant",
                 metadata={"toolCalls": [{"name": "grep", "args": {"q": "lower()"}}]})
    await append(app, session, "Worker joined", "system", metadata=None)
    listed = await messages(app, session)
    assert [(m["role"], m["content"]) for m in listed] == [
        ("user", "The export crashes"), ("assistant", "Looking"), ("system", "Worker joined")]
    assert listed[0]["_id"] == first and listed[0]["sessionId"] == session
    assert "metadata" not in listed[0] and "metadata" not in listed[2]
    assert listed[1]["metadata"] == {"toolCalls": [{"name": "grep", "args": {"q": "lower()"}}]}
    assert all(isinstance(m["createdAt"], float) for m in listed)
    after = (await app.run_query("chatSessions:get", {"sessionId": session})).value
    assert after["updatedAt"] == listed[-1]["createdAt"] > created["updatedAt"]
    assert after["createdAt"] == created["createdAt"]


async def test_list_is_by_created_at_and_per_session(app: Engine) -> None:
    one, two = await new_session(app), await new_session(app)
    for i in range(4):
        await append(app, one, f"one-{i}", "assistant" if i % 2 else "user")
        await append(app, two, f"two-{i}")
    listed = await messages(app, one)
    assert [m["content"] for m in listed] == ["one-0", "one-1", "one-2", "one-3"]
    created = [m["createdAt"] for m in listed]
    assert created == sorted(created)
    assert [m["content"] for m in await messages(app, two)] == [f"two-{i}" for i in range(4)]
    assert await messages(app, missing_id(app, "chat_sessions")) == []


async def test_pagination_walks_every_message_once(app: Engine) -> None:
    session = await new_session(app)
    for i in range(7):
        await append(app, session, f"m{i}")
    for size in (1, 3, 7, 50):
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            page = await messages(app, session, {"numItems": size, "cursor": cursor})
            assert len(page["page"]) <= size
            seen += [m["content"] for m in page["page"]]
            cursor = page["continueCursor"]
            if page["isDone"]:
                break
        assert seen == [f"m{i}" for i in range(7)], size
    # a page's cursor also sees messages appended after it was read
    first = await messages(app, session, {"numItems": 7, "cursor": None})
    await append(app, session, "late")
    rest = await messages(app, session, {"numItems": 7, "cursor": first["continueCursor"]})
    assert [m["content"] for m in rest["page"]] == ["late"] and rest["isDone"]
    empty = await messages(app, await new_session(app), {"numItems": 5, "cursor": None})
    assert empty["page"] == [] and empty["isDone"] is True


async def test_plain_list_is_the_newest_200_oldest_first(app: Engine) -> None:
    session = await new_session(app)
    for i in range(203):
        await append(app, session, f"m{i}")
    listed = await messages(app, session)
    assert [m["content"] for m in listed] == [f"m{i}" for i in range(3, 203)]


async def test_append_to_a_missing_session_is_not_found_and_writes_nothing(
    app: Engine,
) -> None:
    session = await new_session(app)
    await append(app, session, "hello")
    before = await snapshot(app)
    ghost = missing_id(app, "chat_sessions")
    with pytest.raises(ConvexError) as info:
        await append(app, ghost, "into the void")
    assert info.value.data == {"code": "not_found", "what": "chat session", "id": ghost,
                               "message": f"chat session {ghost} does not exist"}
    assert await snapshot(app) == before


@pytest.mark.parametrize(("change", "error"), [
    ({"role": "robot"}, r"args\.role"),
    ({"role": None}, r"args\.role"),
    ({"content": 42}, r"args\.content"),
    ({"sessionId": "garbage"}, r"args\.sessionId"),
    ({"extra": 1}, "unexpected field 'extra'"),
])
async def test_append_refuses_bad_args_and_writes_nothing(
    app: Engine, change: dict[str, Any], error: str
) -> None:
    session = await new_session(app)
    before = await snapshot(app)
    with pytest.raises(ValidationError, match=error):
        await app.run_mutation("chatMessages:append", {
            "sessionId": session, "role": "user", "content": "x", **change})
    assert await snapshot(app) == before


async def test_ids_of_other_tables_are_refused(app: Engine) -> None:
    session = await new_session(app)
    message = await append(app, session, "x")
    order = (await app.run_mutation("workOrders:create", {
        "sessionId": session, "workflowType": "w", "prompt": "p", "title": "t",
        "requestedBy": "u"})).value
    before = await snapshot(app)
    for wrong, table in ((message, "chat_messages"), (order, "work_orders")):
        with pytest.raises(ValidationError, match=f"expected an id of table 'chat_sessions', "
                                                  f"got an id of table '{table}'"):
            await app.run_mutation("chatMessages:append", {"sessionId": wrong, "role": "user",
                                                           "content": "x"})
        with pytest.raises(ValidationError, match="chat_sessions"):
            await app.run_query("chatMessages:listBySession", {"sessionId": wrong})
    assert await snapshot(app) == before


async def test_attachments_take_type_and_size_from_file_storage(app: Engine) -> None:
    session = await new_session(app)
    image = await app.files.store(b"\x89PNG fake", "image/png")
    notes = await app.files.store(b"plain notes")
    message = await append(app, session, "see attached", attachments=[
        {"storageId": image, "name": " screenshot.png "}, {"storageId": notes, "name": "notes"}])
    [listed] = await messages(app, session)
    assert listed["_id"] == message
    first, second = listed["attachments"]
    assert {k: first[k] for k in ("storageId", "name", "contentType", "size")} == {
        "storageId": image, "name": "screenshot.png", "contentType": "image/png", "size": 9.0}
    assert second["contentType"] == "application/octet-stream" and second["size"] == 11.0
    assert first["url"] == app.files.url_for(image)
    assert first["url"].startswith(f"/api/storage/{image}/")
    page = await messages(app, session, {"numItems": 5, "cursor": None})
    assert page["page"][0]["attachments"][0]["url"] == first["url"]
    await app.run_mutation("chatMessages:append", {
        "sessionId": session, "role": "user", "content": "no files", "attachments": []})
    assert "attachments" not in (await messages(app, session))[1]


async def test_bad_attachments_write_nothing(app: Engine) -> None:
    session = await new_session(app)
    file = await app.files.store(b"x")
    before = await snapshot(app)
    gone = missing_id(app, "_storage")
    cases = [
        ([{"storageId": gone, "name": "a"}], "not_found"),
        ([{"storageId": file, "name": "  "}], "invalid_attachment"),
        ([{"storageId": file, "name": "n" * 256}], "invalid_attachment"),
        ([{"storageId": file, "name": "f"}] * 11, "too_many_attachments"),
    ]
    for attachments, code in cases:
        with pytest.raises(ConvexError) as raised:
            await app.run_mutation("chatMessages:append", {
                "sessionId": session, "role": "user", "content": "x",
                "attachments": attachments})
        assert raised.value.data["code"] == code
    with pytest.raises(ValidationError, match="expected an id of table '_storage'"):
        await app.run_mutation("chatMessages:append", {
            "sessionId": session, "role": "user", "content": "x",
            "attachments": [{"storageId": session, "name": "a"}]})
    assert await snapshot(app) == before


async def test_upload_urls_for_a_session(app: Engine) -> None:
    session = await new_session(app)
    url = (await app.run_mutation("chatMessages:generateUploadUrl",
                                  {"sessionId": session})).value
    assert url.startswith("/api/storage/upload?token=")
    with pytest.raises(ConvexError) as raised:
        await app.run_mutation("chatMessages:generateUploadUrl",
                               {"sessionId": missing_id(app, "chat_sessions")})
    assert raised.value.data["code"] == "not_found"


async def test_a_deleted_file_leaves_the_message_with_no_url(app: Engine) -> None:
    session = await new_session(app)
    file = await app.files.store(b"bytes", "text/plain")
    await append(app, session, "file", attachments=[{"storageId": file, "name": "a.txt"}])

    async def delete(writer: Any) -> None:
        await writer.delete(file)

    await app.write_system("test", delete)
    [listed] = await messages(app, session)
    assert listed["attachments"][0]["url"] is None
    assert listed["attachments"][0]["name"] == "a.txt"


async def test_remove_deletes_the_message_and_its_files(app: Engine) -> None:
    session = await new_session(app)
    kept = await app.files.store(b"shared", "text/plain")
    file = await app.files.store(b"only here", "text/plain")
    first = await append(app, session, "one", attachments=[{"storageId": kept, "name": "k"}])
    second = await append(app, session, "two", attachments=[
        {"storageId": file, "name": "f"}, {"storageId": kept, "name": "k"}])
    await app.run_mutation("chatMessages:remove", {"messageId": second})
    [left] = await messages(app, session)
    assert left["_id"] == first
    assert left["attachments"][0]["url"] is None, "the shared file went with the message"
    assert (await app.read(lambda db: db.system.get(file))) is None
    await app.run_mutation("chatMessages:remove", {"messageId": first})
    assert await messages(app, session) == []
    with pytest.raises(ConvexError) as raised:
        await app.run_mutation("chatMessages:remove", {"messageId": first})
    assert raised.value.data["code"] == "not_found"
