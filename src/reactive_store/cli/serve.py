"""Commands that load the app: `serve`/`dev`, `run` (one function), `docs`, `codegen`."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from reactive_store import values
from reactive_store.deployment import Deployment, Settings
from reactive_store.limits import FileLimits, Limits
from reactive_store.observe.observer import ObserveSettings
from reactive_store.observe.terminal import Show, printer


def public_url(ns: argparse.Namespace) -> str | None:
    if getattr(ns, "public_url", None):
        return str(ns.public_url).rstrip("/")
    host = getattr(ns, "host", None)
    if host is None or host in ("0.0.0.0", "::", ""):
        return None
    return f"http://{'[' + host + ']' if ':' in host else host}:{ns.port}"


def file_limits(ns: argparse.Namespace) -> FileLimits:
    from reactive_store.engine.file_tokens import check_pattern

    patterns = tuple(p.strip() for p in getattr(ns, "upload_content_types", "").split(",")
                     if p.strip())
    for pattern in patterns:
        check_pattern(pattern)
    return FileLimits(
        max_upload_bytes=getattr(ns, "max_upload_size", FileLimits.max_upload_bytes),
        upload_url_seconds=getattr(ns, "upload_url_ttl", FileLimits.upload_url_seconds),
        content_types=patterns)


def write_codegen(ns: argparse.Namespace) -> int:
    from reactive_store.app.codegen import GENERATED_DIR, generate_for, stale_files, write_files
    from reactive_store.engine.system_tables import readable_system_tables

    files = generate_for(ns.app, ns.python, readable_system_tables())
    out: Path = ns.out if ns.out is not None else ns.app / GENERATED_DIR
    if ns.check:
        stale = stale_files(out, files)
        for name in stale:
            print(f"{out / name} is missing or out of date", file=sys.stderr)
        if stale:
            print(f"run: reactive-store codegen --app {ns.app}{' --python' if ns.python else ''}",
                  file=sys.stderr)
        return 1 if stale else 0
    changed = write_files(out, files)
    print(f"wrote {', '.join(str(out / n) for n in changed)}" if changed
          else f"{out}: up to date")
    return 0


def write_docs(ns: argparse.Namespace) -> int:
    from reactive_store.app.catalog import markdown
    from reactive_store.app.loader import load_app, unload_app

    app = load_app(ns.app)
    try:
        text = markdown(app.functions, app.schema)
    finally:
        unload_app(app)
    if ns.output is None:
        sys.stdout.write(text)
    else:
        ns.output.write_text(text)
        print(f"wrote {ns.output}")
    return 0


CORS_VARIABLE = "REACTIVE_STORE_CORS_ORIGINS"
GC_THRESHOLD = 10_000  # allocations between young-generation collections (Python's is 700)


def cors_origins(ns: argparse.Namespace) -> tuple[str, ...]:
    """`--cors-origin` options, else $REACTIVE_STORE_CORS_ORIGINS, else any origin for `dev`
    and none (same-origin pages only) for `serve`."""
    from reactive_store.server.cors import ANY_ORIGIN, parse_origins

    given = getattr(ns, "cors_origin", None)
    source = "--cors-origin"
    if not given and os.environ.get(CORS_VARIABLE, "").strip():
        given, source = [os.environ[CORS_VARIABLE]], f"${CORS_VARIABLE}"
    if not given:
        return (ANY_ORIGIN,) if getattr(ns, "command", None) == "dev" else ()
    try:
        return parse_origins(given)
    except ValueError as exc:
        raise SystemExit(f"error: {source}: {exc}") from None


JOB_OPTIONS = ("job_concurrency", "job_batch_size", "job_batch_slots")


def settings_from(ns: argparse.Namespace) -> Settings:
    from reactive_store.engine.engine import EngineConfig

    admin_key = getattr(ns, "admin_key", None)
    if admin_key is None and getattr(ns, "command", None) == "dev":
        import secrets

        admin_key = ns.admin_key = "dev-" + secrets.token_urlsafe(32)
    return Settings(
        app_dir=ns.app.resolve(),
        database_url=ns.database_url or None,
        namespace=ns.db_schema,
        engine=EngineConfig(limits=Limits(function_seconds=ns.function_timeout),
                            files=file_limits(ns), public_url=public_url(ns)),
        admin_key=admin_key,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        observe=ObserveSettings(enabled=getattr(ns, "observe", "on") == "on"),
        cors_origins=cors_origins(ns),
        **{name: getattr(ns, name) for name in JOB_OPTIONS if getattr(ns, name, None)},
    )


def serve(ns: argparse.Namespace) -> int:
    import uvicorn

    from reactive_store.dev import DevReloader
    from reactive_store.server import create_app

    logging.basicConfig(level=ns.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    deployment = _deployment(ns)
    message_bytes = deployment.settings.limits.message_bytes
    if ns.function_logs != "off":
        show = Show(color=sys.stdout.isatty())
        deployment.observer.log.listen(printer(show, jsonl=ns.function_logs == "json"))
    if ns.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(ns.metrics_port, ns.metrics_host, registry=deployment.metrics.registry)
    dev = DevReloader(deployment, echo=lambda line: print(line, flush=True),
                      codegen=not ns.no_codegen) if ns.command == "dev" else None
    deployment.on_started = lambda: _started(ns, deployment, dev is not None)
    app = create_app(deployment, dev=dev)
    # Access lines are info: below that level uvicorn would still format each one unseen.
    uvicorn.run(app, host=ns.host, port=ns.port, log_level=ns.log_level, lifespan="on",
                access_log=ns.log_level in ("trace", "debug", "info"),
                ws="websockets-sansio", ws_max_size=message_bytes or 2**62,
                ws_per_message_deflate=ns.ws_compression == "on")
    return 0


def _deployment(ns: argparse.Namespace) -> Deployment:
    """The deployment to serve; `dev` first writes the placeholder references an app may
    import before codegen ever ran (dev then generates the real ones)."""
    from reactive_store.app.codegen import write_placeholder
    from reactive_store.app.loader import AppLoadError

    try:
        return Deployment(settings_from(ns))
    except AppLoadError as exc:
        if ns.command != "dev" or ns.no_codegen or not write_placeholder(ns.app, exc):
            raise
    return Deployment(settings_from(ns))


def _started(ns: argparse.Namespace, deployment: Deployment, dev: bool) -> None:
    _tune_gc()
    _banner(ns, deployment, dev)


def _tune_gc() -> None:
    """Collect less often: a request allocates hundreds of objects, and with the default
    threshold (700) the cyclic collector ran every few requests, rescanning everything the
    app loaded. What exists once serving begins is frozen out of collection."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


def _banner(ns: argparse.Namespace, deployment: Deployment, dev: bool) -> None:
    app = deployment.app
    modules = {f.path.split(":")[0] for f in app.functions if f.path}
    lines = [
        f"reactive-store {'dev' if dev else 'serve'}: {ns.app.resolve()}",
        f"  open      http://{ns.host}:{ns.port}",
        f"  dashboard http://{ns.host}:{ns.port}/_dashboard  (sign in with the admin key)",
        f"  database  {deployment.database_label} (schema {ns.db_schema!r})",
        f"  app       {len(app.functions)} functions in {len(modules)} modules, "
        f"{len(app.schema.tables)} tables",
    ]
    if ns.metrics_port is not None:
        lines.append(f"  metrics   http://{ns.metrics_host}:{ns.metrics_port}/metrics "
                     "(no key: keep this port private)")
    if dev:
        lines.append(f"  admin key {ns.admin_key}  (Authorization: Convex <key>)")
        lines.append("  watching  functions/ and schema/ for changes")
    print("\n".join(lines), flush=True)


async def run_function(ns: argparse.Namespace) -> Any:
    try:
        raw = orjson.loads(ns.args)
    except orjson.JSONDecodeError as exc:
        raise SystemExit(f"error: ARGS is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise SystemExit("error: ARGS must be a JSON object")
    # A one-shot call: no job runner and no cron sync, so it never claims due jobs.
    settings = dataclasses.replace(settings_from(ns), run_jobs=False)
    deployment = Deployment(settings)
    engine = await deployment.start()
    try:
        outcome = await engine.run(ns.path, raw, internal_ok=True)
    finally:
        await deployment.stop()
    return values.export_clean(outcome.value)
