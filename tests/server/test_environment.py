"""The admin endpoints for environment variables: the admin key is required for every one,
updates are atomic, bad input is a 400 naming what was wrong, and values never reach the log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support import ACCOUNTS_APP

ADMIN_KEY = "admin-key-for-env-tests"
ADMIN = {"Authorization": f"Convex {ADMIN_KEY}"}


@pytest.fixture
async def server(serve: Any, make_app: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    url, deployment = await serve(make_app(ACCOUNTS_APP), admin_key=ADMIN_KEY)
    async with httpx.AsyncClient(base_url=url) as http:
        yield http, deployment


async def update(http: httpx.AsyncClient, changes: Any,
                 headers: dict[str, str] | None = None) -> httpx.Response:
    return await http.post("/api/update_environment_variables", json={"changes": changes},
                           headers=ADMIN if headers is None else headers)


async def test_set_list_get_and_remove(server: Any) -> None:
    http, deployment = server
    response = await update(http, [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}])
    assert response.status_code == 200 and response.json() == {}
    listed = await http.get("/api/environment_variables", headers=ADMIN)
    assert listed.json() == {"environmentVariables": [{"name": "A", "value": "1"},
                                                      {"name": "B", "value": "2"}]}
    got = await http.get("/api/environment_variables/A", headers=ADMIN)
    assert got.status_code == 200 and got.json() == {"name": "A", "value": "1"}
    assert deployment.engine.env.values == {"A": "1", "B": "2"}, "this process has it now"
    await update(http, [{"name": "A"}, {"name": "B", "value": None}])
    missing = await http.get("/api/environment_variables/A", headers=ADMIN)
    assert missing.status_code == 404
    assert missing.json() == {"code": "NotFound", "message": "environment variable A is not set"}
    assert (await http.get("/api/environment_variables", headers=ADMIN)).json() == {
        "environmentVariables": []}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Convex wrong-key"},
                                     {"Authorization": "Bearer not-a-token"}])
async def test_every_endpoint_requires_the_admin_key(server: Any,
                                                     headers: dict[str, str]) -> None:
    http, deployment = server
    await update(http, [{"name": "SECRET", "value": "hunter2"}])
    for response in (await http.get("/api/environment_variables", headers=headers),
                     await http.get("/api/environment_variables/SECRET", headers=headers),
                     await update(http, [{"name": "SECRET", "value": "x"}], headers)):
        assert response.status_code == 401, response.text
        assert "hunter2" not in response.text
    assert await deployment.environment() == {"SECRET": "hunter2"}


@pytest.mark.parametrize(("body", "message"), [
    ({}, "expected {'changes'"),
    ({"changes": []}, "expected {'changes'"),
    ({"changes": ["A"]}, "each change must be an object with a 'name'"),
    ({"changes": [{"value": "v"}]}, "each change must be an object with a 'name'"),
    ({"changes": [{"name": "A", "value": 5}]}, "A: the value must be a string"),
    ({"changes": [{"name": "9A", "value": "v"}]}, "invalid environment variable name '9A'"),
    ({"changes": [{"name": "A", "value": "x" * 8193}]}, "above the limit of 8192 bytes"),
    ({"changes": [{"name": f"V{i}", "value": "v"} for i in range(101)]}, "at most 100 changes"),
])
async def test_bad_updates_are_400_and_change_nothing(server: Any, body: Any,
                                                      message: str) -> None:
    http, deployment = server
    await update(http, [{"name": "KEEP", "value": "k"}])
    response = await http.post("/api/update_environment_variables", json=body, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert message in response.json()["message"]
    assert await deployment.environment() == {"KEEP": "k"}


async def test_a_bad_name_in_get_is_400(server: Any) -> None:
    http, _ = server
    response = await http.get("/api/environment_variables/bad-name", headers=ADMIN)
    assert response.status_code == 400 and "bad-name" in response.json()["message"]


async def test_values_are_never_logged(server: Any, caplog: pytest.LogCaptureFixture) -> None:
    http, _ = server
    with caplog.at_level(logging.DEBUG):
        await update(http, [{"name": "TOKEN", "value": "value-that-must-not-leak"}])
        await http.get("/api/environment_variables", headers=ADMIN)
        await update(http, [{"name": "TOKEN"}])
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "set TOKEN" in text and "removed TOKEN" in text
    assert "value-that-must-not-leak" not in text
