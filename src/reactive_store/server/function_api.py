"""The HTTP function API of protocol.md §1: each endpoint parses, runs one function, answers.

Function failures answer 200 with `{"status": "error", ...}`; malformed requests raise
BadRequest (400) and refused credentials AuthError (401), mapped in `server.app`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from reactive_store import values
from reactive_store.app.registry import Kind, canonical_path
from reactive_store.auth import AuthError, Caller
from reactive_store.deployment import Deployment
from reactive_store.engine.engine import Outcome
from reactive_store.errors import BadRequest
from reactive_store.failures import error_body
from reactive_store.observe.observer import lines_of, source
from reactive_store.sync.protocol import decode_ts, encode_ts

FORMATS = {
    "convex_encoded_json": "convex",
    "convex_json": "convex",
    "json": "clean",
    "convex_clean_json": "clean",
    "export_json": "clean",
}


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def clean_error_data(body: dict[str, Any], fmt: str) -> dict[str, Any]:
    if fmt == "clean" and "errorData" in body:
        body["errorData"] = values.export_clean(values.decode(body["errorData"]))
    return body


async def json_body(request: Request) -> dict[str, Any]:
    return body_object(await request.body())


def refused(exc: BadRequest | AuthError) -> tuple[int, dict[str, str]]:
    """A refused request's status and body: BadRequest is a 400 and AuthError a 401, each
    with `{"code", "message"}`."""
    return (401 if isinstance(exc, AuthError) else 400), {"code": exc.code,
                                                          "message": exc.message}


def body_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object (an empty body is an empty object)."""
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", "BadJsonBody") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object", "BadJsonBody")
    return body


def parse_args(raw: Any) -> dict[str, Any]:
    """`args` as `[obj]` (legacy positional) or `obj`, Convex-encoded, to a Python dict."""
    if raw is None:
        return {}
    if isinstance(raw, list):
        if len(raw) != 1:
            raise BadRequest(f"args must be one object, got a list of {len(raw)}", "InvalidArgs")
        raw = raw[0]
    if not isinstance(raw, dict):
        raise BadRequest("args must be an object", "InvalidArgs")
    decoded: dict[str, Any] = values.decode(raw)
    return decoded


def parse_format(body: dict[str, Any]) -> str:
    name = body.get("format", "json")
    if not isinstance(name, str):
        raise BadRequest(f"format must be a string, one of {sorted(FORMATS)}; got "
                         f"{values.type_name(name)}", "BadFormat")
    if name not in FORMATS:
        raise BadRequest(f"unknown format {name!r}; use one of {sorted(FORMATS)}", "BadFormat")
    return FORMATS[name]


class FunctionApi:
    """Handlers of /api/*: each runs one function (or a batch) and answers a UdfResponse."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    async def _caller(self, request: Request) -> Caller:
        return await self.deployment.auth.caller_from_header(request.headers.get("authorization"))

    async def call(self, kind: Kind | None, body: dict[str, Any],
                   authorization: str | None) -> dict[str, Any]:
        """The UdfResponse to one parsed request body of `/api/query` (POST), `/api/mutation`,
        `/api/action` or `/api/function`; BadRequest and AuthError are raised."""
        fmt = parse_format(body)
        args = parse_args(body.get("args"))
        return await self._respond(fmt, lambda: self._run(kind, body.get("path"), args,
                                                          authorization))

    @staticmethod
    async def _respond(fmt: str, run: Callable[[], Awaitable[Outcome]]) -> dict[str, Any]:
        try:
            outcome = await run()
        except (BadRequest, AuthError):
            raise
        except Exception as exc:
            body = clean_error_data(error_body(exc), fmt)
            return {"status": "error", **body, "logLines": lines_of(exc)}
        value = outcome.encoded if fmt == "convex" else values.export_clean(outcome.value)
        return {"status": "success", "value": value, "logLines": outcome.log_lines}

    async def _run(self, kind: Kind | None, path: Any, args: dict[str, Any],
                   authorization: str | None) -> Outcome:
        canonical_path(path)  # malformed paths are a 400, before any function runs
        caller = await self.deployment.auth.caller_from_header(authorization)
        engine, identity, internal = self.deployment.engine, caller.identity, caller.admin
        with source("HttpApi", caller.admin):
            if kind is Kind.QUERY:
                return await engine.run_query(path, args, identity, internal_ok=internal)
            if kind is Kind.MUTATION:
                return await engine.run_mutation(path, args, identity, internal_ok=internal,
                                                 timestamp=False)
            if kind is Kind.ACTION:
                return await engine.run_action(path, args, identity, internal_ok=internal)
            return await engine.run(path, args, identity, internal_ok=internal)

    def by_kind(self, kind: Kind | None) -> Callable[[Request], Awaitable[Response]]:
        """`/api/query` (GET and POST), `/api/mutation`, `/api/action`, `/api/function`."""

        async def endpoint(request: Request) -> Response:
            body = _query_params(request) if request.method == "GET" else await json_body(request)
            return JSONResponse(await self.call(kind, body, request.headers.get("authorization")))

        return endpoint

    async def run_by_path(self, request: Request) -> Response:
        """`/api/run/{dir/mod/fn}`."""
        segments = request.path_params["path"].strip("/").split("/")
        if len(segments) < 2:
            raise BadRequest("expected /api/run/<module path>/<function>",
                             "BadConvexFunctionIdentifier")
        path = "/".join(segments[:-1]) + ":" + segments[-1]
        body = await json_body(request)
        fmt = parse_format(body)
        args = parse_args(body.get("args"))
        authorization = request.headers.get("authorization")
        return JSONResponse(await self._respond(fmt, lambda: self._run(None, path, args,
                                                                       authorization)))

    async def query_ts(self, request: Request) -> Response:
        ts = await self.deployment.store.latest_ts()
        return JSONResponse({"ts": encode_ts(ts)})

    async def query_at_ts(self, request: Request) -> Response:
        body = await json_body(request)
        fmt = parse_format(body)
        args = parse_args(body.get("args"))
        ts = decode_ts(body.get("ts"))
        path = body.get("path")
        canonical_path(path)
        caller = await self._caller(request)
        engine = self.deployment.engine
        with source("HttpApi", caller.admin):
            return JSONResponse(await self._respond(
                fmt, lambda: engine.run_query(path, args, caller.identity, at_ts=ts,
                                              internal_ok=caller.admin)))

    async def query_batch(self, request: Request) -> Response:
        body = await json_body(request)
        queries = body.get("queries")
        if not isinstance(queries, list):
            raise BadRequest("query_batch expects {'queries': [...]}", "BadJsonBody")
        results = []
        authorization = request.headers.get("authorization")
        for item in queries:
            if not isinstance(item, dict):
                raise BadRequest("each query must be an object", "BadJsonBody")
            fmt = parse_format(item)
            args = parse_args(item.get("args"))
            path = item.get("path")
            results.append(await self._respond(
                fmt, lambda p=path, a=args: self._run(Kind.QUERY, p, a, authorization)))  # type: ignore[misc]
        return JSONResponse({"results": results})


def _query_params(request: Request) -> dict[str, Any]:
    params = request.query_params
    try:
        raw_args = orjson.loads(params.get("args", "{}"))
    except orjson.JSONDecodeError:
        raise BadRequest("args query parameter is not valid JSON", "BadJsonBody") from None
    return {"path": params.get("path"), "args": raw_args, "format": params.get("format", "json")}
