"""`_system/cli/modules:apiSpec` and `convexUrl:cloudUrl` (`npx convex function-spec`), and
who may call the `_system/cli/...` functions at all."""

from __future__ import annotations

import pytest

from reactive_store.client import ClientError
from tests.admin.conftest import Admin

pytestmark = pytest.mark.e2e

OBJECT = "object"


def field(validator: dict[str, object], optional: bool = False) -> dict[str, object]:
    return {"fieldType": validator, "optional": optional}


async def test_api_spec_lists_functions_then_http_routes(admin: Admin) -> None:
    client, _, _ = admin
    spec = await client.query("_system/cli/modules:apiSpec", {})
    functions = {entry["identifier"]: entry for entry in spec if "identifier" in entry}
    assert list(functions) == ["notes.js:add", "notes.js:later", "notes.js:listed",
                               "notes.js:untyped"]
    assert functions["notes.js:add"] == {
        "identifier": "notes.js:add", "functionType": "Mutation",
        "visibility": {"kind": "public"},
        "args": {"type": OBJECT, "value": {"body": field({"type": "string"}),
                                           "rank": field({"type": "bigint"})}},
        "returns": {"type": "any"}}
    assert functions["notes.js:later"]["visibility"] == {"kind": "internal"}
    assert functions["notes.js:untyped"]["args"] == {"type": "any"}
    listed = functions["notes.js:listed"]
    assert listed["functionType"] == "Query"
    assert listed["returns"] == {"type": "array", "value": {"type": "string"}}
    kind = listed["args"]["value"]["kind"]["fieldType"]["value"]
    assert kind == [{"type": "literal", "value": 1}, {"type": "literal", "value": "one"}]
    assert type(kind[0]["value"]) is int  # an int64 literal stays an int64 on the wire
    routes = [entry for entry in spec if entry["functionType"] == "HttpAction"]
    assert routes == [{"functionType": "HttpAction", "method": "POST", "path": "/hook"},
                      {"functionType": "HttpAction", "method": "GET", "path": "/files/"}]
    assert await client.query("_system/cli/modules:apiSpec", {"componentId": None}) == spec


async def test_cloud_url_is_the_deployments_url(admin: Admin) -> None:
    client, deployment, _ = admin
    url = await client.query("_system/cli/convexUrl:cloudUrl", {})
    assert url == deployment.engine.config.public_url and url.startswith("http://127.0.0.1:")


async def test_without_the_admin_key_the_cli_is_told_it_lacks_permission(
        admin: Admin) -> None:
    # A wrong key is refused at Authenticate; the npm client then goes on without one and
    # meets this same answer (tests/e2e/test_convex_cli.py runs that).
    _, _, open_client = admin
    client = await open_client()
    with pytest.raises(ClientError, match="You do not have permission to perform this "
                                          "operation: '_system/cli/modules:apiSpec' needs"):
        await client.query("_system/cli/modules:apiSpec", {})
