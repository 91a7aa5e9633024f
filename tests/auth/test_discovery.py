"""OIDC discovery: with no `jwks` configured, keys come from the issuer's OpenID configuration."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from reactive_store.auth import Authenticator, AuthError, parse_providers
from tests.support import AUDIENCE, Keys, free_port


@pytest.fixture
async def issuer(tmp_path: Path) -> Any:
    keys = Keys(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    served = {"openid": 0, "jwks": 0}

    async def openid(request: Any) -> JSONResponse:
        served["openid"] += 1
        return JSONResponse({"issuer": base, "jwks_uri": base + "/jwks"})

    async def jwks(request: Any) -> JSONResponse:
        served["jwks"] += 1
        return JSONResponse(json.loads(keys.path.read_text()))

    app = Starlette(routes=[Route("/.well-known/openid-configuration", openid),
                            Route("/jwks", jwks)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield base, keys, served
    server.should_exit = True
    await task


async def test_keys_are_discovered_from_the_issuer(issuer: Any) -> None:
    base, keys, served = issuer
    auth = Authenticator(parse_providers([{"issuer": base, "audience": AUDIENCE}]), None)
    identity = await auth.verify(keys.token(iss=base))
    assert identity["tokenIdentifier"] == f"{base}|user-1"
    await auth.verify(keys.token(iss=base, sub="again"))
    assert served == {"openid": 1, "jwks": 1}, "keys are cached"
    with pytest.raises(AuthError, match="no key 'unknown'"):
        await auth.verify(keys.token(iss=base, kid="unknown"))
    assert served["jwks"] == 1, "an unknown key id refetches at most every 10 s"


@pytest.mark.parametrize(
    ("providers", "message"),
    [
        ({"issuer": "x"}, "must be a list"),
        ([{"jwks": "https://x"}], "needs an 'issuer'"),
        ([{"issuer": "https://x", "jwks": "http://example.com/jwks"}], "https:// or file://"),
        ([{"issuer": "https://x", "audience": 5}], "audience must be a string"),
    ],
)
def test_bad_provider_declarations(providers: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_providers(providers)


def test_admin_key_comparison() -> None:
    auth = Authenticator([], "the-key")
    assert auth.is_admin_key("the-key")
    assert not auth.is_admin_key("the-kez") and not auth.is_admin_key("")
    assert not Authenticator([], None).is_admin_key("")
