"""The server's snapshot exports and imports, as the official CLI drives and polls them.

State lives in this process (the ZIPs in a temporary folder): the CLI talks to one server
URL for the whole of an export or import. `on_change` is called on every state change so
the `_system/cli/...` queries that read this state re-run for their subscribers.

Export states: requested -> in_progress -> completed | failed. Import states (Convex's):
uploaded -> waiting_for_confirmation (a summary of what will change) -> in_progress (after
`perform_import`) -> completed | failed; a check that fails (a non-empty table without
--replace/--append, an unknown table, a bad file) fails it before confirmation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reactive_store.engine.engine import Engine
from reactive_store.errors import BadRequest, ReactiveStoreError
from reactive_store.snapshot.exporter import export_snapshot
from reactive_store.snapshot.importer import Mode, import_source
from reactive_store.snapshot.sources import open_source
from reactive_store.snapshot.zip_format import STORAGE

log = logging.getLogger(__name__)
UPLOADED = "the uploaded file"
FORMAT_SUFFIX = {"zip": ".zip", "jsonLines": ".jsonl", "jsonArray": ".json", "csv": ".csv"}


@dataclass
class ExportJob:
    state: str  # requested | in_progress | completed | failed
    include_storage: bool
    requested_ms: float
    start_ts: int = 0  # the snapshot's timestamp, also its download name
    complete_ms: float | None = None
    path: Path | None = None
    error: str | None = None

    def as_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"state": self.state, "requestor": "snapshotExport",
                               "format": {"format": "zip",
                                          "include_storage": self.include_storage},
                               "_creationTime": self.requested_ms}
        if self.state != "requested":
            doc["start_ts"] = self.start_ts
        if self.complete_ms is not None:
            doc["complete_ts"] = self.complete_ms
        if self.error is not None:
            doc["error_message"] = self.error
        return doc


@dataclass
class ImportJob:
    id: str
    path: Path
    format: str
    table: str | None
    mode: Mode
    created_ms: float
    state: dict[str, Any] = field(default_factory=lambda: {"state": "uploaded"})

    def as_document(self) -> dict[str, Any]:
        return {"_id": self.id, "_creationTime": self.created_ms, "state": dict(self.state)}


class SnapshotJobs:
    """Exports and imports of one deployment, run as tasks of this process."""

    def __init__(self, engine: Engine, on_change: Callable[[], None]) -> None:
        self.engine = engine
        self._on_change = on_change
        self._made: Path | None = None  # the temporary folder, made on first use
        self.export: ExportJob | None = None
        self.imports: dict[str, ImportJob] = {}
        self._uploads: dict[str, list[Path]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def _dir(self) -> Path:
        if self._made is None:
            self._made = Path(tempfile.mkdtemp(prefix="reactive-store-snapshots-"))
        return self._made

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def changed(self) -> None:
        self._on_change()

    # -- exports ----------------------------------------------------------------------------
    def request_export(self, include_storage: bool) -> None:
        if self.export is not None and self.export.state in ("requested", "in_progress"):
            raise BadRequest("A snapshot export is already requested or in progress",
                             "ExportInProgress")
        self.export = ExportJob("requested", include_storage, time.time() * 1000.0)
        self._spawn(self._run_export(self.export))
        self.changed()

    async def _run_export(self, job: ExportJob) -> None:
        path = self._dir / f"export-{secrets.token_hex(8)}.zip"
        job.state = "in_progress"
        self.changed()
        try:
            with path.open("wb") as out:
                report = await export_snapshot(self.engine, out,
                                               include_storage=job.include_storage)
        except Exception as exc:
            log.exception("snapshot export failed")
            path.unlink(missing_ok=True)
            job.state, job.error = "failed", str(exc)
        else:
            old = self.export_file(None)
            if old is not None:
                old.unlink(missing_ok=True)
            job.start_ts, job.path = report.ts, path
            job.state, job.complete_ms = "completed", time.time() * 1000.0
        self.changed()

    def export_file(self, ts: int | None) -> Path | None:
        """The finished export's ZIP (with `ts`: only when it is that export)."""
        job = self.export
        if job is None or job.state != "completed" or job.path is None:
            return None
        return job.path if ts is None or ts == job.start_ts else None

    # -- uploads ----------------------------------------------------------------------------
    def start_upload(self) -> str:
        token = secrets.token_urlsafe(24)
        self._uploads[token] = []
        return token

    def part_path(self, token: str, number: int) -> Path:
        if token not in self._uploads:
            raise BadRequest("unknown or finished upload token; start the upload again",
                             "InvalidUploadToken")
        if not 1 <= number <= 10_000:
            raise BadRequest(f"partNumber must be 1..10000, got {number}", "InvalidPart")
        path = self._dir / f"upload-{token}-{number:05d}"
        self._uploads[token].append(path)
        return path

    def finish_upload(self, token: str, args: dict[str, Any]) -> str:
        """Join the parts into one file and start checking it; the import's id."""
        parts = self._uploads.pop(token, None)
        if parts is None:
            raise BadRequest("unknown or finished upload token", "InvalidUploadToken")
        kind = args.get("format")
        if kind not in FORMAT_SUFFIX:
            raise BadRequest(f"unknown import format {kind!r}", "InvalidImportFormat")
        try:
            mode = Mode(args.get("mode") or Mode.REQUIRE_EMPTY)
        except ValueError:
            raise BadRequest(f"unsupported import mode {args.get('mode')!r}; use "
                             "requireEmpty, append or replace", "InvalidImportMode") from None
        job = ImportJob(secrets.token_hex(16), self._dir / f"import-{token}{FORMAT_SUFFIX[kind]}",
                        kind, args.get("tableName"), mode, time.time() * 1000.0)
        with job.path.open("wb") as out:
            for part in sorted(parts):
                with part.open("rb") as piece:
                    shutil.copyfileobj(piece, out)
                part.unlink()
        self.imports[job.id] = job
        self._spawn(self._check_import(job))
        self.changed()
        return job.id

    # -- imports ----------------------------------------------------------------------------
    async def _check_import(self, job: ImportJob) -> None:
        try:
            message, manual = await self._summary(job)
        except ReactiveStoreError as exc:
            job.state = {"state": "failed", "error_message": exc.message}
        else:
            job.state = {"state": "waiting_for_confirmation", "message_to_confirm": message,
                         "require_manual_confirmation": manual}
        self.changed()

    async def _summary(self, job: ImportJob) -> tuple[str, bool]:
        source = open_source(job.path, self.engine.schema, job.table, job.format, UPLOADED)
        try:
            counts = await asyncio.to_thread(
                lambda: {t: sum(1 for _ in source.rows(t)) for t in source.tables})
        finally:
            source.close()
        async with self.engine.store.read() as tx:
            existing = {t: await tx.count(t, 1 << 62) for t in counts}
        lines = ["Import change summary:"]
        for table, added in counts.items():
            if existing[table] and job.mode is Mode.REQUIRE_EMPTY:
                raise ReactiveStoreError(
                    f"Table {table} already exists. Please choose a new table name or use "
                    "replace/append modes.")
            deleted = existing[table] if job.mode is Mode.REPLACE else 0
            unit = " files" if table == STORAGE else ""
            lines.append(f"  {table}: add {added}{unit}, delete {deleted}{unit} "
                         f"(of {existing[table]})")
        lines.append("Once the import has started, it will run in the background.")
        manual = job.mode is Mode.REPLACE and any(existing.values())
        return "\n".join(lines), manual

    def perform_import(self, import_id: str) -> None:
        job = self.imports.get(import_id)
        if job is None:
            raise BadRequest(f"no import {import_id!r}", "ImportNotFound")
        if job.state["state"] != "waiting_for_confirmation":
            raise BadRequest(f"import {import_id} is {job.state['state']}, not waiting for "
                             "confirmation", "ImportNotWaiting")
        job.state = {"state": "in_progress", "progress_message": "Importing",
                     "checkpoint_messages": []}
        self._spawn(self._run_import(job))
        self.changed()

    async def _run_import(self, job: ImportJob) -> None:
        def progress(done: int, total: int) -> None:
            job.state = {**job.state, "progress_message": f"Importing ({done}/{total} "
                                                          "documents)"}
            self.changed()

        source = None
        try:
            source = open_source(job.path, self.engine.schema, job.table, job.format, UPLOADED)
            report = await import_source(self.engine, source, job.mode, progress)
        except Exception as exc:
            message = exc.message if isinstance(exc, ReactiveStoreError) else "Server Error"
            if not isinstance(exc, ReactiveStoreError):
                log.exception("snapshot import failed")
            job.state = {"state": "failed", "error_message": message}
        else:
            job.state = {"state": "completed", "num_rows_written": report.written}
        finally:
            if source is not None:
                source.close()
            job.path.unlink(missing_ok=True)
        self.changed()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._made is not None:
            shutil.rmtree(self._made, ignore_errors=True)
