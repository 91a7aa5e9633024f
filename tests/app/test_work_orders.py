"""workOrders and their args, targets and links: the status machine and every error."""

from __future__ import annotations

from typing import Any

import pytest

from reactive_store.errors import ConvexError, ValidationError

LEGAL = [("draft", "submitted"), ("submitted", "accepted"), ("accepted", "running"),
         ("running", "succeeded"), ("running", "failed")]
PATH = ["submitted", "accepted", "running"]


async def new_order(app: Any, **extra: Any) -> tuple[str, str]:
    session = (await app.run_mutation("chatSessions:create",
                                       {"userId": "u", "title": "s"})).value
    order = (await app.run_mutation("workOrders:create", {
        "sessionId": session, "workflowType": "bugfix", "prompt": "fix it", "title": "Fix",
        "requestedBy": "u", **extra})).value
    return session, order


async def move(app: Any, order: str, status: str) -> Any:
    return (await app.run_mutation("workOrders:updateStatus",
                                   {"workOrderId": order, "status": status})).value


async def test_create_with_everything_and_get(app: Any) -> None:
    _, order = await new_order(app, args={"retries": 3, "flags": ["a"]},
                               target={"targetRepo": "org/repo", "targetBranch": "main"},
                               links=[{"kind": "github_issue", "value": "https://x/1"}])
    got = (await app.run_query("workOrders:get", {"workOrderId": order})).value
    assert got["status"] == "draft" and got["args"] == {"retries": 3, "flags": ["a"]}
    assert got["target"]["targetRepo"] == "org/repo"
    assert [(link["kind"], link["value"]) for link in got["links"]] == [
        ("github_issue", "https://x/1")]
    await app.run_mutation("workOrderArgs:upsert", {"workOrderId": order, "name": "retries",
                                                    "value": 5})
    await app.run_mutation("workOrderArgs:upsert", {"workOrderId": order, "name": "new",
                                                    "value": "x"})
    await app.run_mutation("workOrderTargets:upsert", {"workOrderId": order,
                                                       "targetRepo": "org/other",
                                                       "targetBranch": "dev"})
    first = (await app.run_mutation("workOrderLinks:add", {
        "workOrderId": order, "kind": "pr", "value": "https://x/pr/2"})).value
    again = (await app.run_mutation("workOrderLinks:add", {
        "workOrderId": order, "kind": "pr", "value": "https://x/pr/2"})).value
    assert first == again
    got = (await app.run_query("workOrders:get", {"workOrderId": order})).value
    assert got["args"] == {"retries": 5, "flags": ["a"], "new": "x"}
    assert got["target"]["targetBranch"] == "dev" and len(got["links"]) == 2


@pytest.mark.parametrize(("start", "end"), LEGAL)
async def test_legal_transitions_move_updated_at(app: Any, start: str, end: str) -> None:
    _, order = await new_order(app)
    for status in PATH[: ["draft", *PATH].index(start)]:
        await move(app, order, status)
    before = (await app.run_query("workOrders:get", {"workOrderId": order})).value
    after = await move(app, order, end)
    assert after["status"] == end and after["updatedAt"] >= before["updatedAt"]


@pytest.mark.parametrize("start", ["draft", "submitted", "accepted", "running"])
async def test_any_non_final_can_be_canceled(app: Any, start: str) -> None:
    _, order = await new_order(app)
    for status in PATH[: ["draft", *PATH].index(start)]:
        await move(app, order, status)
    assert (await move(app, order, "canceled"))["status"] == "canceled"


@pytest.mark.parametrize(("path", "illegal"), [
    ([], "accepted"), ([], "running"), ([], "succeeded"), (["submitted"], "draft"),
    (["submitted", "accepted", "running", "succeeded"], "failed"),
    (["submitted", "accepted", "running", "failed"], "running"),
    (["canceled"], "submitted"), (["canceled"], "canceled"),
])
async def test_illegal_transitions_are_refused_and_write_nothing(
    app: Any, path: list[str], illegal: str
) -> None:
    _, order = await new_order(app)
    for status in path:
        await move(app, order, status)
    before = (await app.run_query("workOrders:get", {"workOrderId": order})).value
    with pytest.raises(ConvexError) as info:
        await move(app, order, illegal)
    assert info.value.data["code"] == "illegal_transition"
    assert info.value.data["from"] == before["status"] and info.value.data["to"] == illegal
    assert f"from {before['status']} to {illegal}" in info.value.message
    assert (await app.run_query("workOrders:get", {"workOrderId": order})).value == before


async def test_list_by_session_and_references(app: Any) -> None:
    session, first = await new_order(app)
    second = (await app.run_mutation("workOrders:create", {
        "sessionId": session, "workflowType": "w", "prompt": "p", "title": "Second",
        "requestedBy": "u", "status": "submitted"})).value
    listed = (await app.run_query("workOrders:listBySession", {"sessionId": session})).value
    assert [o["_id"] for o in listed] == [first, second] and listed[1]["status"] == "submitted"
    with pytest.raises(ValidationError, match=r"args\.status"):
        await app.run_mutation("workOrders:create", {
            "sessionId": session, "workflowType": "w", "prompt": "p", "title": "t",
            "requestedBy": "u", "status": "running"})
    with pytest.raises(ValidationError, match="expected an id of table 'work_orders'"):
        await app.run_mutation("workOrderArgs:upsert", {"workOrderId": session, "name": "a",
                                                        "value": 1})
    from reactive_store.ids import new_id

    ghost = new_id(app.store.table_numbers["work_orders"])
    for path, args in [("workOrderArgs:upsert", {"name": "a", "value": 1}),
                       ("workOrderTargets:upsert", {"targetRepo": "r", "targetBranch": "b"}),
                       ("workOrderLinks:add", {"kind": "commit", "value": "abc"}),
                       ("workOrders:updateStatus", {"status": "submitted"})]:
        with pytest.raises(ConvexError, match="does not exist"):
            await app.run_mutation(path, {"workOrderId": ghost, **args})
    with pytest.raises(ValidationError, match=r"args\.kind"):
        await app.run_mutation("workOrderLinks:add", {"workOrderId": first, "kind": "tweet",
                                                      "value": "x"})
    assert len((await app.run_query("workOrders:listBySession",
                                     {"sessionId": session})).value) == 2
