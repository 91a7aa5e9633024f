"""The HTTP function API in-process: request shapes, formats, and every error path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from reactive_store.limits import ServerLimits
from reactive_store.server import create_app
from reactive_store.sync.protocol import decode_ts, encode_ts
from tests.support import ACCOUNTS_APP

ECHO = """
from reactive_store import ConvexError, mutation, query, v

@query
async def echo(ctx, **args):
    return args

@query(args={"message": v.string()})
async def fail(ctx, message):
    raise ValueError(message)

@query(args={"data": v.any()})
async def fail_with_data(ctx, data):
    raise ConvexError(data)

@mutation(args={})
async def default(ctx):
    return "the default export"
"""


@pytest.fixture
async def client(make_app: Any, deploy: Any) -> AsyncIterator[httpx.AsyncClient]:
    engine = await deploy(make_app({**ACCOUNTS_APP, "functions/misc.py": ECHO}))
    app = create_app(engine.deployment, manage_lifespan=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def integer(n: int) -> dict[str, str]:
    import base64
    import struct

    return {"$integer": base64.b64encode(struct.pack("<q", n)).decode()}


async def post(client: httpx.AsyncClient, url: str, body: Any) -> Any:
    response = await client.post(url, json=body)
    return response.status_code, response.json()


async def test_version_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/version")
    assert response.status_code == 200 and "reactive-store" in response.text


async def test_mutation_then_query_in_both_arg_shapes(client: httpx.AsyncClient) -> None:
    status, body = await post(client, "/api/mutation", {
        "path": "accounts:open", "args": [{"owner": "ann", "balance": integer(7)}],
        "format": "convex_encoded_json"})
    assert status == 200 and body["status"] == "success" and isinstance(body["value"], str)
    status, body = await post(client, "/api/query", {
        "path": "accounts:by_owner", "args": {"owner": "ann"}, "format": "convex_encoded_json"})
    assert body["value"]["balance"] == integer(7) and body["logLines"] == []
    _, clean = await post(client, "/api/query", {"path": "accounts:by_owner",
                                                "args": {"owner": "ann"}})
    assert clean["value"]["balance"] == "7"


async def test_function_and_run_endpoints(client: httpx.AsyncClient) -> None:
    _, body = await post(client, "/api/function", {"path": "misc:echo", "args": {"a": 1},
                                                   "format": "convex_encoded_json"})
    assert body == {"status": "success", "value": {"a": 1.0}, "logLines": []}
    _, body = await post(client, "/api/run/misc/echo", {"args": {"b": "x"}})
    assert body["value"] == {"b": "x"}
    _, body = await post(client, "/api/mutation", {"path": "misc", "args": {}})
    assert body["value"] == "the default export"
    _, body = await post(client, "/api/mutation", {"path": "misc.js:default", "args": {}})
    assert body["value"] == "the default export"
    response = await client.get("/api/query", params={"path": "misc:echo", "args": '{"q": 2}'})
    assert response.json()["value"] == {"q": 2.0}


async def test_special_values_round_trip(client: httpx.AsyncClient) -> None:
    args = {"i": integer(-1), "nan": {"$float": "AAAAAAAA+H8="}, "inf": {"$float": "AAAAAAAA8H8="},
            "neg0": {"$float": "AAAAAAAAAIA="}, "b": {"$bytes": "AAEC"}, "n": None, "t": True,
            "nested": [{"x": [1.5]}]}
    _, body = await post(client, "/api/query", {"path": "misc:echo", "args": [args],
                                               "format": "convex_encoded_json"})
    assert body["value"] == args
    _, clean = await post(client, "/api/query", {"path": "misc:echo", "args": [args],
                                                "format": "json"})
    assert clean["value"]["i"] == "-1" and clean["value"]["nan"] == "NaN"
    assert clean["value"]["inf"] == "Infinity" and clean["value"]["b"] == "AAEC"


@pytest.mark.parametrize(
    ("url", "body", "message"),
    [
        ("/api/query", {"path": "nope:fn", "args": {}},
         "Could not find public function for 'nope:fn'."),
        ("/api/query", {"path": "accounts:open", "args": {}},
         "Trying to execute accounts:open as Query, but it is defined as Mutation."),
        ("/api/mutation", {"path": "accounts:by_owner", "args": {"owner": "x"}},
         "as Mutation, but it is defined as Query"),
        ("/api/mutation", {"path": "accounts:open", "args": {"owner": "x", "balance": 1}},
         "args.balance: expected int64, got float64"),
        ("/api/query", {"path": "misc:fail", "args": {"message": "kaput"}},
         "Uncaught ValueError: kaput"),
    ],
)
async def test_function_failures_are_200_with_error_message(
    client: httpx.AsyncClient, url: str, body: Any, message: str
) -> None:
    status, answer = await post(client, url, body)
    assert status == 200 and answer["status"] == "error"
    assert message in answer["errorMessage"] and "errorData" not in answer


async def test_convex_error_data_reaches_the_caller(client: httpx.AsyncClient) -> None:
    data = {"code": 7.0, "big": integer(9)}
    _, body = await post(client, "/api/query", {"path": "misc:fail_with_data",
                                               "args": {"data": data},
                                               "format": "convex_encoded_json"})
    assert body["status"] == "error" and body["errorData"] == data
    _, body = await post(client, "/api/query", {"path": "misc:fail_with_data",
                                               "args": {"data": "plain"}})
    assert body["errorMessage"] == "plain" and body["errorData"] == "plain"
    _, body = await post(client, "/api/query", {"path": "misc:fail_with_data",
                                               "args": {"data": data}, "format": "json"})
    assert body["errorData"] == {"code": 7.0, "big": "9"}


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (b"{not json", "BadJsonBody", "not valid JSON"),
        (b"[1, 2]", "BadJsonBody", "must be a JSON object"),
        (b'{"path": "misc:echo", "args": {}, "format": "yaml"}', "BadFormat", "unknown format"),
        (b'{"path": "misc:echo", "args": {}, "format": []}', "BadFormat", "got array"),
        (b'{"path": "misc:echo", "args": {}, "format": {"a": 1}}', "BadFormat", "got object"),
        (b'{"path": "misc:echo", "args": [1, 2]}', "InvalidArgs", "one object"),
        (b'{"path": "misc:echo", "args": "x"}', "InvalidArgs", "must be an object"),
        (b'{"path": "misc:echo", "args": {"a": {"$integer": "!!"}}}', "BadRequest",
         "not valid base64"),
        (b'{"path": "misc:echo", "args": {"a": {"$float": "AAAAAAAA8D8="}}}', "BadRequest",
         "NaN, Infinity or -0"),
        (b'{"path": "misc:echo", "args": {"a": {"$set": []}}}', "BadRequest", "no longer"),
        (b'{"path": "../x:y", "args": {}}', "BadConvexFunctionIdentifier", "invalid function"),
        (b'{"path": 5, "args": {}}', "BadConvexFunctionIdentifier", "non-empty string"),
    ],
)
async def test_malformed_requests_are_400_with_code(
    client: httpx.AsyncClient, content: bytes, code: str, message: str
) -> None:
    response = await client.post("/api/query", content=content)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code and message in body["message"]


async def test_query_ts_and_query_at_ts(client: httpx.AsyncClient) -> None:
    _, body = await post(client, "/api/mutation", {
        "path": "accounts:open", "args": {"owner": "t", "balance": integer(1)}})
    _, ts_body = await post(client, "/api/query_ts", None)
    ts = decode_ts(ts_body["ts"])
    assert ts > 0 and len(ts_body["ts"]) == 12
    # Later writes inside what the query reads: the answer is still the one at `ts`.
    await post(client, "/api/mutation", {"path": "accounts:open",
                                         "args": {"owner": "u", "balance": integer(5)}})
    await post(client, "/api/mutation", {"path": "accounts:transfer", "args": {
        "src": body["value"], "dst": body["value"], "amount": integer(0)}})
    _, body = await post(client, "/api/query_at_ts", {"path": "accounts:by_owner",
                                                     "args": {"owner": "t"}, "ts": ts_body["ts"]})
    assert body["status"] == "success" and body["value"]["owner"] == "t"
    _, total = await post(client, "/api/query_at_ts", {"path": "accounts:total", "args": {},
                                                      "ts": ts_body["ts"]})
    assert total == {"status": "success", "value": "1", "logLines": []}
    _, now = await post(client, "/api/query", {"path": "accounts:total", "args": {}})
    assert now["value"] == "6"
    # History began with this deployment: before its first commit there was nothing.
    _, empty = await post(client, "/api/query_at_ts", {"path": "accounts:total", "args": {},
                                                      "ts": encode_ts(1)})
    assert empty["value"] == "0"
    response = await client.post("/api/query_at_ts", json={
        "path": "accounts:by_owner", "args": {}, "ts": "short"})
    assert response.status_code == 400 and response.json()["code"] == "InvalidTimestamp"
    response = await client.post("/api/query_at_ts", json={
        "path": "accounts:by_owner", "args": {"owner": "t"}, "ts": encode_ts(ts * 2)})
    assert response.status_code == 400 and "future" in response.json()["message"]


async def test_query_batch(client: httpx.AsyncClient) -> None:
    _, body = await post(client, "/api/query_batch", {"queries": [
        {"path": "misc:echo", "args": {"a": 1}}, {"path": "nope:x", "args": {}}]})
    assert body["results"][0]["status"] == "success"
    assert body["results"][1]["status"] == "error"


async def test_a_web_folder_created_later_is_served(make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(ACCOUNTS_APP))
    app = create_app(engine.deployment, manage_lifespan=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as c:
        assert (await c.get("/")).status_code == 404
        web = engine.app.root / "web"
        web.mkdir()
        (web / "index.html").write_text("<h1>hello</h1>")
        response = await c.get("/")
        assert response.status_code == 200 and "hello" in response.text


@pytest.mark.parametrize("url", ["/api/mutation", "/api/run/misc/echo", "/api/query_at_ts"])
async def test_a_format_of_the_wrong_type_is_400_everywhere(client: httpx.AsyncClient,
                                                            url: str) -> None:
    response = await client.post(url, json={"path": "misc:echo", "args": {}, "format": [],
                                            "ts": "AAAAAAAAAAA="})
    assert response.status_code == 400 and response.json()["code"] == "BadFormat"
    batch = await client.post("/api/query_batch", json={"queries": [
        {"path": "misc:echo", "args": {}, "format": {"x": 1}}]})
    assert batch.status_code == 400 and batch.json()["code"] == "BadFormat"


async def test_bodies_over_the_limit_are_413_declared_or_streamed(
        make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app({**ACCOUNTS_APP, "functions/misc.py": ECHO}))
    engine.deployment.settings.limits = ServerLimits(request_body_bytes=1000)
    app = create_app(engine.deployment, manage_lifespan=False)
    chunks_sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        for _ in range(100):
            chunks_sent += 1
            yield b" " * 400

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        small = await client.post("/api/query", json={"path": "misc:echo", "args": {}})
        assert small.status_code == 200
        declared = await client.post("/api/mutation", content=b"{" + b" " * 2000 + b"}")
        assert declared.status_code == 413
        assert declared.json() == {"code": "PayloadTooLarge", "message":
                                   "request body is larger than the limit of 1000 bytes"}
        streamed = await client.post("/api/mutation", content=stream())
        assert streamed.status_code == 413 and streamed.json()["code"] == "PayloadTooLarge"
    assert chunks_sent < 10, "the rest of a refused body is not read"


async def test_query_at_a_pruned_ts_is_a_400_naming_the_oldest(make_app: Any,
                                                                deploy: Any) -> None:
    engine = await deploy(make_app(ACCOUNTS_APP))
    old = (await engine.run_mutation("accounts:open", {"owner": "a", "balance": 1})).ts
    newest = (await engine.run_mutation("accounts:open", {"owner": "b", "balance": 2})).ts
    await engine.store.prune(900, 3600, 0.0)
    app = create_app(engine.deployment, manage_lifespan=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as c:
        response = await c.post("/api/query_at_ts", json={
            "path": "accounts:total", "args": {}, "ts": encode_ts(old)})
        assert response.status_code == 400
        assert response.json()["code"] == "InvalidTimestamp"
        assert f"the oldest readable timestamp is {newest}" in response.json()["message"]
        response = await c.post("/api/query_at_ts", json={
            "path": "accounts:total", "args": {}, "ts": encode_ts(newest)})
        assert response.json()["value"] == "3"
