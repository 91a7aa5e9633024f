"""The HTTP and WebSocket server: Starlette endpoints over a `Deployment`.

`app` assembles the ASGI app (routes, CORS, lifespan, error handlers); `cors` decides which
browser origins may call it (HTTP and the sync socket); `function_api` is
the Convex HTTP function API of protocol.md §1; `sync_endpoint` serves the sync protocol
on a WebSocket; `app_routes` serves the app's own HTTP routes and its `web/` folder;
`info` the small read-only endpoints (`/version`, `/api/_stats`, `/api/functions`,
`/api/dev/status`); `observe_api` the admin-only log stream and `/metrics`; and
`dashboard` the dashboard's static files at `/_dashboard`; `client_bundle` the official
Convex browser client both pages run on, at `/_convex/browser.bundle.js`. The only package
that imports Starlette; it may import everything below it (the dashboard's functions, the
deployment, dev, sync, live, jobs, engine, app, storage, observe and the core).
"""

from reactive_store.server.app import create_app

__all__ = ["create_app"]
