"""The GitHub webhook end to end: signature check, store first, scheduled processing that
links work orders, failures with backoff and the retry cron."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import until

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret"


def signed(payload: Any, secret: str = SECRET) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    return body, "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()




@pytest.fixture
async def server(serve: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("GITHUB_WEBHOOK_SECRET", raising=False)
    url, deployment = await serve(ROOT)
    await deployment.update_environment([("GITHUB_WEBHOOK_SECRET", SECRET)])
    async with httpx.AsyncClient(base_url=url) as http:
        yield http, deployment.engine


async def test_a_signed_pr_delivery_is_stored_and_linked(server: Any) -> None:
    http, engine = server
    session = (await engine.run_mutation("chatSessions:create",
                                         {"userId": "u", "title": "t"})).value
    order = (await engine.run_mutation("workOrders:create", {
        "sessionId": session, "workflowType": "fix", "prompt": "p", "title": "t",
        "requestedBy": "u"})).value
    payload = {"action": "opened", "pull_request": {
        "html_url": "https://github.com/o/r/pull/7", "title": "Fix the bug",
        "body": f"Implements work order: {order}"}}
    body, signature = signed(payload)
    response = await http.post("/webhooks/github", content=body, headers={
        "X-Hub-Signature-256": signature, "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": "d-1"})
    assert response.status_code == 200 and "stored" in response.json()

    async def linked() -> Any:
        got = (await engine.run_query("workOrders:get", {"workOrderId": order})).value
        return got["links"]

    links = await until(linked)
    assert [(link["kind"], link["value"]) for link in links] == [
        ("pr", "https://github.com/o/r/pull/7")]
    events = (await engine.run_query("webhooks:list", {"status": "processed"})).value
    assert len(events) == 1 and events[0]["deliveryId"] == "d-1"
    again = await http.post("/webhooks/github", content=body, headers={
        "X-Hub-Signature-256": signature, "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": "d-1"})
    assert again.json()["stored"] == events[0]["_id"], "a redelivery is stored once"


@pytest.mark.parametrize("signature", ["sha256=" + "0" * 64, "", "sha1=abc"])
async def test_a_bad_signature_is_401_and_nothing_is_stored(server: Any,
                                                            signature: str) -> None:
    http, engine = server
    body, _ = signed({"zen": "hi"})
    response = await http.post("/webhooks/github", content=body,
                               headers={"X-Hub-Signature-256": signature})
    assert response.status_code == 401
    assert (await engine.run_query("webhooks:list", {})).value == []


async def test_a_failing_delivery_is_marked_with_its_error_and_retried(server: Any) -> None:
    http, engine = server
    body, signature = signed({"pull_request": {"title": "no url"}})
    await http.post("/webhooks/github", content=body, headers={
        "X-Hub-Signature-256": signature, "X-GitHub-Event": "pull_request"})

    async def failed() -> Any:
        return (await engine.run_query("webhooks:list", {"status": "failed"})).value

    event = (await until(failed))[0]
    assert event["error"] == "KeyError: 'html_url'" and event["attempts"] == 1
    assert event["nextAttemptAt"] > event["receivedAt"]
    await engine.run_mutation("webhooks:retryNow", {"eventId": event["_id"]})

    async def second_failure() -> Any:
        events = (await engine.run_query("webhooks:list", {"status": "failed"})).value
        return events if events and events[0]["attempts"] == 2 else None

    event = (await until(second_failure))[0]
    retried = (await engine.run_mutation("webhooks:retryFailed", {}, internal_ok=True)).value
    assert retried == 0, "the backoff has not passed yet"


async def test_no_secret_configured_refuses_everything(serve: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # The server process's own environment is not where the secret comes from.
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", SECRET)
    url, deployment = await serve(ROOT)
    body, signature = signed({"zen": "hi"})
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/webhooks/github", content=body,
                                   headers={"X-Hub-Signature-256": signature})
    assert response.status_code == 503
    assert "reactive-store env set GITHUB_WEBHOOK_SECRET" in response.json()["error"]
    assert (await deployment.engine.run_query("webhooks:list", {})).value == []


async def test_the_secret_is_read_from_the_deployment_and_changes_without_restart(
        serve: Any) -> None:
    url, deployment = await serve(ROOT)
    await deployment.update_environment([("GITHUB_WEBHOOK_SECRET", SECRET)])
    body, old_signature = signed({"zen": "rotate"})
    async with httpx.AsyncClient(base_url=url) as http:
        first = await http.post("/webhooks/github", content=body, headers={
            "X-Hub-Signature-256": old_signature, "X-GitHub-Delivery": "r-1"})
        assert first.status_code == 200
        await deployment.update_environment([("GITHUB_WEBHOOK_SECRET", "rotated")])
        refused = await http.post("/webhooks/github", content=body, headers={
            "X-Hub-Signature-256": old_signature, "X-GitHub-Delivery": "r-2"})
        assert refused.status_code == 401, "the old secret stops working at once"
        _, new_signature = signed({"zen": "rotate"}, "rotated")
        accepted = await http.post("/webhooks/github", content=body, headers={
            "X-Hub-Signature-256": new_signature, "X-GitHub-Delivery": "r-3"})
        assert accepted.status_code == 200
