"""The HTTP and WebSocket server: Starlette endpoints over a `Deployment`.

`app` assembles the ASGI app (routes, CORS, lifespan, error handlers); `function_api` is
the Convex HTTP function API of protocol.md §1; `sync_endpoint` serves the sync protocol
on a WebSocket; `app_routes` serves the app's own HTTP routes and its `web/` folder; and
`info` the small read-only endpoints (`/version`, `/api/_stats`, `/api/functions`,
`/api/dev/status`). The only package that imports Starlette; it may import everything
below it (the deployment, dev, sync, live, jobs, engine, app, storage and the core).
"""

from reactive_store.server.app import create_app

__all__ = ["create_app"]
