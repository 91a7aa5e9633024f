"""The Starlette app: the HTTP function API of protocol.md §1, `/version`, and CORS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from reactive_store import values
from reactive_store.app.catalog import catalog
from reactive_store.app.http_router import HttpRoute
from reactive_store.app.registry import Kind
from reactive_store.auth import AuthError, Caller, caller_from_header
from reactive_store.deployment import Deployment
from reactive_store.dev import DevReloader
from reactive_store.engine.engine import Engine, Outcome
from reactive_store.errors import BadRequest
from reactive_store.failures import error_body
from reactive_store.sync.connection import ConnectionClosed, SyncConnection
from reactive_store.sync.protocol import Authenticate, ProtocolError
from reactive_store.sync.timestamps import decode_ts, encode_ts

log = logging.getLogger(__name__)

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


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
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
    if name not in FORMATS:
        raise BadRequest(f"unknown format {name!r}; use one of {sorted(FORMATS)}", "BadFormat")
    return FORMATS[name]


async def _caller(deployment: Deployment, request: Request) -> Caller:
    """Bearer token -> verified identity; Convex admin key -> admin; nothing -> anonymous."""
    return await caller_from_header(deployment.auth, request.headers.get("authorization"))


class HttpApi:
    """Handlers of /api/*: each parses, runs one function and answers 200 with a UdfResponse."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    @property
    def engine(self) -> Engine:
        assert self.deployment.engine is not None, "deployment not started"
        return self.deployment.engine

    async def _respond(self, fmt: str, run: Callable[[], Awaitable[Outcome]]) -> Response:
        try:
            outcome = await run()
        except (BadRequest, AuthError):
            raise
        except Exception as exc:
            body = clean_error_data(error_body(exc), fmt)
            return JSONResponse({"status": "error", **body, "logLines": []})
        value = outcome.encoded if fmt == "convex" else values.export_clean(outcome.value)
        return JSONResponse({"status": "success", "value": value, "logLines": []})

    def kind_endpoint(self, kind: Kind | None) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if request.method == "GET":
                params = request.query_params
                try:
                    raw_args = orjson.loads(params.get("args", "{}"))
                except orjson.JSONDecodeError:
                    raise BadRequest("args query parameter is not valid JSON",
                                     "BadJsonBody") from None
                body = {"path": params.get("path"), "args": raw_args,
                        "format": params.get("format", "json")}
            else:
                body = await _json_body(request)
            fmt = parse_format(body)
            args = parse_args(body.get("args"))
            return await self._respond(fmt, lambda: self._run(kind, body.get("path"), args,
                                                              request))

        return endpoint

    async def _run(self, kind: Kind | None, path: Any, args: dict[str, Any],
                   request: Request) -> Outcome:
        from reactive_store.app.registry import canonical_path

        canonical_path(path)  # malformed paths are a 400, before any function runs
        caller = await _caller(self.deployment, request)
        identity, internal = caller.identity, caller.admin
        if kind is Kind.QUERY:
            return await self.engine.run_query(path, args, identity, internal_ok=internal)
        if kind is Kind.MUTATION:
            return await self.engine.run_mutation(path, args, identity, internal_ok=internal)
        if kind is Kind.ACTION:
            return await self.engine.run_action(path, args, identity, internal_ok=internal)
        return await self.engine.run(path, args, identity, internal_ok=internal)

    async def run_by_path(self, request: Request) -> Response:
        segments = request.path_params["path"].strip("/").split("/")
        if len(segments) < 2:
            raise BadRequest("expected /api/run/<module path>/<function>",
                             "BadConvexFunctionIdentifier")
        path = "/".join(segments[:-1]) + ":" + segments[-1]
        body = await _json_body(request)
        fmt = parse_format(body)
        args = parse_args(body.get("args"))
        return await self._respond(fmt, lambda: self._run(None, path, args, request))

    async def query_ts(self, request: Request) -> Response:
        ts = await self.engine.store.latest_ts()
        return JSONResponse({"ts": encode_ts(ts)})

    async def query_at_ts(self, request: Request) -> Response:
        body = await _json_body(request)
        fmt = parse_format(body)
        args = parse_args(body.get("args"))
        ts = decode_ts(body.get("ts"))
        path = body.get("path")
        from reactive_store.app.registry import canonical_path

        canonical_path(path)
        caller = await _caller(self.deployment, request)
        return await self._respond(
            fmt, lambda: self.engine.run_query(path, args, caller.identity, at_ts=ts,
                                               internal_ok=caller.admin)
        )

    async def query_batch(self, request: Request) -> Response:
        body = await _json_body(request)
        queries = body.get("queries")
        if not isinstance(queries, list):
            raise BadRequest("query_batch expects {'queries': [...]}", "BadJsonBody")
        results = []
        for item in queries:
            if not isinstance(item, dict):
                raise BadRequest("each query must be an object", "BadJsonBody")
            fmt = parse_format(item)
            args = parse_args(item.get("args"))
            path = item.get("path")
            response = await self._respond(
                fmt, lambda p=path, a=args: self._run(Kind.QUERY, p, a, request)  # type: ignore[misc]
            )
            results.append(orjson.loads(response.body))
        return JSONResponse({"results": results})


async def run_http_route(engine: Engine | None, route: HttpRoute, request: Request) -> Response:
    """Call a user's HTTP handler with the action ctx; a crash is a 500 with no details."""
    assert engine is not None
    try:
        response = await route.handler(engine.action_ctx(None), request)
    except Exception:
        log.exception("HTTP route %s %s failed", route.method, route.path)
        return PlainTextResponse("Internal Server Error", status_code=500)
    if not isinstance(response, Response):
        log.error("HTTP route %s %s returned %r, not a Response", route.method, route.path,
                  type(response).__name__)
        return PlainTextResponse("Internal Server Error", status_code=500)
    return response


async def _unauthenticated(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError)
    return JSONResponse({"code": exc.code, "message": exc.message}, status_code=401)


async def _bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    return JSONResponse({"code": exc.code, "message": exc.message}, status_code=400)


def create_app(deployment: Deployment, *, manage_lifespan: bool = True,
               dev: DevReloader | None = None) -> Starlette:
    """The ASGI app. With `manage_lifespan`, the deployment starts and stops with the server;
    with `dev`, the app folder is watched and hot-reloaded."""
    api = HttpApi(deployment)

    async def version(request: Request) -> Response:
        from reactive_store import __version__

        return PlainTextResponse(f"reactive-store {__version__}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_lifespan:
            await deployment.start()
        watcher: asyncio.Task[None] | None = None
        if dev is not None:
            watcher = asyncio.create_task(dev.run())
        try:
            yield
        finally:
            if dev is not None and watcher is not None:
                dev.stop()
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            if manage_lifespan:
                await deployment.stop()

    async def dev_status(request: Request) -> Response:
        if dev is None:
            return JSONResponse({"code": "NotFound", "message": "not a dev server"},
                                status_code=404)
        return JSONResponse(dev.status.to_json())

    async def sync(websocket: WebSocket) -> None:
        await websocket.accept()
        assert deployment.engine is not None and deployment.subscriptions is not None

        async def receive() -> str:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise ConnectionClosed()
            text = message.get("text")
            if text is None:
                raise ProtocolError("binary frames are not part of the protocol")
            return str(text)

        async def verify(message: Authenticate) -> Caller:
            auth = deployment.auth
            if message.token_type == "User":
                assert message.value is not None
                return Caller(await auth.verify(message.value))
            if not auth.is_admin_key(message.value or ""):
                raise AuthError("the admin key is not valid")
            return Caller(message.acting_as, admin=True)

        connection = SyncConnection(deployment.engine, deployment.subscriptions, receive,
                                    websocket.send_text, verify)
        await connection.run()
        if connection.close_reason is not None:
            code = 1011 if connection.close_reason.startswith("InternalServerError") else 1000
            with contextlib.suppress(Exception):
                await websocket.close(code, connection.close_reason[:123])

    async def stats(request: Request) -> Response:
        manager, store = deployment.subscriptions, deployment.store
        if manager is None or store is None:
            return JSONResponse({"ready": False}, status_code=503)
        return JSONResponse({
            "ready": True,
            "liveQueries": len(manager.queries),
            "queryRuns": manager.runs,
            "processedTs": manager.processed_ts,
            "transactions": store.transactions,
        })

    async def functions(request: Request) -> Response:
        app = deployment.engine.app if deployment.engine is not None else None
        if app is None:
            return JSONResponse({"ready": False}, status_code=503)
        return JSONResponse(catalog(app.functions, app.schema))

    routes = [
        Route("/api/functions", functions, methods=["GET"]),
        Route("/api/dev/status", dev_status, methods=["GET"]),
        Route("/api/_stats", stats, methods=["GET"]),
        WebSocketRoute("/api/sync", sync),
        WebSocketRoute("/api/{client_version}/sync", sync),
        Route("/version", version, methods=["GET"]),
        Route("/api/query", api.kind_endpoint(Kind.QUERY), methods=["GET", "POST"]),
        Route("/api/mutation", api.kind_endpoint(Kind.MUTATION), methods=["POST"]),
        Route("/api/action", api.kind_endpoint(Kind.ACTION), methods=["POST"]),
        Route("/api/function", api.kind_endpoint(None), methods=["POST"]),
        Route("/api/run/{path:path}", api.run_by_path, methods=["POST"]),
        Route("/api/query_ts", api.query_ts, methods=["POST"]),
        Route("/api/query_at_ts", api.query_at_ts, methods=["POST"]),
        Route("/api/query_batch", api.query_batch, methods=["POST"]),
    ]
    web = deployment.settings.app_dir / "web"
    statics: list[StaticFiles] = []

    def static() -> StaticFiles | None:
        # Looked up per request until found, so a web/ folder created while a dev server
        # runs is served without a restart.
        if not statics and web.is_dir():
            statics.append(StaticFiles(directory=web, html=True))
        return statics[0] if statics else None

    async def app_routes(scope: Scope, receive: Receive, send: Send) -> None:
        """The app's HTTP routes (functions/http.py), then its web/ folder, then 404."""
        engine = deployment.engine
        router = engine.app.http if engine is not None else None
        if scope["type"] == "http" and router is not None:
            route, path_known = router.match(scope["method"], scope["path"])
            if route is not None:
                response = await run_http_route(engine, route, Request(scope, receive))
                await response(scope, receive, send)
                return
            if path_known:
                await PlainTextResponse("Method Not Allowed", 405)(scope, receive, send)
                return
        files = static()
        if files is not None:
            await files(scope, receive, send)
            return
        await PlainTextResponse("Not Found", 404)(scope, receive, send)

    routes.append(Mount("/", app_routes))
    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origin_regex=".*",
            allow_credentials=True,
            allow_methods=["GET", "POST", "OPTIONS", "PATCH", "DELETE", "PUT"],
            allow_headers=["*"],
        )
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={BadRequest: _bad_request, AuthError: _unauthenticated},
    )
