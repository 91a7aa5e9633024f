"""One deployment: its app, store, engine, live queries and job runner, and their lifecycle.

Everything is built when the deployment is configured (the app is imported then, so a
broken app fails before any server starts); `start()` opens the database (embedded or
`database_url`), pushes the schema and starts the background tasks; `stop()` ends them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reactive_store.app.loader import App
from reactive_store.app.reloader import AppSource, Reload
from reactive_store.auth import Authenticator, parse_providers
from reactive_store.engine.db import (
    DatabaseReader,
    DatabaseWriter,
    SystemReader,
    SystemTableWriter,
    document_from_row,
)
from reactive_store.engine.engine import Engine, EngineConfig
from reactive_store.engine.environment import Changes, apply_changes, read_all
from reactive_store.engine.readset import WriteSet
from reactive_store.engine.system_tables import (
    ENVIRONMENT_VARIABLES,
    SYSTEM_TABLE_NUMBERS,
    with_system_tables,
)
from reactive_store.jobs.retention import JobRetention
from reactive_store.jobs.runner import JobRunner
from reactive_store.limits import ServerLimits
from reactive_store.live.commits import CommitStream
from reactive_store.live.subscriptions import SubscriptionManager
from reactive_store.observe.metrics import Metrics
from reactive_store.observe.observer import Observer, ObserveSettings
from reactive_store.storage import PushReport, Store, Transaction
from reactive_store.storage.embedded import EmbeddedPostgres

log = logging.getLogger(__name__)


@dataclass
class Settings:
    """Where the app is and which database it uses; `database_url=None` means embedded."""

    app_dir: Path = field(default_factory=Path.cwd)
    database_url: str | None = None
    namespace: str = "app"
    engine: EngineConfig = field(default_factory=EngineConfig)
    pool_size: int = 10
    file_pool_size: int = 4  # connections for file uploads and downloads (a separate pool)
    # Per-client bounds and retentions (docs/security.md); REACTIVE_STORE_LIMIT_* variables.
    limits: ServerLimits = field(default_factory=ServerLimits.from_env)
    admin_key: str | None = None  # REACTIVE_STORE_ADMIN_KEY / --admin-key
    run_jobs: bool = True  # run scheduled functions and crons in this process
    job_concurrency: int = 8  # scheduled actions running at once in this process
    job_batch_size: int = 512  # due scheduled mutations run in one transaction, at most
    job_batch_slots: int = 4  # such transactions at once in the whole deployment (stripes)
    job_grace_s: float = 10.0  # on shutdown, how long running jobs may take to finish
    progress: Callable[[str], None] | None = None  # hears about long index backfills
    observe: ObserveSettings = field(default_factory=ObserveSettings)  # logs and records
    # Browser origins allowed to call the HTTP API and open the sync socket ("*": any;
    # empty: same-origin pages only). `dev` defaults to any, `serve` to none.
    cors_origins: tuple[str, ...] = ()


def redact_url(url: str) -> str:
    """A database URL without its password, for terminal output."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"


def pool_figure(store: Store, name: str) -> float:
    return store.pool_figures().get(name, 0)


class Deployment:
    """Owns the store, the engine and (when no URL is given) the embedded Postgres."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.source = AppSource(settings.app_dir)
        self.app: App = self.source.load()
        self.auth = Authenticator(parse_providers(self.app.auth_providers or []),
                                  settings.admin_key)
        self.store = Store(settings.namespace)
        self.metrics = Metrics()
        self.observer = Observer(settings.observe, record=self.metrics.record)
        config = dataclasses.replace(
            settings.engine, history_seconds=settings.limits.query_history_retention_s)
        self.engine = Engine(self.store, self.app, config, self.observer)
        self.subscriptions = SubscriptionManager(self.engine)
        self.jobs = JobRunner(self.engine, concurrency=settings.job_concurrency,
                              batch_size=settings.job_batch_size,
                              batch_slots=settings.job_batch_slots,
                              on_lag=self.metrics.observe_scheduler_lag)
        self.job_retention = JobRetention(self.engine, settings.limits.finished_jobs_retention_s)
        self.commits = CommitStream(self.store, self._on_commit)
        self.engine.timestamps.stream = self.commits.watch
        self.push_report: PushReport | None = None
        self.database_label = ""
        self.on_started: Callable[[], None] | None = None
        self.started = False
        self._embedded: EmbeddedPostgres | None = None
        self._maintenance: asyncio.Task[None] | None = None
        self._reload_lock = asyncio.Lock()
        self._export_figures()

    def _export_figures(self) -> None:
        """The server figures of `/metrics` and the dashboard's Health page."""
        m, subs, store = self.metrics, self.subscriptions, self.store
        m.gauge("live_queries", "Distinct live queries (shared by their subscribers).",
                lambda: len(subs.queries))
        m.counter("query_reruns_total", "Live query executions (first runs and re-runs).",
                  lambda: subs.runs)
        m.gauge("commit_stream_processed_ts", "Newest commit timestamp processed (ns).",
                lambda: subs.processed_ts)
        m.counter("transactions_total", "Transactions started.", lambda: store.transactions)
        m.gauge("jobs_running", "Scheduled functions running in this process.",
                lambda: self.jobs.running)
        m.gauge("executions_kept", "Executions held in this process's log ring.",
                lambda: len(self.observer.log))
        for name, text in (("pool_size", "Database connections open."),
                           ("pool_idle", "Database connections idle."),
                           ("pool_max", "Database connections allowed.")):
            m.gauge(name, text, functools.partial(pool_figure, store, name))

    def _on_commit(self, ts: int, writes: WriteSet) -> None:
        # Commit timestamps are wall-clock nanoseconds (storage floors them to the clock),
        # so now - ts is how far behind its commits this process is.
        self.metrics.observe_commit_lag((time.time_ns() - ts) / 1e9)
        if any(table == ENVIRONMENT_VARIABLES for table, _ in writes.keys):
            self.engine.env.refresh_soon()
        self.engine.files.on_commit(writes)
        self.subscriptions.process_commit(ts, writes)
        self.jobs.on_commit(ts, writes)

    async def start(self) -> Engine:
        """Open the database, push the schema, start the commit stream and the jobs."""
        s = self.settings
        await self._connect()
        processed = await self.commits.start()
        # After the stream's starting point: a change committed in between is in this read.
        await self.engine.env.load(self.engine.read)
        self.subscriptions.start(processed)
        if s.run_jobs:
            await self.jobs.sync_crons(self.app.crons)
            self.jobs.start()
        self._maintenance = asyncio.create_task(self._prune_forever())
        self.started = True
        if self.on_started is not None:
            self.on_started()
        return self.engine

    async def _connect(self) -> None:
        s = self.settings
        url = s.database_url
        try:
            if url is None:
                data_dir = Path(s.app_dir).resolve() / ".reactive-store" / "pgdata"
                self._embedded = EmbeddedPostgres(data_dir)
                url = str(await asyncio.to_thread(self._embedded.start))
                self.database_label = f"embedded PostgreSQL in {data_dir}"
            else:
                self.database_label = redact_url(url)
            await self.store.connect(url, max_size=s.pool_size)
            self.push_report = await self.store.push_schema(
                with_system_tables(self.app.schema), document_from_row, s.progress,
                SYSTEM_TABLE_NUMBERS)
            await self.store.start_history(self.engine.config.history_seconds > 0)
            await self.engine.files.start(s.file_pool_size)
        except BaseException:
            await self.engine.files.stop()
            await self.store.close()
            await self._stop_embedded()
            raise

    async def reload(self) -> Reload:
        """Swap in the app as it is on disk now: push a changed schema, then re-run every
        live query on the new code. On any error the running version stays in force."""
        old = self.engine.app
        async with self._reload_lock:
            # Reading, hashing and importing the changed modules run off the event loop,
            # so sockets keep being served; the swap below happens on the loop, at once.
            app, report = await asyncio.to_thread(self.source.reload)
            try:
                if app.schema.to_json() != old.schema.to_json():
                    report.schema = await self.store.push_schema(
                        with_system_tables(app.schema), document_from_row,
                        self.settings.progress, SYSTEM_TABLE_NUMBERS)
                    self.push_report = report.schema
            except BaseException:
                self.source.revert(old)
                raise
            self.app = app
            self.auth = Authenticator(parse_providers(app.auth_providers or []),
                                      self.settings.admin_key)
            self.engine.app = app
            self.subscriptions.rerun_all()
            if self.settings.run_jobs:
                await self.jobs.sync_crons(app.crons)
        return report

    async def environment(self) -> dict[str, str]:
        """Every environment variable, read now (not from the cache)."""
        async def body(db: DatabaseReader) -> dict[str, str]:
            return await read_all(SystemReader(db.reads, internal=True))

        return await self.engine.read(body)

    async def update_environment(self, changes: Changes) -> int:
        """Set (value) and remove (None) variables in one transaction; return its commit
        timestamp. This process's cache holds the change before this returns, the others'
        within moments (their commit streams)."""
        async def body(db: DatabaseWriter, tx: Transaction) -> tuple[None, None]:
            await apply_changes(SystemTableWriter(db), changes)
            return None, None

        outcome = await self.engine.transact("environment variables", body, timestamp=True)
        await self.engine.env.load(self.engine.read)
        log.info("environment variables changed: %s",
                 ", ".join(f"{'set' if v is not None else 'removed'} {n}" for n, v in changes))
        assert outcome.ts is not None
        return outcome.ts

    async def _prune_forever(self) -> None:
        s = self.settings
        while True:
            await asyncio.sleep(s.limits.prune_every_s)
            try:
                await self.store.prune(s.limits.commit_log_retention_s,
                                       s.limits.request_retention_s,
                                       s.limits.query_history_retention_s)
                if s.run_jobs:
                    await self.job_retention.prune()
                await self.store.compact_search_stats()
            except Exception:
                log.exception("pruning the commit log or finished jobs, or compacting search "
                              "statistics, failed")

    async def stop(self) -> None:
        """Stop the jobs (letting running ones finish, bounded), the streams, the store."""
        await self.jobs.stop(self.settings.job_grace_s)
        if self._maintenance is not None:
            self._maintenance.cancel()
            await asyncio.gather(self._maintenance, return_exceptions=True)
            self._maintenance = None
        await self.commits.stop()
        await self.engine.env.close()
        await self.subscriptions.stop()
        await self.engine.files.stop()
        await self.store.close()
        await self._stop_embedded()
        self.started = False

    async def _stop_embedded(self) -> None:
        if self._embedded is not None:
            await asyncio.to_thread(self._embedded.stop)
            self._embedded = None
