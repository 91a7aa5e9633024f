"""The bundled app's search: chatMessages:search within a session (text, live) and
workOrders:similar by embedding (vector, live), with small deterministic vectors."""

from __future__ import annotations

from typing import Any

import pytest

from reactive_store.engine.engine import Engine
from reactive_store.errors import ValidationError

DIMENSIONS = 64


async def new_session(app: Engine, user: str = "u") -> str:
    return str((await app.run_mutation("chatSessions:create",
                                       {"userId": user, "title": "chat"})).value)


async def say(app: Engine, session: str, content: str) -> str:
    return str((await app.run_mutation("chatMessages:append", {
        "sessionId": session, "role": "user", "content": content})).value)


async def search(app: Engine, session: str, text: str, **extra: Any) -> list[str]:
    outcome = await app.run_query("chatMessages:search",
                                  {"sessionId": session, "text": text, **extra})
    return [m["content"] for m in outcome.value]


async def test_message_search_within_a_session(app: Engine) -> None:
    s1, s2 = await new_session(app), await new_session(app)
    await say(app, s1, "The deploy to staging failed")
    await say(app, s1, "Lunch at noon?")
    await say(app, s1, "deploy again after the fix; deploy logs attached")
    await say(app, s2, "deploy in another session")
    assert await search(app, s1, "deploy") == [
        "deploy again after the fix; deploy logs attached", "The deploy to staging failed"]
    assert await search(app, s1, "DEPLOY, failed!") == [
        "The deploy to staging failed", "deploy again after the fix; deploy logs attached"]
    assert await search(app, s1, "lun") == ["Lunch at noon?"]
    assert await search(app, s1, "deploy", limit=1.0) == [
        "deploy again after the fix; deploy logs attached"]
    assert await search(app, s1, "...") == []
    assert await search(app, s2, "deploy") == ["deploy in another session"]


async def test_message_search_is_live(app: Engine) -> None:
    manager = app.deployment.subscriptions  # type: ignore[attr-defined]
    session = await new_session(app)
    await say(app, session, "first deploy")
    live = manager.subscribe("chatMessages:search", {"sessionId": session, "text": "deploy"},
                             None, lambda: None)
    await manager.settled()
    runs = live.runs
    outcome = await app.run_mutation("chatMessages:append", {
        "sessionId": session, "role": "user", "content": "unrelated words"})
    await manager.settled(outcome.ts)
    assert live.runs == runs  # no shared term: no re-run
    outcome = await app.run_mutation("chatMessages:append", {
        "sessionId": session, "role": "user", "content": "second deploy"})
    await manager.settled(outcome.ts)
    assert live.runs == runs + 1
    assert sorted(m["content"] for m in live.value) == ["first deploy", "second deploy"]


def unit(i: int, j: int | None = None) -> list[float]:
    vector = [0.0] * DIMENSIONS
    vector[i] = 1.0
    if j is not None:
        vector[j] = 1.0
    return vector


async def order(app: Engine, session: str, title: str, prompt: str = "do it") -> str:
    return str((await app.run_mutation("workOrders:create", {
        "sessionId": session, "workflowType": "code", "prompt": prompt, "title": title,
        "requestedBy": "u"})).value)


async def similar(app: Engine, order_id: str) -> list[tuple[str, float]]:
    outcome = await app.run_query("workOrders:similar", {"workOrderId": order_id})
    return [(hit["workOrder"]["title"], round(hit["score"], 4)) for hit in outcome.value]


async def test_similar_work_orders_by_embedding(app: Engine) -> None:
    s1, s2 = await new_session(app, "u"), await new_session(app, "u")
    other_user = await new_session(app, "someone else")
    a = await order(app, s1, "a")
    b = await order(app, s1, "b")
    c = await order(app, s2, "c")
    d = await order(app, other_user, "d")
    for order_id, vector in ((a, unit(0)), (b, unit(0, 1)), (c, unit(1)), (d, unit(0))):
        await app.run_mutation("workOrders:setEmbedding", {"workOrderId": order_id,
                                                           "embedding": vector})
    # Same user's sessions only (d is another user's), itself left out, most similar first.
    assert await similar(app, a) == [("b", 0.7071), ("c", 0.0)]
    assert await similar(app, c) == [("b", 0.7071), ("a", 0.0)]
    with pytest.raises(ValidationError, match="vector has 3 dimensions, the index expects 64"):
        await app.run_mutation("workOrders:setEmbedding", {"workOrderId": a,
                                                           "embedding": [1.0, 2.0, 3.0]})


async def test_created_orders_get_a_computed_embedding(app: Engine) -> None:
    session = await new_session(app)
    fix = await order(app, session, "Fix the login bug", "users cannot log in with SSO")
    await order(app, session, "Login bug with SSO", "fix the SSO login for users")
    await order(app, session, "Quarterly report", "write the numbers up")
    titles = [title for title, _ in await similar(app, fix)]
    assert titles[0] == "Login bug with SSO"
    stored = (await app.run_query("workOrders:get", {"workOrderId": fix})).value
    assert len(stored["embedding"]) == DIMENSIONS
