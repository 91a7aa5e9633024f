"""`reactive-store export` and `import`: snapshots in Convex's ZIP format, on the database.

Like `run` and `env` without `--url`, these work on the deployment's database directly
(`--database-url`, `--db-schema`, `--app`): a snapshot streams between Postgres and the
file with no server in between and no upload of the whole file, and it works before any
server has started. An import still commits through the engine's normal path, so every
running server's subscribers see it at once. (`npx convex export/import` go through a
server's HTTP endpoints instead: see server/snapshot_api.py.)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path

from reactive_store.cli.serve import settings_from
from reactive_store.deployment import Deployment
from reactive_store.engine.engine import Engine
from reactive_store.snapshot.exporter import export_snapshot
from reactive_store.snapshot.importer import ImportReport, Mode, import_source
from reactive_store.snapshot.progress import ProgressBar
from reactive_store.snapshot.sources import open_source
from reactive_store.snapshot.zip_format import SnapshotError


async def _with_engine(ns: argparse.Namespace) -> tuple[Deployment, Engine]:
    deployment = Deployment(dataclasses.replace(settings_from(ns), run_jobs=False))
    return deployment, await deployment.start()


def run_export(ns: argparse.Namespace) -> int:
    """`export --path FILE.zip [--include-file-storage]`."""
    path: Path = ns.path
    if path.is_dir():
        path = path / "snapshot.zip"
    if path.exists():
        raise SnapshotError(f"{path} already exists; choose another --path")
    return asyncio.run(_export(ns, path))


async def _export(ns: argparse.Namespace, path: Path) -> int:
    deployment, engine = await _with_engine(ns)
    bar = ProgressBar(f"Exporting to {path.name}")
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("wb") as out:
            report = await export_snapshot(engine, out, include_storage=ns.include_file_storage,
                                           progress=bar)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
        await deployment.stop()
    bar.finish()
    files = f" and {report.files} files" if ns.include_file_storage else ""
    print(f"Exported {sum(report.rows.values())} documents in {len(report.rows)} tables"
          f"{files} at timestamp {report.ts} to {path}", file=sys.stderr)
    return 0


def run_import(ns: argparse.Namespace) -> int:
    """`import FILE [--replace|--append] [--table T] [--format F] [--yes]`."""
    return asyncio.run(_import(ns))


async def _import(ns: argparse.Namespace) -> int:
    mode = Mode.REPLACE if ns.replace else Mode.APPEND if ns.append else Mode.REQUIRE_EMPTY
    deployment, engine = await _with_engine(ns)
    try:
        source = open_source(ns.file, engine.schema, ns.table, ns.format)
        try:
            if mode is Mode.REPLACE and not ns.yes and not await _confirm(engine, source.tables):
                print("Import canceled", file=sys.stderr)
                return 1
            bar = ProgressBar(f"Importing {ns.file.name}")
            report = await import_source(engine, source, mode, progress=bar)
            bar.finish()
        finally:
            source.close()
    finally:
        await deployment.stop()
    print(_summary(report, ns.file), file=sys.stderr)
    return 0


async def _confirm(engine: Engine, tables: list[str]) -> bool:
    """On a terminal, ask before --replace deletes documents (as `npx convex import`)."""
    if not sys.stdin.isatty():
        return True
    async with engine.store.read() as tx:
        counts = {t: await tx.count(t, 1 << 62) for t in tables}
    doomed = {t: n for t, n in counts.items() if n}
    if not doomed:
        return True
    for table, count in doomed.items():
        print(f"  {table}: {count} existing documents will be deleted", file=sys.stderr)
    answer = input("Perform import? [Y/n] ").strip().lower()
    return answer in ("", "y", "yes")


def _summary(report: ImportReport, path: Path) -> str:
    tables = ", ".join(f"{t} {n}" for t, n in report.rows.items())
    deleted = sum(report.deleted.values())
    return (f"Added {report.written} documents from {path.name} ({tables})"
            + (f", {report.files} files" if report.files else "")
            + (f"; deleted {deleted} existing documents" if deleted else ""))
