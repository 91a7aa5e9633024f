"""The HTTP endpoints only the Convex CLI calls: `/api/v1/get_canonical_urls` (admin only),
and the push and one-off query endpoints, refused at once with a 403 saying what to do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from reactive_store.server.unsupported import INLINE_QUERY, PUSH, PUSH_PATHS
from tests.support import ACCOUNTS_APP

ADMIN_KEY = "admin-key-for-cli-endpoint-tests"
ADMIN = {"Authorization": f"Convex {ADMIN_KEY}"}


@pytest.fixture
async def server(serve: Any, make_app: Any) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    url, _ = await serve(make_app(ACCOUNTS_APP), admin_key=ADMIN_KEY)
    async with httpx.AsyncClient(base_url=url) as http:
        yield http, url


async def test_canonical_urls_name_this_deployment_for_functions_and_routes(
        server: Any) -> None:
    http, url = server
    response = await http.get("/api/v1/get_canonical_urls", headers=ADMIN)
    assert response.status_code == 200
    assert response.json() == {"convexCloudUrl": url, "convexSiteUrl": url}


@pytest.mark.parametrize(("headers", "message"), [
    ({}, "this endpoint needs the admin key"),
    ({"Authorization": "Convex wrong"}, "the admin key is not valid"),
], ids=["no key", "wrong key"])
async def test_canonical_urls_need_the_admin_key(server: Any, headers: dict[str, str],
                                                 message: str) -> None:
    http, _ = server
    response = await http.get("/api/v1/get_canonical_urls", headers=headers)
    assert response.status_code == 403 and message in response.json()["message"]


@pytest.mark.parametrize("path", PUSH_PATHS)
async def test_every_push_endpoint_refuses_with_what_to_do_instead(server: Any,
                                                                  path: str) -> None:
    http, _ = server
    response = await http.post(path, content=b"\x00" * 64, headers={
        **ADMIN, "Content-Encoding": "br", "Content-Type": "application/json"})
    assert response.status_code == 403
    assert response.json() == {"code": "NotSupported", "message": PUSH}
    assert "reactive-store serve --app" in PUSH and "reactive-store dev" in PUSH


async def test_a_push_larger_than_the_body_limit_still_gets_the_message(server: Any) -> None:
    http, _ = server
    response = await http.post("/api/deploy2/start_push", content=b"x" * (40 << 20),
                               headers=ADMIN)
    assert response.status_code == 403 and response.json()["message"] == PUSH


async def test_a_one_off_query_is_refused_with_what_to_do_instead(server: Any) -> None:
    http, _ = server
    response = await http.post("/api/run_test_function", json={"bundle": {}}, headers=ADMIN)
    assert response.status_code == 403
    assert response.json() == {"code": "NotSupported", "message": INLINE_QUERY}
