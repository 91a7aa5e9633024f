"""workOrders, workOrderArgs, workOrderTargets, workOrderLinks: complete creation, the status
machine (every move), upserts, listBySession, references and wrong-table ids."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive_store.engine.engine import Engine
from reactive_store.errors import ConvexError, ValidationError
from tests.bundled_app.helpers import assert_indexed, missing_id, snapshot

STATUSES = ("draft", "submitted", "accepted", "running", "succeeded", "failed", "canceled")
LEGAL = {("draft", "submitted"), ("submitted", "accepted"), ("accepted", "running"),
         ("running", "succeeded"), ("running", "failed"), ("draft", "canceled"),
         ("submitted", "canceled"), ("accepted", "canceled"), ("running", "canceled")}
# How to reach each status from draft.
ROUTE = {"draft": [], "submitted": ["submitted"], "accepted": ["submitted", "accepted"],
         "running": ["submitted", "accepted", "running"],
         "succeeded": ["submitted", "accepted", "running", "succeeded"],
         "failed": ["submitted", "accepted", "running", "failed"], "canceled": ["canceled"]}


async def call(app: Engine, path: str, args: dict[str, Any]) -> Any:
    outcome = await app.run_mutation(path, args)
    assert_indexed(outcome)
    return outcome.value


async def ask(app: Engine, path: str, args: dict[str, Any]) -> Any:
    outcome = await app.run_query(path, args)
    assert_indexed(outcome)
    return outcome.value


async def new_session(app: Engine) -> str:
    session: str = await call(app, "chatSessions:create", {"userId": "u", "title": "s"})
    return session


async def new_order(app: Engine, session: str | None = None, **extra: Any) -> tuple[str, str]:
    session = session or await new_session(app)
    order: str = await call(app, "workOrders:create", {
        "sessionId": session, "workflowType": "bugfix", "prompt": "Fix the crash",
        "title": "Fix", "requestedBy": "u", **extra})
    return session, order


async def get(app: Engine, order: str) -> Any:
    return await ask(app, "workOrders:get", {"workOrderId": order})


async def move(app: Engine, order: str, status: str) -> Any:
    return await call(app, "workOrders:updateStatus", {"workOrderId": order, "status": status})


async def rows(app: Engine, table: str, order: str) -> list[dict[str, Any]]:
    return [r for r in (await snapshot(app))[table] if r["workOrderId"] == order]


# -- create and get ------------------------------------------------------------------------

async def test_create_minimal_starts_as_draft_and_bumps_the_session(app: Engine) -> None:
    session = await new_session(app)
    before = (await app.run_query("chatSessions:get", {"sessionId": session})).value
    _, order = await new_order(app, session)
    got = await get(app, order)
    assert {k: got[k] for k in ("sessionId", "workflowType", "prompt", "title", "status",
                                "requestedBy")} == {
        "sessionId": session, "workflowType": "bugfix", "prompt": "Fix the crash",
        "title": "Fix", "status": "draft", "requestedBy": "u"}
    assert got["createdAt"] == got["updatedAt"] and isinstance(got["createdAt"], float)
    assert got["args"] == {} and got["target"] is None and got["links"] == []
    after = (await app.run_query("chatSessions:get", {"sessionId": session})).value
    assert after["updatedAt"] == got["createdAt"] > before["updatedAt"]


async def test_create_complete_order_in_one_call(app: Engine) -> None:
    _, order = await new_order(
        app, status="submitted",
        args={"retries": 3, "flags": ["a", "b"], "opts": {"dry": True}, "none": None},
        target={"targetRepo": "acme/exporter", "targetBranch": "release/2.4"},
        links=[{"kind": "github_issue", "value": "https://github.com/acme/exporter/issues/41"},
               {"kind": "commit", "value": "9f1c2ab"},
               {"kind": "commit", "value": "9f1c2ab"}])
    got = await get(app, order)
    assert got["status"] == "submitted"
    assert got["args"] == {"retries": 3, "flags": ["a", "b"], "opts": {"dry": True},
                           "none": None}
    assert {k: got["target"][k] for k in ("workOrderId", "targetRepo", "targetBranch")} == {
        "workOrderId": order, "targetRepo": "acme/exporter", "targetBranch": "release/2.4"}
    assert sorted((link["kind"], link["value"]) for link in got["links"]) == [
        ("commit", "9f1c2ab"),
        ("github_issue", "https://github.com/acme/exporter/issues/41")], "stored once each"
    assert len(await rows(app, "work_order_args", order)) == 4


async def test_create_is_all_or_nothing(app: Engine) -> None:
    session = await new_session(app)
    before = await snapshot(app)
    with pytest.raises(ValidationError, match="larger than the limit"):
        await app.run_mutation("workOrders:create", {
            "sessionId": session, "workflowType": "w", "prompt": "p", "title": "t",
            "requestedBy": "u", "args": {"ok": 1, "huge": "x" * (1 << 20)}})
    assert await snapshot(app) == before


@pytest.mark.parametrize(("change", "error"), [
    ({"status": "running"}, r"args\.status"),
    ({"status": "canceled"}, r"args\.status"),
    ({"title": None}, r"args\.title"),
    ({"target": {"targetRepo": "r"}}, "missing required field 'targetBranch'"),
    ({"links": [{"kind": "tweet", "value": "x"}]}, r"args\.links\[0\]\.kind"),
    ({"args": ["not", "a", "record"]}, r"args\.args"),
])
async def test_create_refuses_bad_args_and_writes_nothing(
    app: Engine, change: dict[str, Any], error: str
) -> None:
    session = await new_session(app)
    before = await snapshot(app)
    with pytest.raises(ValidationError, match=error):
        await app.run_mutation("workOrders:create", {
            "sessionId": session, "workflowType": "w", "prompt": "p", "title": "t",
            "requestedBy": "u", **change})
    assert await snapshot(app) == before


async def test_create_for_a_missing_or_wrong_session_writes_nothing(app: Engine) -> None:
    _, order = await new_order(app)
    before = await snapshot(app)
    ghost = missing_id(app, "chat_sessions")
    with pytest.raises(ConvexError) as info:
        await new_order(app, ghost, args={"a": 1}, target={"targetRepo": "r",
                                                           "targetBranch": "b"},
                        links=[{"kind": "pr", "value": "u"}])
    assert info.value.data["code"] == "not_found" and info.value.data["id"] == ghost
    assert info.value.message == f"chat session {ghost} does not exist"
    with pytest.raises(ValidationError, match="expected an id of table 'chat_sessions', "
                                              "got an id of table 'work_orders'"):
        await new_order(app, order)
    assert await snapshot(app) == before


async def test_get_errors(app: Engine) -> None:
    session, _ = await new_order(app)
    ghost = missing_id(app, "work_orders")
    with pytest.raises(ConvexError, match=f"work order {ghost} does not exist") as info:
        await get(app, ghost)
    assert info.value.data["code"] == "not_found"
    with pytest.raises(ValidationError, match="expected an id of table 'work_orders'"):
        await get(app, session)


# -- the status machine ---------------------------------------------------------------------

@pytest.mark.parametrize(("start", "end"), sorted(LEGAL))
async def test_every_legal_move(app: Engine, start: str, end: str) -> None:
    session, order = await new_order(app)
    for status in ROUTE[start]:
        await move(app, order, status)
    before = await get(app, order)
    assert before["status"] == start
    after = await move(app, order, end)
    assert after["status"] == end and after["_id"] == order
    assert after["updatedAt"] > before["updatedAt"] and after["createdAt"] == before["createdAt"]
    assert (await get(app, order))["status"] == end
    bumped = (await app.run_query("chatSessions:get", {"sessionId": session})).value
    assert bumped["updatedAt"] == after["updatedAt"]


@pytest.mark.parametrize("start", STATUSES)
async def test_every_illegal_move_is_refused_and_writes_nothing(app: Engine,
                                                                start: str) -> None:
    _, order = await new_order(app)
    for status in ROUTE[start]:
        await move(app, order, status)
    allowed = sorted(end for s, end in LEGAL if s == start)
    before = await snapshot(app)
    for end in STATUSES:
        if (start, end) in LEGAL:
            continue
        with pytest.raises(ConvexError) as info:
            await move(app, order, end)
        data = info.value.data
        assert (data["code"], data["from"], data["to"]) == ("illegal_transition", start, end)
        assert sorted(data["allowed"]) == allowed
        assert info.value.message.startswith(f"cannot move a work order from {start} to {end}")
        assert await snapshot(app) == before
    if not allowed:
        assert info.value.message.endswith("(allowed: none: it is final)")


async def test_update_status_errors(app: Engine) -> None:
    session, order = await new_order(app)
    before = await snapshot(app)
    ghost = missing_id(app, "work_orders")
    with pytest.raises(ConvexError, match=f"work order {ghost} does not exist"):
        await move(app, ghost, "submitted")
    with pytest.raises(ValidationError, match="expected an id of table 'work_orders'"):
        await move(app, session, "submitted")
    with pytest.raises(ValidationError, match=r"args\.status"):
        await move(app, order, "paused")
    assert await snapshot(app) == before


# -- listBySession --------------------------------------------------------------------------

async def test_list_by_session_in_created_order_with_pages(app: Engine) -> None:
    session = await new_session(app)
    other = await new_session(app)
    made = [(await new_order(app, session, title=f"o{i}"))[1] for i in range(5)]
    await new_order(app, other)
    await move(app, made[0], "submitted")  # a change does not reorder the list
    listed = await ask(app, "workOrders:listBySession", {"sessionId": session})
    assert [o["_id"] for o in listed] == made
    assert [o["title"] for o in listed] == [f"o{i}" for i in range(5)]
    assert listed[0]["status"] == "submitted"
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        page = await ask(app, "workOrders:listBySession", {
            "sessionId": session, "paginationOpts": {"numItems": 2, "cursor": cursor}})
        assert len(page["page"]) <= 2
        seen += [o["_id"] for o in page["page"]]
        cursor = page["continueCursor"]
        if page["isDone"]:
            break
    assert seen == made
    assert await ask(app, "workOrders:listBySession",
                     {"sessionId": missing_id(app, "chat_sessions")}) == []
    with pytest.raises(ValidationError, match="expected an id of table 'chat_sessions'"):
        await ask(app, "workOrders:listBySession", {"sessionId": made[0]})


# -- args, targets, links -------------------------------------------------------------------

async def test_args_upsert_one_row_per_name(app: Engine) -> None:
    _, order = await new_order(app, args={"retries": 3})
    first_row = (await rows(app, "work_order_args", order))[0]["_id"]
    before = await get(app, order)
    same = await call(app, "workOrderArgs:upsert", {"workOrderId": order, "name": "retries",
                                                    "value": 5})
    assert same == first_row
    new = await call(app, "workOrderArgs:upsert", {"workOrderId": order, "name": "env",
                                                   "value": {"CI": "1"}})
    assert new != first_row
    got = await get(app, order)
    assert got["args"] == {"retries": 5, "env": {"CI": "1"}}
    assert got["updatedAt"] > before["updatedAt"] and got["status"] == "draft"
    assert sorted(r["name"] for r in await rows(app, "work_order_args", order)) == [
        "env", "retries"]
    _, other = await new_order(app)
    await call(app, "workOrderArgs:upsert", {"workOrderId": other, "name": "retries",
                                             "value": 0})
    assert (await get(app, order))["args"]["retries"] == 5
    assert (await get(app, other))["args"] == {"retries": 0}


async def test_target_upsert_keeps_exactly_one_row(app: Engine) -> None:
    _, order = await new_order(app)
    first = await call(app, "workOrderTargets:upsert", {
        "workOrderId": order, "targetRepo": "acme/a", "targetBranch": "main"})
    before = await get(app, order)
    again = await call(app, "workOrderTargets:upsert", {
        "workOrderId": order, "targetRepo": "acme/b", "targetBranch": "dev"})
    assert again == first
    got = await get(app, order)
    assert (got["target"]["targetRepo"], got["target"]["targetBranch"]) == ("acme/b", "dev")
    assert got["updatedAt"] > before["updatedAt"]
    assert len(await rows(app, "work_order_targets", order)) == 1
    _, created_with = await new_order(app, target={"targetRepo": "x", "targetBranch": "y"})
    await call(app, "workOrderTargets:upsert", {"workOrderId": created_with,
                                                "targetRepo": "x", "targetBranch": "z"})
    assert len(await rows(app, "work_order_targets", created_with)) == 1


async def test_links_add_once_per_kind_and_value(app: Engine) -> None:
    _, order = await new_order(app, links=[{"kind": "pr", "value": "https://x/pull/1"}])
    before = await get(app, order)
    existing = before["links"][0]["_id"]
    same = await call(app, "workOrderLinks:add", {"workOrderId": order, "kind": "pr",
                                                  "value": "https://x/pull/1"})
    assert same == existing
    assert await get(app, order) == before, "a duplicate link changes nothing"
    await call(app, "workOrderLinks:add", {"workOrderId": order, "kind": "commit",
                                           "value": "abc123"})
    await call(app, "workOrderLinks:add", {"workOrderId": order, "kind": "github_issue",
                                           "value": "https://x/issues/2"})
    await call(app, "workOrderLinks:add", {"workOrderId": order, "kind": "pr",
                                           "value": "https://x/pull/3"})
    got = await get(app, order)
    assert [(link["kind"], link["value"]) for link in got["links"]] == [
        ("commit", "abc123"), ("github_issue", "https://x/issues/2"),
        ("pr", "https://x/pull/1"), ("pr", "https://x/pull/3")]
    assert got["updatedAt"] > before["updatedAt"]


@pytest.mark.parametrize(("path", "args"), [
    ("workOrderArgs:upsert", {"name": "a", "value": 1}),
    ("workOrderTargets:upsert", {"targetRepo": "r", "targetBranch": "b"}),
    ("workOrderLinks:add", {"kind": "commit", "value": "abc"}),
])
async def test_children_need_an_existing_order_of_the_right_table(
    app: Engine, path: str, args: dict[str, Any]
) -> None:
    session, _ = await new_order(app)
    before = await snapshot(app)
    ghost = missing_id(app, "work_orders")
    with pytest.raises(ConvexError) as info:
        await call(app, path, {"workOrderId": ghost, **args})
    assert info.value.data == {"code": "not_found", "what": "work order", "id": ghost,
                               "message": f"work order {ghost} does not exist"}
    with pytest.raises(ValidationError, match="expected an id of table 'work_orders', "
                                              "got an id of table 'chat_sessions'"):
        await call(app, path, {"workOrderId": session, **args})
    assert await snapshot(app) == before


@pytest.mark.parametrize(("path", "args", "error"), [
    ("workOrderArgs:upsert", {"name": 1, "value": 1}, r"args\.name"),
    ("workOrderArgs:upsert", {"name": "a"}, "missing required field 'value'"),
    ("workOrderTargets:upsert", {"targetRepo": "r"}, "missing required field 'targetBranch'"),
    ("workOrderLinks:add", {"kind": "tweet", "value": "x"}, r"args\.kind"),
    ("workOrderLinks:add", {"kind": "pr", "value": None}, r"args\.value"),
])
async def test_children_refuse_bad_args(app: Engine, path: str, args: dict[str, Any],
                                        error: str) -> None:
    _, order = await new_order(app)
    before = await snapshot(app)
    with pytest.raises(ValidationError, match=error):
        await call(app, path, {"workOrderId": order, **args})
    assert await snapshot(app) == before


async def test_concurrent_upserts_keep_one_row_per_name_and_one_target(app: Engine) -> None:
    _, order = await new_order(app)
    await asyncio.gather(*(
        app.run_mutation("workOrderArgs:upsert", {"workOrderId": order, "name": "retries",
                                                  "value": i}) for i in range(8)
    ), *(
        app.run_mutation("workOrderTargets:upsert", {"workOrderId": order, "targetRepo":
                                                     f"r{i}", "targetBranch": "main"})
        for i in range(8)
    ), *(
        app.run_mutation("workOrderLinks:add", {"workOrderId": order, "kind": "pr",
                                                "value": "https://x/pull/1"}) for _ in range(8)
    ))
    assert len(await rows(app, "work_order_args", order)) == 1
    assert len(await rows(app, "work_order_targets", order)) == 1
    assert len(await rows(app, "work_order_links", order)) == 1
    got = await get(app, order)
    assert got["args"]["retries"] in range(8) and got["target"]["targetRepo"] in {
        f"r{i}" for i in range(8)}
