"""The `reactive-store` command line: `serve` runs the server, `dev` hot-reloads it, `run`
calls one function, `env` reads and writes environment variables, `logs` tails a running
server's function logs, `docs` and `codegen` describe the app."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

import orjson

from reactive_store import values
from reactive_store.deployment import Deployment, Settings
from reactive_store.errors import ReactiveStoreError
from reactive_store.limits import FileLimits, Limits
from reactive_store.observe.observer import ObserveSettings
from reactive_store.observe.terminal import Show, format_entry, printer

ADMIN_KEY_VARIABLES = ("REACTIVE_STORE_ADMIN_KEY", "CONVEX_ADMIN_KEY", "CONVEX_DEPLOY_KEY")
URL_VARIABLES = ("REACTIVE_STORE_URL", "CONVEX_SELF_HOSTED_URL")
ENV_ACTIONS = ("set", "get", "list", "remove")


def admin_key_from_env() -> str | None:
    """The admin key from the environment; apps moving from Convex keep their variables."""
    for name in ADMIN_KEY_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", type=Path, default=Path.cwd(),
                        help="folder holding schema/ and functions/ (default: current folder)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="PostgreSQL URL (default: $DATABASE_URL; without it, an embedded "
                             "PostgreSQL in APP/.reactive-store/)")
    parser.add_argument("--db-schema", default=os.environ.get("REACTIVE_STORE_DB_SCHEMA", "app"),
                        help="Postgres schema the deployment's tables live in (default: app)")
    parser.add_argument("--function-timeout", type=float, default=1.0,
                        help="seconds a query or mutation may run (default: 1)")
    parser.add_argument("--observe", choices=("on", "off"), default="on",
                        help="capture function logs and record executions and function "
                             "metrics (default: on; off: logLines stay empty)")
    parser.add_argument("--admin-key", default=admin_key_from_env(),
                        help="key that may call internal functions and act as any identity "
                             "(default: $REACTIVE_STORE_ADMIN_KEY, else $CONVEX_ADMIN_KEY or "
                             "$CONVEX_DEPLOY_KEY; `dev` generates one)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reactive-store", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("serve", "run the server"),
                       ("dev", "run the server and hot-reload the app on every change")):
        command = sub.add_parser(name, help=text)
        _common(command)
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=3210)
        command.add_argument("--log-level", default="info" if name == "serve" else "warning")
        _file_options(command)
        if name == "dev":
            command.add_argument("--no-codegen", action="store_true",
                                 help="do not write functions/_generated/ (typed client code) "
                                      "on start and after every reload")
        command.add_argument(
            "--function-logs", choices=("off", "text", "json"),
            default="off" if name == "serve" else "text",
            help="print every function execution on stdout: as `convex dev` does (text) or "
                 "one JSON object per line for log shippers (json); default: "
                 + ("off" if name == "serve" else "text"))
        command.add_argument("--metrics-port", type=int, default=None,
                             help="also serve GET /metrics without the admin key on this "
                                  "port (bind it to a private interface)")
        command.add_argument("--metrics-host", default="127.0.0.1")
    run = sub.add_parser("run", help="call one function and print its JSON result")
    _common(run)
    run.add_argument("path", help="function path, e.g. accounts:open")
    run.add_argument("args", nargs="?", default="{}", help="arguments as a JSON object")
    _env_parser(sub)
    _logs_parser(sub)
    docs = sub.add_parser("docs", help="write the function catalog as Markdown")
    docs.add_argument("--app", type=Path, default=Path.cwd())
    docs.add_argument("--output", type=Path, default=None,
                      help="file to write (default: print to stdout)")
    codegen = sub.add_parser("codegen", help="write typed client code for the app's functions: "
                                             "TypeScript for the npm convex client, or Python")
    codegen.add_argument("--app", type=Path, default=Path.cwd())
    codegen.add_argument("--out", type=Path, default=None,
                         help="folder to write into (default: APP/functions/_generated)")
    codegen.add_argument("--python", action="store_true",
                         help="write api.py (typed references for reactive_store.client) "
                              "instead of api.d.ts, api.js and dataModel.d.ts")
    codegen.add_argument("--check", action="store_true",
                         help="write nothing; exit 1 if the files there are missing or stale")
    return parser


SIZE = re.compile(r"(\d+)\s*(|b|kb|kib|mb|mib|gb|gib|tb|tib)", re.IGNORECASE)
UNITS = {"": 1, "b": 1, "kb": 10**3, "kib": 2**10, "mb": 10**6, "mib": 2**20, "gb": 10**9,
         "gib": 2**30, "tb": 10**12, "tib": 2**40}


def parse_size(text: str) -> int:
    """A byte count: "1048576", "200MB", "1GiB"."""
    match = SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 200MB or 1GiB")
    return int(match.group(1)) * UNITS[match.group(2).lower()]


def _file_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--public-url", default=os.environ.get("REACTIVE_STORE_PUBLIC_URL"),
                         help="base URL clients reach this server at, for file and upload "
                              "URLs (default: $REACTIVE_STORE_PUBLIC_URL, else "
                              "http://HOST:PORT; relative URLs when HOST is 0.0.0.0 or ::)")
    command.add_argument("--max-upload-size", type=parse_size, default=FileLimits.max_upload_bytes,
                         help="largest file an upload or ctx.storage.store() may hold "
                              "(default: 1GiB)")
    command.add_argument("--upload-url-ttl", type=float, default=FileLimits.upload_url_seconds,
                         help="seconds an upload URL stays valid (default: 3600)")
    command.add_argument("--upload-content-types", default="",
                         help="comma-separated content types uploads may have, e.g. "
                              "'image/*,application/pdf' (default: any)")


def _public_url(ns: argparse.Namespace) -> str | None:
    if getattr(ns, "public_url", None):
        return str(ns.public_url).rstrip("/")
    host = getattr(ns, "host", None)
    if host is None or host in ("0.0.0.0", "::", ""):
        return None
    return f"http://{'[' + host + ']' if ':' in host else host}:{ns.port}"


def _file_limits(ns: argparse.Namespace) -> FileLimits:
    from reactive_store.engine.file_tokens import check_pattern

    patterns = tuple(p.strip() for p in getattr(ns, "upload_content_types", "").split(",")
                     if p.strip())
    for pattern in patterns:
        check_pattern(pattern)
    return FileLimits(
        max_upload_bytes=getattr(ns, "max_upload_size", FileLimits.max_upload_bytes),
        upload_url_seconds=getattr(ns, "upload_url_ttl", FileLimits.upload_url_seconds),
        content_types=patterns)


def _env_parser(sub: Any) -> None:
    env = sub.add_parser(
        "env", help="set, get, list or remove the deployment's environment variables",
        description="Without --url, works directly on the database (like `run`); with --url "
                    "(or $REACTIVE_STORE_URL / $CONVEX_SELF_HOSTED_URL), through a running "
                    "server, which requires the admin key.")
    _common(env)
    env.add_argument("--url", default=next((os.environ[n] for n in URL_VARIABLES
                                            if os.environ.get(n)), None),
                     help="a running server's URL (default: $REACTIVE_STORE_URL, else "
                          "$CONVEX_SELF_HOSTED_URL; without it, the database directly)")
    env.add_argument("action", choices=ENV_ACTIONS)
    env.add_argument("name", nargs="?", help="variable name (set, get, remove)")
    env.add_argument("value", nargs="?",
                     help="value (set); leave it out or give '-' to read it from stdin, "
                          "which keeps it out of your shell history")
def _logs_parser(sub: Any) -> None:
    logs = sub.add_parser("logs", help="tail the function logs of a running server")
    logs.add_argument("--url", default=next((os.environ[n] for n in URL_VARIABLES
                                             if os.environ.get(n)), "http://127.0.0.1:3210"),
                      help="the server (default: $REACTIVE_STORE_URL, else "
                           "$CONVEX_SELF_HOSTED_URL, else http://127.0.0.1:3210)")
    logs.add_argument("--admin-key", default=admin_key_from_env(),
                      help="the server's admin key (default: $REACTIVE_STORE_ADMIN_KEY, ...)")
    logs.add_argument("--success", action="store_true",
                      help="only successful executions, each with its duration")
    logs.add_argument("--failure", action="store_true", help="only failed executions")
    logs.add_argument("--function", default=None,
                      help="only this function (a path like notes:add, or a module: notes:)")
    logs.add_argument("--history", type=int, default=0,
                      help="first print the last N executions the server still holds")
    logs.add_argument("--jsonl", action="store_true", help="one JSON object per execution")


def tail_logs(ns: argparse.Namespace) -> int:
    """Poll `/api/stream_function_logs` and print each execution until interrupted."""
    import time

    import httpx

    if not ns.admin_key:
        print("error: the logs need the admin key: --admin-key or $REACTIVE_STORE_ADMIN_KEY",
              file=sys.stderr)
        return 1
    both = ns.success == ns.failure
    show = Show(successes=ns.success or both, failures=ns.failure or both,
                completions=ns.success, color=sys.stdout.isatty())
    params: dict[str, Any] = {"cursor": 0, "wait": 0}
    if ns.function:
        params["function"] = ns.function
    if not both:
        params["status"] = "success" if ns.success else "failure"
    headers = {"Authorization": f"Convex {ns.admin_key}"}
    first, failures = True, 0
    with httpx.Client(base_url=ns.url.rstrip("/"), headers=headers, timeout=40) as http:
        while True:
            try:
                response = http.get("/api/stream_function_logs", params=params)
            except httpx.HTTPError as exc:
                failures += 1
                if failures > 3:
                    print(f"warning: cannot reach {ns.url} ({exc}); retrying", file=sys.stderr)
                time.sleep(min(10.0, 0.25 * 2 ** failures))
                continue
            if response.status_code != 200:
                print(f"error: {ns.url} answered {response.status_code}: {response.text}",
                      file=sys.stderr)
                return 1
            failures = 0
            body = response.json()
            if first:
                print(f"Watching logs of {ns.url} ...", file=sys.stderr, flush=True)
            entries = body["entries"][-ns.history:] if first else body["entries"]
            if not first or ns.history > 0:
                _print_entries(entries, show, ns.jsonl)
            first = False
            params |= {"cursor": body["newCursor"], "wait": 10}


def _print_entries(entries: list[dict[str, Any]], show: Show, jsonl: bool) -> None:
    for entry in entries:
        if jsonl:
            print(orjson.dumps(entry).decode())
        else:
            for line in format_entry(entry, show):
                print(line)
    sys.stdout.flush()


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
                            files=_file_limits(ns), public_url=_public_url(ns)),
        admin_key=admin_key,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        observe=ObserveSettings(enabled=getattr(ns, "observe", "on") == "on"),
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
    deployment.on_started = lambda: _banner(ns, deployment, dev is not None)
    app = create_app(deployment, dev=dev)
    uvicorn.run(app, host=ns.host, port=ns.port, log_level=ns.log_level, lifespan="on",
                ws_max_size=message_bytes or 2**62)
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


async def _run(ns: argparse.Namespace) -> Any:
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


def _env_change(ns: argparse.Namespace) -> tuple[str, str | None] | None:
    """What `env` was asked to change, after checking its arguments (None: a read)."""
    from reactive_store.engine.environment import check_name, check_value

    if ns.action == "list":
        if ns.name is not None:
            raise SystemExit("error: `env list` takes no name")
        return None
    if ns.name is None:
        raise SystemExit(f"error: `env {ns.action}` needs a variable NAME")
    name = check_name(ns.name)
    if ns.action == "set":
        value = ns.value
        if value is None or value == "-":
            value = sys.stdin.read().removesuffix("\n")
        return name, check_value(name, value)
    if ns.value is not None:
        raise SystemExit(f"error: `env {ns.action}` takes only a NAME")
    return (name, None) if ns.action == "remove" else None


Variables = dict[str, str]


async def _env_direct(ns: argparse.Namespace, change: tuple[str, str | None] | None
                      ) -> tuple[Variables, Variables]:
    """Apply `change` on the database itself; the variables before and after it."""
    deployment = Deployment(dataclasses.replace(settings_from(ns), run_jobs=False))
    await deployment.start()
    try:
        before = await deployment.environment()
        if change is None:
            return before, before
        await deployment.update_environment([change])
        return before, await deployment.environment()
    finally:
        await deployment.stop()


def _env_http(ns: argparse.Namespace, change: tuple[str, str | None] | None
              ) -> tuple[Variables, Variables]:
    """The same through a running server's admin endpoints."""
    import httpx

    if not ns.admin_key:
        raise SystemExit("error: `env --url` needs the admin key (--admin-key or "
                         "$REACTIVE_STORE_ADMIN_KEY)")
    headers = {"Authorization": f"Convex {ns.admin_key}"}

    def listed(http: httpx.Client) -> Variables:
        body = _checked(http.get("/api/environment_variables"))
        return {v["name"]: v["value"] for v in body["environmentVariables"]}

    with httpx.Client(base_url=ns.url.rstrip("/"), headers=headers, timeout=30) as http:
        before = listed(http)
        if change is None:
            return before, before
        body = {"changes": [{"name": change[0], "value": change[1]}]}
        _checked(http.post("/api/update_environment_variables", json=body))
        return before, listed(http)


def _checked(response: Any) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        raise SystemExit(f"error: the server answered {response.status_code}: "
                         f"{body.get('message', response.text[:200])}")
    return body


def run_env(ns: argparse.Namespace) -> int:
    """`env set|get|list|remove`; values go to stdout only for `get` and `list`."""
    change = _env_change(ns)
    if ns.url:
        before, after = _env_http(ns, change)
    else:
        before, after = asyncio.run(_env_direct(ns, change))
    if ns.action == "list":
        sys.stdout.write("".join(f"{k}={v}\n" for k, v in sorted(after.items())))
    elif ns.action == "get":
        if ns.name not in after:
            print(f"error: environment variable {ns.name} is not set", file=sys.stderr)
            return 1
        sys.stdout.write(after[ns.name] + "\n")
    elif ns.action == "set":
        print(f"set {ns.name}")
    else:
        print(f"removed {ns.name}" if ns.name in before else f"{ns.name} was not set")
    return 0


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        if ns.command in ("serve", "dev"):
            return serve(ns)
        if ns.command == "docs":
            return write_docs(ns)
        if ns.command == "env":
            return run_env(ns)
        if ns.command == "codegen":
            return write_codegen(ns)
        if ns.command == "logs":
            return tail_logs(ns)
        result = asyncio.run(_run(ns))
    except KeyboardInterrupt:
        return 130
    except ReactiveStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
