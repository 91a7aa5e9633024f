"""Function logs reach the official npm clients, which print them the way they do for Convex.

A real `reactive-store serve` runs an app whose functions `print()` and use `logging`; the
npm `ConvexClient` (WebSocket) and `ConvexHttpClient` (HTTP) call them, and what the clients
print on their console (stderr of the Node process) is checked line by line:
`[CONVEX Q(path)] [LOG] ...` for queries, `M` for mutations, `A` for actions.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.clients import node_client
from tests.e2e.servers import ServerPool
from tests.support import write_app

pytestmark = pytest.mark.e2e

SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({"notes": define_table({"body": v.string()})})
"""
FUNCTIONS = """
import logging
from reactive_store import action, mutation, query, v

log = logging.getLogger(__name__)

@query(args={})
async def listed(ctx):
    notes = await ctx.db.query("notes").collect()
    print("listing", len(notes))
    return [n["body"] for n in notes]

@mutation(args={"body": v.string()})
async def add(ctx, body):
    print("adding", body)
    log.warning("careful with %s", body)
    await ctx.db.insert("notes", {"body": body})

@mutation(args={})
async def fail(ctx):
    print("about to fail")
    raise ValueError("nope")

@action(args={})
async def shout(ctx):
    logging.info("from the action")
    return 1

@query(args={})
async def chatty(ctx):
    for i in range(300):
        print("line", i)
    return 0
"""


@pytest.fixture
def log_app(tmp_path: Path) -> Path:
    return write_app(tmp_path / "app", {"schema/__init__.py": SCHEMA,
                                        "functions/logs.py": FUNCTIONS})


def printed(text: str) -> list[str]:
    """The client's `[CONVEX ...]` console lines, in order."""
    return [line for line in text.splitlines() if line.startswith("[CONVEX ")]


async def test_the_npm_sync_client_prints_query_mutation_and_action_logs(
        serve_app: ServerPool, log_app: Path, js_client_dir: Path, tmp_path: Path) -> None:
    url = await serve_app(log_app)
    async with node_client(url, js_client_dir, tmp_path) as node:
        await node.subscribe("s", "logs:listed", {})
        await node.update("s", [])
        _, added = await node.call("mutation", "m1", "logs:add", {"body": "hi"})
        assert added["ok"], node.describe()
        await node.update("s", ["hi"])
        _, failed = await node.call("mutation", "m2", "logs:fail", {})
        assert not failed["ok"] and "nope" in failed["message"]
        _, shouted = await node.call("action", "a1", "logs:shout", {})
        assert shouted["ok"], node.describe()
        await node.close()
        stderr = node.stderr_path.read_text()
    assert printed(stderr) == [
        "[CONVEX Q(logs:listed)] [LOG] listing 0",
        "[CONVEX M(logs:add)] [LOG] adding hi",
        "[CONVEX M(logs:add)] [WARN] careful with hi",
        "[CONVEX Q(logs:listed)] [LOG] listing 1",
        "[CONVEX M(logs:fail)] [LOG] about to fail",
        "[CONVEX M(logs:fail)] Uncaught ValueError: nope",
        "[CONVEX A(logs:shout)] [INFO] from the action",
    ], stderr


def run_http_client(js_dir: Path, url: str, calls: list[dict[str, Any]]
                    ) -> tuple[list[Any], str]:
    proc = subprocess.run(["node", str(js_dir / "http_client.mjs"), url],
                          input=json.dumps(calls), capture_output=True, text=True,
                          timeout=30, cwd=js_dir, check=False)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()], proc.stderr


async def test_the_npm_http_client_prints_logs_and_overflow_is_marked(
        serve_app: ServerPool, log_app: Path, js_client_dir: Path) -> None:
    url = await serve_app(log_app)
    results, stderr = run_http_client(js_client_dir, url, [
        {"kind": "mutation", "path": "logs:add", "args": {"body": "via http"}},
        {"kind": "query", "path": "logs:chatty", "args": {}},
        {"kind": "mutation", "path": "logs:fail", "args": {}},
    ])
    assert [r["ok"] for r in results] == [True, True, False]
    lines = printed(stderr)
    assert lines[:2] == ["[CONVEX M(logs:add)] [LOG] adding via http",
                         "[CONVEX M(logs:add)] [WARN] careful with via http"]
    chatty = [line for line in lines if line.startswith("[CONVEX Q(logs:chatty)]")]
    assert len(chatty) == 256 and chatty[0] == "[CONVEX Q(logs:chatty)] [LOG] line 0"
    assert chatty[-1] == ("[CONVEX Q(logs:chatty)] [ERROR] Log overflow (maximum 256). "
                          "Remaining log lines omitted.")
    assert re.search(r"\[CONVEX M\(logs:fail\)\] \[LOG\] about to fail", stderr)
