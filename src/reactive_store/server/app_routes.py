"""The app's own HTTP routes (`functions/http.py`), then its `web/` folder, then 404."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from reactive_store.app.http_router import HttpRoute
from reactive_store.deployment import Deployment
from reactive_store.engine.engine import Engine
from reactive_store.observe.observer import source

log = logging.getLogger(__name__)

# web/ may hold an npm install tree (the bundled app's pins the official client): not content.
NOT_CONTENT = ("/node_modules/", "/package.json", "/package-lock.json")


async def run_http_route(engine: Engine, route: HttpRoute, request: Request) -> Response:
    """Call a user's HTTP handler with the action ctx; a crash is a 500 with no details.

    Each call is an execution (kind httpAction, named `METHOD /path`): what the handler
    logs is captured, and its outcome recorded, like any function's.
    """
    observer = engine.observer
    try:
        with source("HttpEndpoint"), observer.execution(route.label, "httpAction", None):
            with observer.attempt(None):
                response = await route.handler(engine.action_ctx(None), request)
            if not isinstance(response, Response):
                raise TypeError(f"the handler returned {type(response).__name__}, "
                                "not a Response")
    except Exception:
        log.exception("HTTP route %s %s failed", route.method, route.path)
        return PlainTextResponse("Internal Server Error", status_code=500)
    return response


class AppRoutes:
    """An ASGI app mounted at `/` below the API routes."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.web = deployment.settings.app_dir / "web"
        self._static: StaticFiles | None = None

    def _files(self) -> StaticFiles | None:
        # Looked up per request until found, so a web/ folder created while a dev server
        # runs is served without a restart.
        if self._static is None and self.web.is_dir():
            self._static = StaticFiles(directory=self.web, html=True)
        return self._static

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        engine = self.deployment.engine
        router = engine.app.http
        if scope["type"] == "http" and router is not None:
            route, path_known = router.match(scope["method"], scope["path"])
            if route is not None:
                response = await run_http_route(engine, route, Request(scope, receive))
                await response(scope, receive, send)
                return
            if path_known:
                await PlainTextResponse("Method Not Allowed", 405)(scope, receive, send)
                return
        files = self._files()
        if files is not None and not scope["path"].startswith(NOT_CONTENT):
            await files(scope, receive, send)
            return
        await PlainTextResponse("Not Found", 404)(scope, receive, send)
