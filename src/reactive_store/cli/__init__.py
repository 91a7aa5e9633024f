"""The `reactive-store` command line (`main`): `serve` runs the server, `dev` hot-reloads it, `run`
calls one function, `env` reads and writes environment variables, `logs` tails a running
server's function logs, `export` and `import` move snapshots, `docs` and `codegen` describe
the app."""

from __future__ import annotations

import asyncio
import sys

import orjson

from reactive_store.cli.env import run_env
from reactive_store.cli.logs import tail_logs
from reactive_store.cli.parser import admin_key_from_env, build_parser
from reactive_store.cli.serve import run_function, serve, settings_from, write_codegen, write_docs
from reactive_store.cli.snapshot import run_export, run_import
from reactive_store.errors import ReactiveStoreError

__all__ = ["admin_key_from_env", "build_parser", "main", "settings_from"]


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
        if ns.command == "export":
            return run_export(ns)
        if ns.command == "import":
            return run_import(ns)
        result = asyncio.run(run_function(ns))
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
