"""orchestrations: upsert by external id, turns upserted by index, worker PRs, getState."""

from __future__ import annotations

from typing import Any

import pytest

from reactive_store.errors import ConvexError


async def test_orchestration_state(app: Any) -> None:
    first = (await app.run_mutation("orchestrations:upsert", {
        "orchestrationId": "orc-1", "topic": "t", "repoUrl": "https://x/r",
        "status": "running"})).value
    again = (await app.run_mutation("orchestrations:upsert", {
        "orchestrationId": "orc-1", "topic": "t2", "repoUrl": "https://x/r",
        "status": "done"})).value
    assert first == again
    for index in (2.0, 0.0, 1.0):
        await app.run_mutation("orchestrations:appendTurn", {
            "orchestrationId": "orc-1", "index": index, "threadId": "th",
            "finalResponse": f"turn {index:g}", "usage": {"tokens": 10}})
    await app.run_mutation("orchestrations:appendTurn", {
        "orchestrationId": "orc-1", "index": 1.0, "threadId": "th2", "items": [1, 2]})
    await app.run_mutation("orchestrations:recordWorkerPr", {
        "orchestrationId": "orc-1", "prUrl": "https://x/pr/1", "branch": "b",
        "commitSha": "abc", "notes": "n"})
    state = (await app.run_query("orchestrations:getState", {"orchestrationId": "orc-1"})).value
    assert state["topic"] == "t2" and state["status"] == "done"
    assert [t["index"] for t in state["turns"]] == [0.0, 1.0, 2.0]
    assert state["turns"][1]["threadId"] == "th2" and "finalResponse" not in state["turns"][1]
    assert [p["prUrl"] for p in state["workerPrs"]] == ["https://x/pr/1"]
    assert (await app.run_query("orchestrations:getState",
                                {"orchestrationId": "nope"})).value is None


async def test_turns_and_prs_need_an_orchestration(app: Any) -> None:
    with pytest.raises(ConvexError, match="orchestration ghost does not exist"):
        await app.run_mutation("orchestrations:appendTurn", {
            "orchestrationId": "ghost", "index": 0.0, "threadId": "t"})
    with pytest.raises(ConvexError, match="does not exist"):
        await app.run_mutation("orchestrations:recordWorkerPr", {
            "orchestrationId": "ghost", "prUrl": "u", "branch": "b", "commitSha": "c"})
    assert (await app.run_query("orchestrations:getState",
                                {"orchestrationId": "ghost"})).value is None
