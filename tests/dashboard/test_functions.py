"""The Functions page's functions: the whole catalog, figures, and running any function."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


async def test_the_catalog_lists_public_and_internal_functions(dashboard: Any) -> None:
    client, _, _ = dashboard
    catalog = {f["path"]: f for f in await client.query("_system/functions:catalog", {})}
    assert {"notes:add", "notes:secret", "notes:listed"} <= set(catalog)
    secret = catalog["notes:secret"]
    assert secret["internal"] and secret["kind"] == "mutation" and secret["module"] == "notes"
    assert secret["doc"] == "Only for the admin." and secret["argsType"] == "{body: string}"
    assert catalog["notes:add"]["skeleton"] == '{\n  "body": "",\n  "rank": 0\n}'


async def test_run_reports_value_logs_and_duration(dashboard: Any) -> None:
    client, deployment, _ = dashboard
    result = await client.action("_system/functions:run", {
        "path": "notes:secret", "args": '{"body": "psst"}'})
    assert result["ok"] and result["value"] == '"PSST"'
    assert result["logLines"] == ["[LOG] secret psst"] and result["durationMs"] > 0
    (ex,) = [e for e in deployment.observer.log if e.path == "notes:secret"]
    assert ex.caller == "Dashboard" and ex.identity == "admin"


async def test_run_as_an_identity(dashboard: Any) -> None:
    client, deployment, _ = dashboard
    result = await client.action("_system/functions:run", {
        "path": "notes:whoami", "args": "{}", "identity": '{"subject": "ann"}'})
    assert result == {**result, "ok": True, "value": '"ann"'}
    (ex,) = [e for e in deployment.observer.log if e.path == "notes:whoami"]
    assert ex.identity == "admin as ann"


@pytest.mark.parametrize(("call", "expected"), [
    ({"path": "notes:add", "args": "{body: 1}"},
     {"ok": False, "input": True,
      "error": "the arguments object is not valid JSON: Expecting property name enclosed in "
               "double quotes (line 1, column 2)"}),
    ({"path": "notes:add", "args": "{}", "identity": "[]"},
     {"ok": False, "input": True, "error": 'the identity must be a JSON object, like '
                                           '{"name": "value"}'}),
    ({"path": "notes:add", "args": '{"body": "x"}'},
     {"ok": False, "input": False, "error": "ArgumentValidationError"}),
    ({"path": "notes:refuse", "args": "{}"},
     {"ok": False, "error": "not today", "logLines": ["[LOG] refusing"]}),
    ({"path": "notes:crash", "args": "{}"},
     {"ok": False, "error": "Uncaught RuntimeError: the action broke"}),
    ({"path": "notes:missing", "args": "{}"},
     {"ok": False, "error": "Could not find function for 'notes:missing'."}),
])
async def test_run_explains_every_failure(dashboard: Any, call: dict[str, Any],
                                          expected: dict[str, Any]) -> None:
    client, _, _ = dashboard
    result = await client.action("_system/functions:run", call)
    for key, value in expected.items():
        if key == "error" and value == "ArgumentValidationError":
            assert "rank" in result["error"], result
        else:
            assert result[key] == value, result
    if call["path"] == "notes:refuse":
        assert result["errorData"] == '{\n  "code": "nope",\n  "message": "not today"\n}'


async def test_figures_are_live_after_calls(dashboard: Any) -> None:
    client, _, _ = dashboard
    figures = client.subscribe("_system/functions:figures", {})
    assert await anext(figures) == []
    await client.mutation("notes:add", {"body": "a", "rank": 1})
    async with asyncio.timeout(5):
        while True:
            rows = await anext(figures)
            if any(r["path"] == "notes:add" for r in rows):
                break
    add = next(r for r in rows if r["path"] == "notes:add")
    assert add["calls"] == 1 and add["errors"] == 0 and add["p50"] > 0
    assert len(add["recent"]) == 1 and add["recent"][0][2] is True
    await figures.aclose()


async def test_schedule_a_function_for_later(dashboard: Any) -> None:
    from reactive_store.client import ClientError

    client, _, _ = dashboard
    job_id = await client.mutation("_system/functions:schedule", {
        "path": "notes:secret", "args": '{"body": "soon"}', "delaySeconds": 600})
    (job,) = await client.query("_system/schedules:jobs", {"state": "pending"})
    assert job["id"] == job_id and job["name"] == "notes:secret"
    for call, message in (
        ({"path": "notes:listed", "args": "{}", "delaySeconds": 1}, "is a query"),
        ({"path": "notes:secret", "args": "{}", "delaySeconds": 1}, "body"),
        ({"path": "notes:secret", "args": "{", "delaySeconds": 1}, "not valid JSON"),
        ({"path": "notes:secret", "args": "{}", "delaySeconds": -1}, "zero or more seconds"),
    ):
        with pytest.raises(ClientError, match=message):
            await client.mutation("_system/functions:schedule", call)
