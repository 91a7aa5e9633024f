"""A running deployment: the app loaded, its database opened (embedded or not), schema pushed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from reactive_store import values
from reactive_store.app.loader import App
from reactive_store.app.reloader import AppSource, Reload
from reactive_store.auth import Authenticator, parse_providers
from reactive_store.engine.engine import Engine, EngineConfig
from reactive_store.engine.readset import WriteSet
from reactive_store.engine.system_tables import with_system_tables
from reactive_store.jobs.runner import JobRunner
from reactive_store.live.commits import CommitStream
from reactive_store.live.subscriptions import SubscriptionManager
from reactive_store.storage import PushReport, Store

log = logging.getLogger(__name__)


@dataclass
class Settings:
    """Where the app is and which database it uses; `database_url=None` means embedded."""

    app_dir: Path = field(default_factory=Path.cwd)
    database_url: str | None = None
    namespace: str = "app"
    engine: EngineConfig = field(default_factory=EngineConfig)
    pool_size: int = 10
    # The commit log backs /api/query_at_ts and listener catch-up; request results back
    # mutation replays after a reconnect.
    commit_retention_s: float = 900.0
    request_retention_s: float = 3600.0
    prune_every_s: float = 60.0
    admin_key: str | None = None  # REACTIVE_STORE_ADMIN_KEY / --admin-key
    run_jobs: bool = True  # run scheduled functions and crons in this process
    job_concurrency: int = 8  # scheduled functions running at once
    job_grace_s: float = 10.0  # on shutdown, how long running jobs may take to finish


def decode_row(doc_id: str, creation_time: float, raw: bytes) -> dict[str, Any]:
    """A stored row as the document functions see."""
    return {"_id": doc_id, "_creationTime": creation_time, **values.decode(orjson.loads(raw))}


def redact_url(url: str) -> str:
    """A database URL without its password, for terminal output."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"


class Deployment:
    """Owns the store, the engine and (when no URL is given) the embedded Postgres."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: App | None = None
        self.store: Store | None = None
        self.engine: Engine | None = None
        self.push_report: PushReport | None = None
        self.subscriptions: SubscriptionManager | None = None
        self.commits: CommitStream | None = None
        self.database_label = ""
        self._embedded: Any = None
        self._maintenance: asyncio.Task[None] | None = None
        self.source: AppSource | None = None
        self._reload_lock = asyncio.Lock()
        self.on_started: Callable[[], None] | None = None
        self.jobs: JobRunner | None = None
        self.auth = Authenticator([], settings.admin_key)

    async def start(self) -> Engine:
        s = self.settings
        self.source = AppSource(s.app_dir)
        app = self.source.load()
        url = s.database_url
        if url is None:
            from reactive_store.storage.embedded import EmbeddedPostgres

            data_dir = Path(s.app_dir).resolve() / ".reactive-store" / "pgdata"
            self._embedded = EmbeddedPostgres(data_dir)
            url = str(await asyncio.to_thread(self._embedded.start))
            self.database_label = f"embedded PostgreSQL in {data_dir}"
        else:
            self.database_label = redact_url(url)
        store: Store | None = None
        try:
            store = await Store.open(url, s.namespace, max_size=s.pool_size)
            self.push_report = await store.push_schema(with_system_tables(app.schema),
                                                       decode_row)
        except BaseException:
            if store is not None:
                await store.close()
            await self._stop_embedded()
            raise
        self.app, self.store = app, store
        self.auth = Authenticator(parse_providers(app.auth_providers or []), s.admin_key)
        self.engine = Engine(store, app, s.engine)
        self.subscriptions = SubscriptionManager(self.engine)
        self.jobs = JobRunner(self.engine, concurrency=s.job_concurrency)
        manager, jobs = self.subscriptions, self.jobs

        def on_commit(ts: int, writes: WriteSet) -> None:
            manager.process_commit(ts, writes)
            jobs.on_commit(ts, writes)

        self.commits = CommitStream(store, on_commit)
        processed = await self.commits.start()
        self.subscriptions.start(processed)
        if s.run_jobs:
            await self.jobs.sync_crons(app.crons)
            self.jobs.start()
        self._maintenance = asyncio.create_task(self._prune_forever(store))
        if self.on_started is not None:
            self.on_started()
        return self.engine

    async def reload(self) -> Reload:
        """Swap in the app as it is on disk now: push a changed schema, then re-run every
        live query on the new code. On any error the running version stays in force."""
        assert self.engine is not None and self.store is not None and self.source is not None
        old = self.engine.app
        async with self._reload_lock:
            app, report = self.source.reload()
            try:
                if app.schema.to_json() != old.schema.to_json():
                    report.schema = await self.store.push_schema(
                        with_system_tables(app.schema), decode_row)
                    self.push_report = report.schema
            except BaseException:
                self.source.revert(old)
                raise
            self.app = app
            self.auth = Authenticator(parse_providers(app.auth_providers or []),
                                      self.settings.admin_key)
            self.engine.app = app
            if self.subscriptions is not None:
                self.subscriptions.rerun_all()
            if self.jobs is not None and self.settings.run_jobs:
                await self.jobs.sync_crons(app.crons)
        return report

    async def _prune_forever(self, store: Store) -> None:
        s = self.settings
        while True:
            await asyncio.sleep(s.prune_every_s)
            try:
                await store.prune(s.commit_retention_s, s.request_retention_s)
            except Exception:
                log.exception("pruning the commit log failed")

    async def stop(self) -> None:
        if self.jobs is not None:
            await self.jobs.stop(self.settings.job_grace_s)
            self.jobs = None
        if self._maintenance is not None:
            self._maintenance.cancel()
            await asyncio.gather(self._maintenance, return_exceptions=True)
            self._maintenance = None
        if self.commits is not None:
            await self.commits.stop()
            self.commits = None
        if self.subscriptions is not None:
            await self.subscriptions.stop()
            self.subscriptions = None
        if self.store is not None:
            await self.store.close()
            self.store = None
        await self._stop_embedded()

    async def _stop_embedded(self) -> None:
        if self._embedded is not None:
            await asyncio.to_thread(self._embedded.stop)
            self._embedded = None
