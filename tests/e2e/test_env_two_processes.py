"""Environment variables across two real server processes on one deployment: a change made
with `reactive-store env set` through one process reaches a live query and an action on the
other within a second, and the bundled app's webhook there uses the new secret at once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from reactive_store.client import connect
from tests.e2e.clients import http_call
from tests.e2e.servers import ServeApp
from tests.support import write_app

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ADMIN_KEY = "e2e-env-admin-key"
APP = {
    "schema/__init__.py": """
        from reactive_store import define_schema
        schema = define_schema({})
    """,
    "functions/env.py": """
        from reactive_store import action, query, v

        @query(args={"name": v.string()})
        async def read(ctx, name):
            return ctx.env.get(name)

        @action(args={"name": v.string()})
        async def act(ctx, name):
            return ctx.env.get(name)
    """,
}


async def cli_env(*args: str) -> str:
    """Run `reactive-store env ...` as its own process; its stdout."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reactive_store", "env", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "REACTIVE_STORE_ADMIN_KEY": ADMIN_KEY})
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


@pytest.fixture(autouse=True)
def admin_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REACTIVE_STORE_ADMIN_KEY", ADMIN_KEY)  # the servers inherit it


async def test_a_change_through_one_process_reaches_the_other_within_a_second(
        serve_app: ServeApp, tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", APP)
    first = await serve_app(app)
    second = await serve_app(app, namespace=serve_app.server(first).namespace)
    async with connect(second) as client:
        updates = client.subscribe("env:read", {"name": "FEATURE_FLAG"})
        assert await anext(updates) is None
        assert await cli_env("set", "FEATURE_FLAG", "on", "--url", first) == "set FEATURE_FLAG\n"
        done = time.monotonic()
        assert await asyncio.wait_for(anext(updates), timeout=1.0) == "on"
        pushed_after = time.monotonic() - done
        assert await http_call(second, "action", "env:act", {"name": "FEATURE_FLAG"}) == "on"
        assert await cli_env("remove", "FEATURE_FLAG", "--url", second) == "removed FEATURE_FLAG\n"
        assert await asyncio.wait_for(anext(updates), timeout=1.0) is None
    assert pushed_after < 1.0
    assert await cli_env("list", "--url", first) == ""


def signed(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_the_webhook_on_another_process_uses_a_secret_set_through_the_first(
        serve_app: ServeApp) -> None:
    first = await serve_app(REPO)
    second = await serve_app(REPO, namespace=serve_app.server(first).namespace)
    body = json.dumps({"zen": "hello"}).encode()
    async with httpx.AsyncClient(base_url=second, timeout=10) as http:

        async def deliver(secret: str, delivery: str) -> int:
            response = await http.post("/webhooks/github", content=body, headers={
                "X-Hub-Signature-256": signed(body, secret), "X-GitHub-Delivery": delivery})
            return response.status_code

        assert await deliver("one", "d-0") == 503, "no secret configured yet"
        await cli_env("set", "GITHUB_WEBHOOK_SECRET", "one", "--url", first)
        deadline = time.monotonic() + 1.0
        while (status := await deliver("one", "d-1")) != 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert status == 200
        await cli_env("set", "GITHUB_WEBHOOK_SECRET", "two", "--url", first)
        deadline = time.monotonic() + 1.0
        while (status := await deliver("one", "d-2")) != 401 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert status == 401, "the old secret is refused once the change arrives"
        assert await deliver("two", "d-3") == 200
    stored: Any = await http_call(first, "query", "webhooks:list", {})
    assert sorted(event["deliveryId"] for event in stored) == ["d-1", "d-3"]
