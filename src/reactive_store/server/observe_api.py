"""Admin-only observability endpoints: the function log stream and Prometheus metrics.

`GET /api/stream_function_logs?cursor=<ms>` is Convex's log API (what `convex logs` and
`reactive-store logs` poll): the executions finished after `cursor`, oldest first, and the
cursor to ask with next; when there are none yet it waits (long poll) up to `wait` seconds.
`function=` and `status=success|failure` narrow it. `GET /metrics` is the Prometheus text
format. Both need the admin key (`Authorization: Convex <key>`, or `Bearer <key>` for
scrapers); without it they answer 403, so a log tailer stops instead of retrying.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from reactive_store.deployment import Deployment
from reactive_store.observe.records import Filter
from reactive_store.server.function_api import JSONResponse

MAX_WAIT_SECONDS = 30.0
DEFAULT_WAIT_SECONDS = 5.0
PAGE = 1000  # entries per answer at most
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def forbidden(message: str) -> Response:
    return JSONResponse({"code": "Forbidden", "message": message}, status_code=403)


def admin_refusal(deployment: Deployment, header: str | None) -> Response | None:
    """None when `header` carries the admin key, else the 403 to answer."""
    scheme, _, value = (header or "").partition(" ")
    key = value.strip().partition(":")[0] if scheme == "Convex" else value.strip()
    if scheme not in ("Convex", "Bearer") or not key:
        return forbidden("this endpoint needs the admin key: Authorization: Convex <key>")
    if not deployment.auth.is_admin_key(key):
        return forbidden("the admin key is not valid")
    return None


def _number(request: Request, name: str, default: float) -> float:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {raw!r}")
    return value


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass  # the (empty) body of the GET; the next message comes when the client leaves


async def _until_new_or_gone(request: Request, waiting: Any) -> None:
    """Wait for new executions, but not for a client that went away (a killed tailer must
    not hold the request, nor the server's shutdown, for the rest of the wait)."""
    tasks = [asyncio.ensure_future(waiting), asyncio.ensure_future(_disconnected(request))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class ObserveApi:
    """The log stream and the metrics of one deployment."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    async def stream_function_logs(self, request: Request) -> Response:
        refused = admin_refusal(self.deployment, request.headers.get("authorization"))
        if refused is not None:
            return refused
        params = request.query_params
        status = params.get("status")
        try:
            cursor = _number(request, "cursor", 0.0)
            wait = min(MAX_WAIT_SECONDS, _number(request, "wait", DEFAULT_WAIT_SECONDS))
            if status not in (None, "success", "failure"):
                raise ValueError(f"status must be success or failure, got {status!r}")
        except ValueError as exc:
            return JSONResponse({"code": "BadRequest", "message": str(exc)}, status_code=400)
        keep = Filter(function=params.get("function") or None, outcome=status)
        log = self.deployment.observer.log
        entries = log.after(cursor, keep, PAGE)
        if not entries and wait > 0:
            await _until_new_or_gone(request, log.wait(cursor, wait))
            entries = log.after(cursor, keep, PAGE)
        # The next cursor covers what was skipped by the filter too, so it is not read again.
        new_cursor = entries[-1].finished if len(entries) == PAGE else max(cursor, log.cursor)
        return JSONResponse({"entries": [ex.to_json() for ex in entries],
                             "newCursor": new_cursor})

    async def metrics(self, request: Request) -> Response:
        refused = admin_refusal(self.deployment, request.headers.get("authorization"))
        if refused is not None:
            return refused
        return Response(self.deployment.metrics.render(), media_type=PROMETHEUS_TEXT)
