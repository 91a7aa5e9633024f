"""Token verification and access over HTTP and WebSocket, with real keys and a real server."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support import AUDIENCE, ISSUER, Keys, write_app

ADMIN_KEY = "admin-" + "k" * 40

FUNCTIONS = """
from reactive_store import internal_mutation, internal_query, mutation, query, v

@query
async def whoami(ctx):
    return await ctx.auth.get_user_identity()

@internal_query
async def secret(ctx):
    return "for admins"

@internal_mutation
async def secret_write(ctx):
    return "written"
"""


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)


@pytest.fixture
async def server(tmp_path: Path, keys: Keys, serve: Any) -> Any:
    config = (f"providers = [{{'issuer': {ISSUER!r}, 'audience': {AUDIENCE!r}, "
              f"'jwks': 'file://{keys.path}'}}]\n")
    app = write_app(tmp_path / "app", {"functions/auth.py": FUNCTIONS,
                                       "functions/auth_config.py": config})
    url, deployment = await serve(app, admin_key=ADMIN_KEY)
    async with httpx.AsyncClient(base_url=url) as http:
        yield url, http, deployment


async def whoami(http: httpx.AsyncClient, authorization: str | None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization else {}
    return await http.post("/api/query", json={"path": "auth:whoami", "args": {}},
                           headers=headers)


async def test_a_valid_token_gives_the_identity(server: Any, keys: Keys) -> None:
    _, http, _ = server
    body = (await whoami(http, "Bearer " + keys.token())).json()
    assert body["value"] == {"subject": "user-1", "issuer": ISSUER,
                             "tokenIdentifier": f"{ISSUER}|user-1", "name": "Ada",
                             "email": "ada@example.test"}
    es = (await whoami(http, "Bearer " + keys.token(alg="ES256", kid="ec-1"))).json()
    assert es["value"]["subject"] == "user-1"
    assert (await whoami(http, None)).json()["value"] is None


def _unsigned(keys: Keys) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT","kid":"rsa-1"}').rstrip(b"=")
    claims = json.dumps({"iss": ISSUER, "sub": "x", "aud": AUDIENCE,
                         "exp": int(time.time()) + 60}).encode()
    return f"{header.decode()}.{base64.urlsafe_b64encode(claims).rstrip(b'=').decode()}."


def _confused(keys: Keys) -> str:
    """HS256 signed with the RSA public key as the secret: the algorithm-confusion attack."""
    import hashlib
    import hmac

    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT","kid":"rsa-1"}').rstrip(b"=")
    claims = base64.urlsafe_b64encode(json.dumps({
        "iss": ISSUER, "sub": "x", "aud": AUDIENCE, "exp": int(time.time()) + 60}).encode()
    ).rstrip(b"=")
    signature = hmac.new(keys.public_pem(), header + b"." + claims, hashlib.sha256).digest()
    return b".".join([header, claims, base64.urlsafe_b64encode(signature).rstrip(b"=")]).decode()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda k: k.token()[:-6] + "AAAAAA", "token refused"),
        (_unsigned, "algorithm 'none' is not accepted"),
        (_confused, "algorithm 'HS256' is not accepted"),
        (lambda k: k.token(exp=int(time.time()) - 60), "expired"),
        (lambda k: k.token(nbf=int(time.time()) + 600), "not valid yet"),
        (lambda k: k.token(iss="https://evil.example.test"), "no auth provider"),
        (lambda k: k.token(aud="someone-else"), "not for this audience"),
        (lambda k: k.token(kid="rotated-away"), "no key 'rotated-away'"),
        (lambda k: k.token(padding="x" * 20000), "larger than"),
        (lambda k: "not-a-jwt", "malformed token"),
        (lambda k: k.token(exp=None), "token refused"),
    ],
)
async def test_refused_tokens_are_401_never_anonymous(server: Any, keys: Keys, make: Any,
                                                      message: str) -> None:
    _, http, _ = server
    response = await whoami(http, "Bearer " + make(keys))
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "Unauthenticated" and message in body["message"]
    assert "Traceback" not in response.text


async def test_rotated_keys_are_fetched_again(server: Any, keys: Keys,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import reactive_store.auth

    _, http, _ = server
    assert (await whoami(http, "Bearer " + keys.token())).status_code == 200
    keys.publish("rsa-2", "ec-2")
    monkeypatch.setattr(reactive_store.auth, "JWKS_REFRESH_SECONDS", 0.0)
    body = (await whoami(http, "Bearer " + keys.token(kid="rsa-2"))).json()
    assert body["value"]["subject"] == "user-1"


async def test_admin_key_reaches_internal_functions_and_impersonates(server: Any) -> None:
    _, http, _ = server
    call = {"path": "auth:secret", "args": {}}
    public = (await http.post("/api/query", json=call)).json()
    assert public["errorMessage"] == "Could not find public function for 'auth:secret'."
    wrong = await http.post("/api/query", json=call, headers={"Authorization": "Convex nope"})
    assert wrong.status_code == 401
    admin = (await http.post("/api/query", json=call,
                             headers={"Authorization": f"Convex {ADMIN_KEY}"})).json()
    assert admin["value"] == "for admins"
    acting = base64.b64encode(json.dumps({"subject": "u9", "issuer": "test"}).encode()).decode()
    who = (await http.post("/api/query", json={"path": "auth:whoami", "args": {}},
                           headers={"Authorization": f"Convex {ADMIN_KEY}:{acting}"})).json()
    assert who["value"] == {"subject": "u9", "issuer": "test"}


async def _connect(url: str) -> Any:
    ws = await websockets.connect(url.replace("http", "ws") + "/api/sync")
    await ws.send(json.dumps({"type": "Connect", "sessionId": "s", "connectionCount": 0,
                              "lastCloseReason": None, "clientTs": 0}))
    return ws


async def _recv(ws: Any) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if message["type"] != "Ping":
            return message


async def test_socket_identity_switch_and_no_leak_between_identities(server: Any,
                                                                     keys: Keys) -> None:
    url, _, deployment = server
    ada, bob = await _connect(url), await _connect(url)
    try:
        for ws, subject, base in ((ada, "ada", 0), (bob, "bob", 0)):
            await ws.send(json.dumps({"type": "Authenticate", "baseVersion": base,
                                      "tokenType": "User", "value": keys.token(sub=subject)}))
            await ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0,
                                      "newVersion": 1, "modifications": [{
                                          "type": "Add", "queryId": 1,
                                          "udfPath": "auth:whoami", "args": [{}]}]}))
        first = await _recv(ada)
        assert first["endVersion"]["identity"] == 1
        assert first["modifications"][0]["value"]["subject"] == "ada"
        assert (await _recv(bob))["modifications"][0]["value"]["subject"] == "bob"
        # A refreshed token for another user switches identity on the live socket.
        await ada.send(json.dumps({"type": "Authenticate", "baseVersion": 1,
                                   "tokenType": "User", "value": keys.token(sub="carol")}))
        switched = await _recv(ada)
        assert switched["endVersion"]["identity"] == 2
        assert switched["modifications"][0]["value"]["subject"] == "carol"
        subjects = {k[2] for k in deployment.subscriptions.queries}
        assert len(subjects) == 2, "one shared query per identity, none across identities"
    finally:
        await ada.close()
        await bob.close()


async def test_a_bad_token_on_the_socket_is_an_auth_error_then_close(server: Any,
                                                                     keys: Keys) -> None:
    url, _, _ = server
    ws = await _connect(url)
    await ws.send(json.dumps({"type": "Authenticate", "baseVersion": 0, "tokenType": "User",
                              "value": keys.token(exp=int(time.time()) - 60)}))
    error = await _recv(ws)
    assert error == {"type": "AuthError", "error": "token has expired", "baseVersion": 0,
                     "authUpdateAttempted": True}
    with pytest.raises(websockets.ConnectionClosed):
        await _recv(ws)


async def test_admin_on_the_socket_may_call_internal_mutations(server: Any) -> None:
    url, _, _ = server
    for token, expected in (("wrong", None), (ADMIN_KEY, "written")):
        ws = await _connect(url)
        try:
            await ws.send(json.dumps({"type": "Authenticate", "baseVersion": 0,
                                      "tokenType": "Admin", "value": token}))
            await ws.send(json.dumps({"type": "Mutation", "requestId": 1,
                                      "udfPath": "auth:secret_write", "args": [{}]}))
            message = await _recv(ws)
            if expected is None:
                assert message["type"] == "AuthError"
            else:
                while message["type"] != "MutationResponse":
                    message = await _recv(ws)
                assert message["result"] == expected
        finally:
            await ws.close()
    anonymous = await _connect(url)
    try:
        await anonymous.send(json.dumps({"type": "Mutation", "requestId": 1,
                                         "udfPath": "auth:secret_write", "args": [{}]}))
        response = await _recv(anonymous)
        assert response["success"] is False
        assert "Could not find public function" in response["result"]
    finally:
        await anonymous.close()
