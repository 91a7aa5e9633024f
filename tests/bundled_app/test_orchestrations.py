"""orchestrations: upsert by external id, turns upserted by index, worker PRs, getState."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from reactive_store.engine.engine import Engine
from reactive_store.errors import ConvexError, ValidationError
from tests.bundled_app.helpers import assert_indexed, snapshot


async def call(app: Engine, path: str, args: dict[str, Any]) -> Any:
    outcome = await app.run_mutation(path, args)
    assert_indexed(outcome)
    return outcome.value


async def state(app: Engine, orchestration: str) -> Any:
    outcome = await app.run_query("orchestrations:getState", {"orchestrationId": orchestration})
    assert_indexed(outcome)
    return outcome.value


async def upsert(app: Engine, orchestration: str, **fields: Any) -> str:
    doc_id: str = await call(app, "orchestrations:upsert", {
        "orchestrationId": orchestration, "topic": "Fix export", "repoUrl":
        "https://github.com/acme/exporter", "status": "running", **fields})
    return doc_id


async def turn(app: Engine, orchestration: str, index: float, **fields: Any) -> str:
    turn_id: str = await call(app, "orchestrations:appendTurn", {
        "orchestrationId": orchestration, "index": index, "threadId": "th-1", **fields})
    return turn_id


async def test_upsert_creates_then_updates_one_row(app: Engine) -> None:
    first = await upsert(app, "orc-1")
    created = await state(app, "orc-1")
    assert created["_id"] == first and created["orchestrationId"] == "orc-1"
    assert (created["topic"], created["status"]) == ("Fix export", "running")
    assert created["createdAt"] == created["updatedAt"]
    assert created["turns"] == [] and created["workerPrs"] == []
    again = await upsert(app, "orc-1", topic="Fix export (retry)", status="done",
                         repoUrl="https://github.com/acme/exporter2")
    assert again == first
    updated = await state(app, "orc-1")
    assert (updated["topic"], updated["status"], updated["repoUrl"]) == (
        "Fix export (retry)", "done", "https://github.com/acme/exporter2")
    assert updated["createdAt"] == created["createdAt"]
    assert updated["updatedAt"] > created["updatedAt"]
    assert await upsert(app, "orc-2") != first
    assert [o["orchestrationId"] for o in (await snapshot(app))["orchestrations"]] == [
        "orc-1", "orc-2"]


async def test_turns_in_index_order_and_upserted_by_index(app: Engine) -> None:
    await upsert(app, "orc-1")
    await upsert(app, "orc-10")  # a key that extends "orc-1" must not mix in
    ids = {}
    for index in (2, 0, 3, 1):
        ids[index] = await turn(app, "orc-1", index, finalResponse=f"turn {index}",
                                items=[{"type": "message", "i": index}],
                                usage={"inputTokens": 100 * index, "outputTokens": 7})
    await turn(app, "orc-10", 0, finalResponse="other")
    before = await state(app, "orc-1")
    assert [t["index"] for t in before["turns"]] == [0.0, 1.0, 2.0, 3.0]
    assert [t["_id"] for t in before["turns"]] == [ids[0], ids[1], ids[2], ids[3]]
    assert before["turns"][2]["usage"] == {"inputTokens": 200, "outputTokens": 7}
    assert before["turns"][2]["items"] == [{"type": "message", "i": 2}]
    # the same index again replaces the turn: same id, createdAt kept, omitted fields gone
    replaced = await turn(app, "orc-1", 1.0, threadId="th-2")
    assert replaced == ids[1]
    after = await state(app, "orc-1")
    assert [t["index"] for t in after["turns"]] == [0.0, 1.0, 2.0, 3.0]
    second = after["turns"][1]
    assert second["threadId"] == "th-2" and second["createdAt"] == before["turns"][1]["createdAt"]
    assert not {"finalResponse", "items", "usage"} & set(second)
    assert after["updatedAt"] > before["updatedAt"]
    rows = (await snapshot(app))["turns"]
    assert sorted((t["orchestrationId"], t["index"]) for t in rows) == [
        ("orc-1", 0.0), ("orc-1", 1.0), ("orc-1", 2.0), ("orc-1", 3.0), ("orc-10", 0.0)]
    assert [t["finalResponse"] for t in (await state(app, "orc-10"))["turns"]] == ["other"]


async def test_worker_prs_oldest_first(app: Engine) -> None:
    await upsert(app, "orc-1")
    await upsert(app, "orc-2")
    before = await state(app, "orc-1")
    first = await call(app, "orchestrations:recordWorkerPr", {
        "orchestrationId": "orc-1", "prUrl": "https://github.com/acme/exporter/pull/42",
        "branch": "fix/null-email", "commitSha": "9f1c2ab", "notes": "ready for review"})
    await call(app, "orchestrations:recordWorkerPr", {
        "orchestrationId": "orc-2", "prUrl": "https://x/pull/1", "branch": "b",
        "commitSha": "c"})
    second = await call(app, "orchestrations:recordWorkerPr", {
        "orchestrationId": "orc-1", "prUrl": "https://github.com/acme/exporter/pull/43",
        "branch": "fix/null-email-2", "commitSha": "77aa001"})
    got = await state(app, "orc-1")
    assert [p["_id"] for p in got["workerPrs"]] == [first, second]
    assert got["workerPrs"][0]["notes"] == "ready for review"
    assert "notes" not in got["workerPrs"][1]
    assert got["workerPrs"][0]["createdAt"] < got["workerPrs"][1]["createdAt"]
    assert got["updatedAt"] > before["updatedAt"]
    assert [p["prUrl"] for p in (await state(app, "orc-2"))["workerPrs"]] == [
        "https://x/pull/1"]


async def test_get_state_of_an_unknown_orchestration_is_none(app: Engine) -> None:
    assert await state(app, "nope") is None
    await upsert(app, "orc-1")
    assert await state(app, "orc") is None and await state(app, "orc-1 ") is None


@pytest.mark.parametrize(("path", "args"), [
    ("orchestrations:appendTurn", {"index": 0, "threadId": "t", "finalResponse": "x"}),
    ("orchestrations:recordWorkerPr", {"prUrl": "u", "branch": "b", "commitSha": "c"}),
])
async def test_writes_need_an_existing_orchestration(app: Engine, path: str,
                                                     args: dict[str, Any]) -> None:
    await upsert(app, "orc-1")
    before = await snapshot(app)
    with pytest.raises(ConvexError) as info:
        await call(app, path, {"orchestrationId": "ghost", **args})
    assert info.value.data == {"code": "not_found", "what": "orchestration", "id": "ghost",
                               "message": "orchestration ghost does not exist"}
    assert await snapshot(app) == before
    assert await state(app, "ghost") is None


@pytest.mark.parametrize("index", [-1, 0.5, math.inf, math.nan])
async def test_turn_index_must_be_a_whole_number(app: Engine, index: float) -> None:
    await upsert(app, "orc-1")
    before = await snapshot(app)
    with pytest.raises(ConvexError, match="turn index must be a whole number >= 0") as info:
        await turn(app, "orc-1", index)
    assert info.value.data["code"] == "invalid_argument"
    assert await snapshot(app) == before


@pytest.mark.parametrize(("path", "args", "error"), [
    ("orchestrations:upsert", {"orchestrationId": "o", "topic": "t", "repoUrl": "r"},
     "missing required field 'status'"),
    ("orchestrations:upsert", {"orchestrationId": 1, "topic": "t", "repoUrl": "r",
                               "status": "s"}, r"args\.orchestrationId"),
    ("orchestrations:appendTurn", {"orchestrationId": "orc-1", "index": "0",
                                   "threadId": "t"}, r"args\.index"),
    ("orchestrations:appendTurn", {"orchestrationId": "orc-1", "index": 0, "threadId": "t",
                                   "finalResponse": 5}, r"args\.finalResponse"),
    ("orchestrations:recordWorkerPr", {"orchestrationId": "orc-1", "prUrl": "u",
                                       "branch": "b"}, "missing required field 'commitSha'"),
    ("orchestrations:recordWorkerPr", {"orchestrationId": "orc-1", "prUrl": "u",
                                       "branch": "b", "commitSha": "c", "notes": 1},
     r"args\.notes"),
])
async def test_bad_args_are_refused_and_write_nothing(app: Engine, path: str,
                                                      args: dict[str, Any],
                                                      error: str) -> None:
    await upsert(app, "orc-1")
    before = await snapshot(app)
    with pytest.raises(ValidationError, match=error):
        await app.run_mutation(path, args)
    assert await snapshot(app) == before


async def test_concurrent_upserts_keep_one_orchestration_and_one_turn_per_index(
    app: Engine,
) -> None:
    await asyncio.gather(*(upsert(app, "orc-1", status=f"s{i}") for i in range(8)))
    await asyncio.gather(*(turn(app, "orc-1", i % 2, finalResponse=f"r{i}") for i in range(8)))
    rows = await snapshot(app)
    assert len(rows["orchestrations"]) == 1
    assert sorted(t["index"] for t in rows["turns"]) == [0.0, 1.0]
