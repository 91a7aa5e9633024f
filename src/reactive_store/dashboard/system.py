"""The dashboard's system functions (`_system/<page>:<name>`) and what keeps them live.

`install(deployment)` registers every page's functions, and the Convex CLI's
(`reactive_store.admin`), in the engine's system registry (all internal: only the admin
key reaches them; anyone else is refused). Queries over stored data are live through their
read sets like any other. Those over process state are re-run by `LiveRefresh`: the log
and per-function queries when an execution is recorded (debounced, so a busy server costs
one re-run per REFRESH_SECONDS, not one per call), the health query once a second with a
new sample.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from reactive_store import admin
from reactive_store.app.registry import Registry
from reactive_store.dashboard import data, functions, health, logs, schedules
from reactive_store.dashboard.readable import as_floats
from reactive_store.deployment import Deployment
from reactive_store.live.subscriptions import LiveQuery
from reactive_store.observe.records import Execution

REFRESH_SECONDS = 0.15
SAMPLE_SECONDS = 1.0
ON_EXECUTION = ("_system/logs:", "_system/functions:figures")
ON_SAMPLE = ("_system/health:",)


class LiveRefresh:
    """Re-runs the live queries that read process state, when that state changes."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.samples: deque[dict[str, Any]] = deque(maxlen=health.SAMPLES)
        self._pending: asyncio.TimerHandle | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._stop_listening = deployment.observer.log.listen(self._on_execution)

    def _on_execution(self, ex: Execution) -> None:
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = loop.call_later(REFRESH_SECONDS, self._refresh_logs)

    def _refresh_logs(self) -> None:
        self._pending = None
        self._refresh(ON_EXECUTION)

    def _refresh(self, prefixes: tuple[str, ...]) -> None:
        def matches(live: LiveQuery) -> bool:
            return live.path.startswith(prefixes)

        self.deployment.subscriptions.refresh(matches)

    def series(self) -> list[dict[str, Any]]:
        self.start()  # the ticker runs once someone looks at the Health page
        return list(self.samples)

    def start(self) -> None:
        if self._ticker is None:
            self.samples.append(health.sample(self.deployment, None))
            self._ticker = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_SECONDS)
            last = self.samples[-1] if self.samples else None
            self.samples.append(health.sample(self.deployment, last))
            self._refresh(ON_SAMPLE)

    async def stop(self) -> None:
        self._stop_listening()
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None


def numbers_as_floats(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def run(ctx: Any, **args: Any) -> Any:
        return as_floats(await handler(ctx, **args))

    return run


def install(deployment: Deployment) -> LiveRefresh:
    """Register the dashboard's functions on the deployment's engine."""
    refresh = LiveRefresh(deployment)
    registry = Registry()
    pages = {"data": data.functions(deployment), "functions": functions.functions(deployment),
             "logs": logs.functions(deployment), "schedules": schedules.functions(deployment),
             "health": health.functions(deployment, refresh.series)}
    for page, specs in pages.items():
        for name, spec in specs.items():
            spec.handler = numbers_as_floats(spec.handler)
            registry.add(f"_system/{page}:{name}", spec)
    # The Convex CLI's functions keep Convex's number types (int64 documents, float counts).
    for path, spec in admin.functions(deployment).items():
        registry.add(path, spec)
    deployment.engine.system = registry
    return refresh
