"""Admin endpoints for deployment environment variables (the CLI's `env --url` and tooling).

Every endpoint requires the admin key (`Authorization: Convex <key>`): values are secrets,
so they are never listed to anyone else, and never logged (only names are).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from reactive_store.auth import AuthError
from reactive_store.deployment import Deployment
from reactive_store.engine.environment import Changes, check_name
from reactive_store.errors import BadRequest, LimitExceeded, ValidationError
from reactive_store.server.function_api import JSONResponse, json_body

MAX_CHANGES = 100


def parse_changes(body: dict[str, Any]) -> Changes:
    """`{"changes": [{"name": N, "value": V}, {"name": M}]}`: a missing or null value
    removes the variable (the shape of Convex's `update_environment_variables`)."""
    raw = body.get("changes")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("expected {'changes': [{'name': ..., 'value': ...}, ...]}",
                         "InvalidChanges")
    if len(raw) > MAX_CHANGES:
        raise BadRequest(f"at most {MAX_CHANGES} changes per update, got {len(raw)}",
                         "InvalidChanges")
    changes: Changes = []
    for item in raw:
        if not isinstance(item, dict) or "name" not in item:
            raise BadRequest("each change must be an object with a 'name'", "InvalidChanges")
        value = item.get("value")
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"environment variable {item['name']}: the value must be a "
                             "string (or null to remove it)", "InvalidChanges")
        changes.append((item["name"], value))
    return changes


class EnvironmentEndpoints:
    """`GET /api/environment_variables[/{name}]`, `POST /api/update_environment_variables`."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    async def _require_admin(self, request: Request) -> None:
        caller = await self.deployment.auth.caller_from_header(
            request.headers.get("authorization"))
        if not caller.admin:
            raise AuthError("environment variables require the admin key "
                            "(Authorization: Convex <admin key>)")

    async def list_all(self, request: Request) -> Response:
        await self._require_admin(request)
        variables = await self.deployment.environment()
        return JSONResponse({"environmentVariables": [
            {"name": name, "value": value} for name, value in sorted(variables.items())]})

    async def get(self, request: Request) -> Response:
        await self._require_admin(request)
        name = request.path_params["name"]
        try:
            check_name(name)
        except ValidationError as exc:
            raise BadRequest(exc.message, "InvalidName") from None
        value = (await self.deployment.environment()).get(name)
        if value is None:
            return JSONResponse({"code": "NotFound",
                                 "message": f"environment variable {name} is not set"},
                                status_code=404)
        return JSONResponse({"name": name, "value": value})

    async def update(self, request: Request) -> Response:
        await self._require_admin(request)
        changes = parse_changes(await json_body(request))
        try:
            await self.deployment.update_environment(changes)
        except (ValidationError, LimitExceeded) as exc:
            raise BadRequest(exc.message, "InvalidEnvironmentVariable") from None
        return JSONResponse({})
