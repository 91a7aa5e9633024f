"""The command line's arguments: every command, its options and their defaults."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

from reactive_store.limits import FileLimits

ADMIN_KEY_VARIABLES = ("REACTIVE_STORE_ADMIN_KEY", "CONVEX_ADMIN_KEY", "CONVEX_DEPLOY_KEY")


URL_VARIABLES = ("REACTIVE_STORE_URL", "CONVEX_SELF_HOSTED_URL")


ENV_ACTIONS = ("set", "get", "list", "remove")


def admin_key_from_env() -> str | None:
    """The admin key from the environment; apps moving from Convex keep their variables."""
    for name in ADMIN_KEY_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


def add_common_options(parser: argparse.ArgumentParser) -> None:
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
        add_common_options(command)
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=3210)
        command.add_argument("--log-level", default="info" if name == "serve" else "warning")
        add_file_options(command)
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
        command.add_argument(
            "--cors-origin", action="append", default=None, metavar="ORIGIN",
            help="a browser origin (https://app.example.com) allowed to call the HTTP API "
                 "and open the sync socket; repeat it for more, '*' for any (default: "
                 "$REACTIVE_STORE_CORS_ORIGINS, comma-separated, else "
                 + ("same-origin pages only)" if name == "serve" else "any origin)"))
        add_job_options(command)
        command.add_argument(
            "--ws-compression", choices=("on", "off"), default="off",
            help="permessage-deflate on sync sockets: less bandwidth on slow links, but one "
                 "compression per socket per message, which dominates a push to many "
                 "sockets (default: off)")
    run = sub.add_parser("run", help="call one function and print its JSON result")
    add_common_options(run)
    run.add_argument("path", help="function path, e.g. accounts:open")
    run.add_argument("args", nargs="?", default="{}", help="arguments as a JSON object")
    add_env_parser(sub)
    add_logs_parser(sub)
    add_snapshot_parsers(sub)
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


def at_least_one(text: str) -> int:
    """An argparse type: a whole number, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_job_options(command: argparse.ArgumentParser) -> None:
    """How this process runs due scheduled functions (docs/architecture.md, Background work);
    left out, `deployment.Settings` decides (the defaults the help names)."""
    command.add_argument("--job-concurrency", type=at_least_one, metavar="N",
                         help="scheduled actions running at once in this process (default 8)")
    command.add_argument("--job-batch-size", type=at_least_one, metavar="N",
                         help="due scheduled mutations run in one transaction, at most "
                              "(default 512; a batch also stops starting jobs after 200 ms)")
    command.add_argument("--job-batch-slots", type=at_least_one, metavar="N",
                         help="such transactions running at once in the whole deployment, "
                              "each on its own stripe of the job table's pages (default 4)")


def add_file_options(command: argparse.ArgumentParser) -> None:
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


def add_env_parser(sub: Any) -> None:
    env = sub.add_parser(
        "env", help="set, get, list or remove the deployment's environment variables",
        description="Without --url, works directly on the database (like `run`); with --url "
                    "(or $REACTIVE_STORE_URL / $CONVEX_SELF_HOSTED_URL), through a running "
                    "server, which requires the admin key.")
    add_common_options(env)
    env.add_argument("--url", default=next((os.environ[n] for n in URL_VARIABLES
                                            if os.environ.get(n)), None),
                     help="a running server's URL (default: $REACTIVE_STORE_URL, else "
                          "$CONVEX_SELF_HOSTED_URL; without it, the database directly)")
    env.add_argument("action", choices=ENV_ACTIONS)
    env.add_argument("name", nargs="?", help="variable name (set, get, remove)")
    env.add_argument("value", nargs="?",
                     help="value (set); leave it out or give '-' to read it from stdin, "
                          "which keeps it out of your shell history")


def add_logs_parser(sub: Any) -> None:
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


def add_snapshot_parsers(sub: Any) -> None:
    export = sub.add_parser(
        "export", help="export the deployment's data to a snapshot ZIP (Convex's format)",
        description="Works on the database directly, like `run`: no server needed.")
    add_common_options(export)
    export.add_argument("--path", type=Path, required=True,
                        help="the ZIP file to write (or a folder to write snapshot.zip in)")
    export.add_argument("--include-file-storage", action="store_true",
                        help="also export the stored files' bytes")
    imp = sub.add_parser(
        "import", help="import a snapshot ZIP, or one table from JSONL, JSON or CSV",
        description="All or nothing: every document is validated against the schema and "
                    "the import is one transaction. Without --replace or --append, a "
                    "table that already holds documents is refused (as `npx convex "
                    "import`).")
    add_common_options(imp)
    imp.add_argument("file", type=Path, help="a .zip snapshot, or a .jsonl, .json or .csv file")
    mode = imp.add_mutually_exclusive_group()
    mode.add_argument("--replace", action="store_true",
                      help="delete the documents of the imported tables first")
    mode.add_argument("--append", action="store_true",
                      help="add to the documents already there")
    imp.add_argument("--table", default=None, help="the table a single-table file goes to")
    imp.add_argument("--format", default=None, choices=("zip", "jsonLines", "jsonArray", "csv"),
                     help="the file's format (default: from its extension)")
    imp.add_argument("-y", "--yes", action="store_true",
                     help="do not ask before --replace deletes documents")
