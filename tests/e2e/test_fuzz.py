"""Hypothesis fuzz of the HTTP API and the sync protocol against a real server (issue 12).

Random and mutated JSON: requests built from valid ones with a field replaced by random JSON,
dropped, or the whole body random. What must hold: no HTTP 500 (a 400 always carries `code`
and `message`), no socket left hanging (after anything, a socket either answers an Action or
is closed with a close frame, never 1006, never 1011), and the server process stays up.
Examples are few and derandomized, so this runs in seconds and the same way in CI.

Two known defects are kept out of the generated input until they are fixed, each reproduced by
a strict xfail in test_hostile_input.py: a `format` that is not a string (item 2, a 500) and
non-ASCII text in what the server echoes into a close reason (item 4, a close without a close
frame). When those xfails start passing, drop `KNOWN_DEFECTS` below.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from websockets import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from tests.e2e.hostile_support import NOTES_APP, clean_error
from tests.e2e.servers import ServeApp
from tests.support import write_app

pytestmark = pytest.mark.e2e

KNOWN_DEFECTS = False  # issue 12 items 2 and 4 are fixed: the fuzz covers them too
TEXT = st.text(alphabet=st.characters(max_codepoint=0x7E), max_size=16) if KNOWN_DEFECTS \
    else st.text(max_size=16)

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

# Functions that validate their arguments and never raise by themselves (so an "Uncaught"
# error can only come from the server), an internal one, and malformed paths.
PATHS = st.sampled_from(["notes:add", "notes:list", "notes:echo", "notes:count", "notes:tick",
                         "", ":", "nope:x", "notes", "a/../b:c", "x" * 300])
SPECIAL = st.dictionaries(st.sampled_from(["$integer", "$float", "$bytes", "$set", "$x"]),
                          TEXT, min_size=1, max_size=1)
SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | TEXT | PATHS)
JSON = st.recursive(SCALARS | SPECIAL,
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(TEXT | st.sampled_from(["$a", "_id"]),
                                      inner, max_size=4),
                    max_leaves=10)

HTTP_VALID: dict[str, dict[str, Any]] = {
    "/api/query": {"path": "notes:list", "args": {"list": "fz"}, "format": "json"},
    "/api/mutation": {"path": "notes:add", "args": {"list": "fz", "body": "x"},
                      "format": "convex_encoded_json"},
    "/api/action": {"path": "notes:echo", "args": {"value": 1}},
    "/api/function": {"path": "notes:count", "args": {"list": "fz"}},
    "/api/run/notes/list": {"args": {"list": "fz"}},
    "/api/query_at_ts": {"path": "notes:list", "args": {"list": "fz"},
                         "ts": {"$integer": "AAAAAAAAAAA="}},
    "/api/query_batch": {"queries": [{"path": "notes:list", "args": {"list": "fz"}}]},
    "/api/query_ts": {},
}


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """`valid`, or it with one field replaced by random JSON or dropped, or random JSON."""
    how = draw(st.sampled_from(["valid", "replace", "replace", "drop", "random"]))
    body = dict(valid)
    if how == "random":
        return draw(JSON)
    if how == "replace":
        body[draw(st.sampled_from([*valid, "extra"]))] = draw(JSON)
    elif how == "drop" and body:
        del body[draw(st.sampled_from(sorted(body)))]
    return body


@st.composite
def http_requests(draw: st.DrawFn) -> tuple[str, bytes]:
    endpoint = draw(st.sampled_from(sorted(HTTP_VALID)))
    if draw(st.integers(0, 9)) == 0:
        return endpoint, draw(st.binary(max_size=64))
    return endpoint, json.dumps(draw(mutated(HTTP_VALID[endpoint]))).encode()


SYNC_VALID: list[dict[str, Any]] = [
    {"type": "Connect", "sessionId": "fuzz", "connectionCount": 0,
     "lastCloseReason": "InitialConnect", "clientTs": 0},
    {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [
        {"type": "Add", "queryId": 0, "udfPath": "notes:list", "args": [{"list": "fz"}]}]},
    {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
     "modifications": [{"type": "Remove", "queryId": 0}]},
    {"type": "Mutation", "requestId": 0, "udfPath": "notes:add",
     "args": [{"list": "fz", "body": "x"}]},
    {"type": "Action", "requestId": 1, "udfPath": "notes:echo", "args": [{"value": 1}]},
    {"type": "Authenticate", "baseVersion": 0, "tokenType": "None"},
    {"type": "Authenticate", "baseVersion": 0, "tokenType": "User", "value": "a.b.c"},
    {"type": "Event", "eventType": "x"},
]


@st.composite
def sync_messages(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(TEXT)
    return json.dumps(draw(mutated(draw(st.sampled_from(SYNC_VALID)))))


@pytest.fixture(scope="module")
async def url(module_serve_app: ServeApp, tmp_path_factory: pytest.TempPathFactory) -> str:
    return await module_serve_app(write_app(tmp_path_factory.mktemp("fuzz"), NOTES_APP))


def _format_not_a_string(body: bytes) -> bool:
    try:
        data = json.loads(body)
    except ValueError:
        return False
    items = [data] if isinstance(data, dict) else []
    if items and isinstance(items[0].get("queries"), list):
        items += [q for q in items[0]["queries"] if isinstance(q, dict)]
    return any("format" in item and not isinstance(item["format"], str) for item in items)


def check_http(http: httpx.Client, url: str, endpoint: str, body: bytes) -> None:
    if KNOWN_DEFECTS:
        assume(not _format_not_a_string(body))
    response = http.post(url + endpoint, content=body,
                         headers={"content-type": "application/json"})
    assert response.status_code in (200, 400, 401, 404, 405, 413), (
        endpoint, body[:200], response.status_code, response.text[:300])
    if response.status_code == 400:
        error = response.json()
        assert isinstance(error.get("code"), str) and isinstance(error.get("message"), str)
    if response.status_code == 200:
        result = response.json()
        for item in result.get("results", [result]):
            if item.get("status") == "error":
                assert clean_error(item["errorMessage"]), item


PING_ID = 2**32 - 1


def check_socket(url: str, connect_first: bool, messages: list[str]) -> None:
    with ws_connect("ws" + url.removeprefix("http") + "/api/sync", open_timeout=5,
                    close_timeout=1, max_size=None) as ws:
        try:
            if connect_first:
                ws.send(json.dumps(SYNC_VALID[0] | {"sessionId": "fuzz-" + str(id(messages))}))
            for text in messages:
                ws.send(text)
            # Whatever came before, the socket answers this, or it was closed properly.
            ws.send(json.dumps({"type": "Action", "requestId": PING_ID, "udfPath": "notes:echo",
                                "args": [{"value": "ping"}]}))
            while True:
                # Generous: on a loaded 2-core machine a mutation cancelled by the close can
                # take seconds to end; a socket that hangs still fails here.
                message = json.loads(ws.recv(timeout=15))
                if message.get("type") == "ActionResponse" and message["requestId"] == PING_ID:
                    return
        except ConnectionClosed as exc:
            assert exc.rcvd is not None, f"closed without a close frame after {messages}"
            assert exc.rcvd.code != 1011, f"internal error after {messages}: {exc.rcvd}"
        except TimeoutError:
            raise AssertionError(f"socket neither answered nor closed after {messages}") from None


async def test_http_api_fuzz(url: str, module_serve_app: ServeApp) -> None:
    with httpx.Client(timeout=10) as http:

        @FUZZ
        @given(http_requests())
        def fuzz(request: tuple[str, bytes]) -> None:
            check_http(http, url, *request)

        await asyncio.to_thread(fuzz)
    assert module_serve_app.server(url).running


async def test_sync_protocol_fuzz(url: str, module_serve_app: ServeApp) -> None:
    @FUZZ
    @given(st.booleans(), st.lists(sync_messages(), min_size=1, max_size=4))
    def fuzz(connect_first: bool, messages: list[str]) -> None:
        check_socket(url, connect_first, messages)

    await asyncio.to_thread(fuzz)
    assert module_serve_app.server(url).running


async def test_server_alive_after_fuzzing(url: str, module_serve_app: ServeApp) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(url + "/version")).status_code == 200
    assert module_serve_app.server(url).running

