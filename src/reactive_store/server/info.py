"""Small read-only endpoints: `/version`, `/api/_stats`, `/api/functions`, `/api/dev/status`,
and `/api/v1/get_canonical_urls` (where the Convex CLI's `init` and `dev` learn the URLs)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from reactive_store.app.catalog import catalog
from reactive_store.deployment import Deployment
from reactive_store.dev import DevReloader
from reactive_store.server.function_api import JSONResponse
from reactive_store.server.observe_api import admin_refusal


class InfoEndpoints:
    """What a deployment reports about itself (readiness, counters, catalog, dev state)."""

    def __init__(self, deployment: Deployment, dev: DevReloader | None, version: str) -> None:
        self.deployment = deployment
        self.dev = dev
        self.version_text = f"reactive-store {version}"

    async def version(self, request: Request) -> Response:
        return PlainTextResponse(self.version_text)

    async def stats(self, request: Request) -> Response:
        d = self.deployment
        if not d.started:
            return JSONResponse({"ready": False}, status_code=503)
        return JSONResponse({
            "ready": True,
            "liveQueries": len(d.subscriptions.queries),
            "queryRuns": d.subscriptions.runs,
            "processedTs": d.subscriptions.processed_ts,
            "transactions": d.store.transactions,
        })

    async def functions(self, request: Request) -> Response:
        app = self.deployment.engine.app
        return JSONResponse(catalog(app.functions, app.schema))

    async def canonical_urls(self, request: Request) -> Response:
        """The URL clients use, for functions and for HTTP routes alike (both are served on
        one origin): `--public-url`, else the address this request came to. Admin only."""
        refused = admin_refusal(self.deployment, request.headers.get("authorization"))
        if refused is not None:
            return refused
        url = self.deployment.engine.config.public_url or str(request.base_url).rstrip("/")
        return JSONResponse({"convexCloudUrl": url, "convexSiteUrl": url})

    async def dev_status(self, request: Request) -> Response:
        if self.dev is None:
            return JSONResponse({"code": "NotFound", "message": "not a dev server"},
                                status_code=404)
        return JSONResponse(self.dev.status.to_json())
