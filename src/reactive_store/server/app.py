"""The ASGI app: routes, CORS, lifespan (the deployment and the dev watcher), error mapping."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from reactive_store.admin import snapshots
from reactive_store.app.registry import Kind
from reactive_store.auth import AuthError
from reactive_store.dashboard.system import LiveRefresh, install
from reactive_store.deployment import Deployment
from reactive_store.dev import DevReloader
from reactive_store.errors import BadRequest
from reactive_store.server.app_routes import AppRoutes
from reactive_store.server.body_limit import BodyLimit
from reactive_store.server.client_bundle import PATH as BUNDLE_PATH
from reactive_store.server.client_bundle import ClientBundle
from reactive_store.server.cors import cors_middleware
from reactive_store.server.dashboard import DashboardFiles, to_dashboard
from reactive_store.server.environment import EnvironmentEndpoints
from reactive_store.server.fast_calls import FastCalls
from reactive_store.server.files import UPLOAD_PATH, FileEndpoints
from reactive_store.server.function_api import FunctionApi, JSONResponse, refused
from reactive_store.server.info import InfoEndpoints
from reactive_store.server.observe_api import ObserveApi
from reactive_store.server.snapshot_api import SnapshotEndpoints
from reactive_store.server.sync_endpoint import SyncEndpoint, TransportProbe
from reactive_store.server.unsupported import PUSH_PATHS, unsupported_routes
from reactive_store.snapshot.jobs import SnapshotJobs


async def _error_response(request: Request, exc: Exception) -> Response:
    """BadRequest and AuthError as `function_api.refused` answers them."""
    assert isinstance(exc, BadRequest | AuthError)
    status, body = refused(exc)
    return JSONResponse(body, status_code=status)


def observability_routes(deployment: Deployment) -> list[BaseRoute]:
    """The admin-only log stream and metrics, the dashboard's page and the official client."""
    observe = ObserveApi(deployment)
    return [
        Route("/api/stream_function_logs", observe.stream_function_logs, methods=["GET"]),
        Route("/metrics", observe.metrics, methods=["GET"]),
        Route(BUNDLE_PATH, ClientBundle().serve, methods=["GET", "HEAD"]),
        Route("/_dashboard", to_dashboard, methods=["GET"]),
        Mount("/_dashboard", DashboardFiles()),
    ]


def convex_cli_routes(info: InfoEndpoints) -> list[BaseRoute]:
    """What the Convex CLI asks for besides functions: the URLs (`init`, `dev`), and the
    pushes and one-off queries that are refused with a message saying what to do."""
    return [Route("/api/v1/get_canonical_urls", info.canonical_urls, methods=["GET"]),
            *unsupported_routes()]


def observe_sockets_and_install(deployment: Deployment, sync: SyncEndpoint) -> LiveRefresh:
    """The sockets gauge, and the dashboard's functions (their ticker starts on first use)."""
    deployment.metrics.gauge("sockets", "Sync protocol WebSockets open in this process.",
                             lambda: sum(sync.open_by_address.values()))
    return install(deployment)


def snapshot_jobs(deployment: Deployment) -> tuple[SnapshotJobs, list[BaseRoute]]:
    """Export and import jobs for the official CLI: their `_system/cli/...` queries
    (registered after the dashboard's) and their admin routes."""
    jobs = SnapshotJobs(deployment.engine, snapshots.refresher(deployment.subscriptions.refresh))
    snapshots.register(deployment.engine.system, jobs)
    return jobs, SnapshotEndpoints(deployment, jobs).routes()


def middleware(deployment: Deployment, api: FunctionApi) -> list[Middleware]:
    """Outermost first: function calls from servers, the transport probe, the body limit,
    CORS."""
    cors = cors_middleware(deployment.settings.cors_origins)
    max_bytes = deployment.settings.limits.request_body_bytes
    limit = Middleware(BodyLimit, max_bytes=max_bytes,
                       exempt=(UPLOAD_PATH, *PUSH_PATHS))  # a refused push is never read
    fast = Middleware(FastCalls, api=api, max_bytes=max_bytes)
    return [fast, Middleware(TransportProbe), limit, cors]


def create_app(deployment: Deployment, *, manage_lifespan: bool = True,
               dev: DevReloader | None = None) -> Starlette:
    """The ASGI app. With `manage_lifespan`, the deployment starts and stops with the server;
    with `dev`, the app folder is watched and hot-reloaded."""
    api = FunctionApi(deployment)
    info = InfoEndpoints(deployment, dev, importlib.metadata.version("reactive-store"))
    sync = SyncEndpoint(deployment)
    env = EnvironmentEndpoints(deployment)
    files = FileEndpoints(deployment)
    live = observe_sockets_and_install(deployment, sync)
    jobs, snapshot_routes = snapshot_jobs(deployment)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_lifespan:
            await deployment.start()
        watcher = asyncio.create_task(dev.run()) if dev is not None else None
        try:
            yield
        finally:
            await live.stop()
            await jobs.close()
            if dev is not None and watcher is not None:
                dev.stop()
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            if manage_lifespan:
                await deployment.stop()

    routes = [
        Route("/api/functions", info.functions, methods=["GET"]),
        Route("/api/dev/status", info.dev_status, methods=["GET"]),
        Route("/api/_stats", info.stats, methods=["GET"]),
        WebSocketRoute("/api/sync", sync.serve),
        WebSocketRoute("/api/{client_version}/sync", sync.serve),
        Route("/version", info.version, methods=["GET"]),
        Route("/api/query", api.by_kind(Kind.QUERY), methods=["GET", "POST"]),
        Route("/api/mutation", api.by_kind(Kind.MUTATION), methods=["POST"]),
        Route("/api/action", api.by_kind(Kind.ACTION), methods=["POST"]),
        Route("/api/function", api.by_kind(None), methods=["POST"]),
        Route("/api/run/{path:path}", api.run_by_path, methods=["POST"]),
        Route("/api/query_ts", api.query_ts, methods=["POST"]),
        Route("/api/query_at_ts", api.query_at_ts, methods=["POST"]),
        Route("/api/query_batch", api.query_batch, methods=["POST"]),
        Route("/api/environment_variables", env.list_all, methods=["GET"]),
        Route("/api/environment_variables/{name}", env.get, methods=["GET"]),
        Route("/api/update_environment_variables", env.update, methods=["POST"]),
        Route(UPLOAD_PATH, files.upload, methods=["POST"]),
        Route("/api/storage/{storage_id}/{signature}", files.download,
              methods=["GET", "HEAD"]),
        *snapshot_routes,
        *observability_routes(deployment), *convex_cli_routes(info),
        Mount("/", AppRoutes(deployment)),
    ]
    return Starlette(routes=routes, middleware=middleware(deployment, api), lifespan=lifespan,
                     exception_handlers={BadRequest: _error_response,
                                         AuthError: _error_response})
