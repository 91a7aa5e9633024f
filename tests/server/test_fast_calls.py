"""Function calls without an Origin header are answered before the routing stack, exactly as
the routed endpoints answer them (those with an Origin go the full way, CORS included)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from reactive_store import values
from reactive_store.limits import ServerLimits
from reactive_store.server import create_app
from tests.support import ACCOUNTS_APP

ORIGIN = "https://app.example.test"
FAILING = """
from reactive_store import ConvexError, mutation

@mutation(args={})
async def fails(ctx):
    raise ConvexError({"why": "asked to"})

@mutation(args={})
async def crashes(ctx):
    raise RuntimeError("boom")
"""


@pytest.fixture
async def setup(make_app: Any, deploy: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    engine = await deploy(make_app({**ACCOUNTS_APP, "functions/failing.py": FAILING}))
    engine.deployment.auth.admin_key = "fast-admin-key"
    engine.deployment.settings.cors_origins = (ORIGIN,)
    engine.deployment.settings.limits = ServerLimits(request_body_bytes=1000)
    app = create_app(engine.deployment, manage_lifespan=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        yield app, client


CALLS: list[tuple[str, Any, dict[str, str]]] = [
    ("/api/query", {"path": "accounts:total", "args": {}}, {}),
    ("/api/query", {"path": "accounts:total", "args": [{}], "format": "convex_encoded_json"},
     {}),
    ("/api/mutation", {"path": "failing:fails", "args": {}}, {}),
    ("/api/mutation", {"path": "failing:crashes", "args": {}}, {}),
    ("/api/function", {"path": "accounts:total", "args": {}}, {}),
    ("/api/action", {"path": "accounts:total", "args": {}}, {}),
    ("/api/query", {"path": "accounts:nope", "args": {}}, {}),
    ("/api/query", {"path": "not a path", "args": {}}, {}),
    ("/api/query", {"path": "accounts:total", "args": 5}, {}),
    ("/api/query", {"path": "accounts:total", "format": "xml"}, {}),
    ("/api/query", [1, 2], {}),
    ("/api/query", b"{not json", {}),
    ("/api/query", b"", {}),
    ("/api/query", {"path": "accounts:total", "args": {}},
     {"authorization": "Bearer not-a-token"}),
    ("/api/query", {"path": "accounts:total", "args": {}},
     {"authorization": "Convex fast-admin-key"}),
    ("/api/mutation", b"{" + b" " * 2000 + b"}", {}),
]


@pytest.mark.parametrize(("path", "body", "headers"), CALLS)
async def test_the_same_answer_with_and_without_an_origin(
        setup: tuple[Any, httpx.AsyncClient], path: str, body: Any,
        headers: dict[str, str]) -> None:
    _, client = setup
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    direct = await client.post(path, content=content, headers=headers)
    routed = await client.post(path, content=content, headers={**headers, "origin": ORIGIN})
    assert direct.status_code == routed.status_code
    assert direct.json() == routed.json()
    assert direct.headers["content-type"] == routed.headers["content-type"]
    assert "access-control-allow-origin" not in direct.headers
    if routed.status_code != 413:  # refused before CORS, as every route's
        assert routed.headers["access-control-allow-origin"] == ORIGIN


async def test_a_mutation_runs_once_on_the_direct_path(
        setup: tuple[Any, httpx.AsyncClient]) -> None:
    _, client = setup
    response = await client.post("/api/mutation", json={
        "path": "accounts:open", "args": {"owner": "ann", "balance": values.encode(5)}})
    assert response.json()["status"] == "success"
    total = await client.post("/api/query", json={"path": "accounts:total", "args": {}})
    assert total.json()["value"] == "5"  # an int64 in the clean JSON format


async def test_a_body_cut_by_a_disconnect_is_never_run(
        setup: tuple[Any, httpx.AsyncClient]) -> None:
    """The complete JSON of a mutation arrives, but the client leaves before the rest of
    what its Content-Length promised: nothing runs and nothing is sent."""
    app, client = setup
    body = orjson.dumps({"path": "accounts:open",
                         "args": {"owner": "cut", "balance": values.encode(7)}})
    messages = [{"type": "http.request", "body": body, "more_body": True},
                {"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/api/mutation", "raw_path":
             b"/api/mutation", "query_string": b"", "root_path": "", "headers": [
                 (b"content-length", str(len(body) + 50).encode()),
                 (b"content-type", b"application/json")],
             "client": ("127.0.0.1", 1), "server": ("test", 80)}
    await app(scope, receive, send)
    assert sent == []
    total = await client.post("/api/query", json={"path": "accounts:total", "args": {}})
    assert total.json()["value"] == "0"


async def test_other_methods_and_paths_take_the_routed_way(
        setup: tuple[Any, httpx.AsyncClient]) -> None:
    _, client = setup
    got = await client.get("/api/query", params={"path": "accounts:total", "args": "{}"})
    assert got.status_code == 200 and got.json()["value"] == "0"
    wrong = await client.get("/api/mutation")
    assert wrong.status_code == 404  # no GET route: the app routes answer it
