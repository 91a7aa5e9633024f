"""Fill the bundled app with one realistic demo session (chat, work orders, orchestration).

    .venv/bin/python scripts/seed_demo.py [--app .] [--database-url URL] [--db-schema app]

Uses the same database options as `reactive-store dev` (embedded PostgreSQL in
APP/.reactive-store unless --database-url or DATABASE_URL; the Postgres schema from
--db-schema or REACTIVE_STORE_DB_SCHEMA, default `app`); run it while the dev server runs
and the UI shows the new session at once. Every write goes through the app's functions.
Prints the new session's id on stdout (a summary goes to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from reactive_store.deployment import Deployment, Settings
from reactive_store.engine.engine import Engine

USER = "demo-user"
REPO = "acme/exporter"
REPO_URL = f"https://github.com/{REPO}"
ISSUE_URL = f"{REPO_URL}/issues/41"
PR_URL = f"{REPO_URL}/pull/42"

# (role, content, metadata) in the order they were said; None marks where a work order
# is created (in ORDERS' order).
CHAT: list[tuple[str, str, Any] | None] = [
    ("user", "The nightly export job crashes on accounts with no email address. "
             f"Stack trace is in {ISSUE_URL}.", {"attachments": [{"url": ISSUE_URL}]}),
    ("assistant", "Found it: `export_rows` calls `.lower()` on a null email. I can open a "
                  "work order to guard it and add a regression test.",
     {"toolCalls": [{"name": "search_code", "args": {"query": "def export_rows"}}]}),
    ("user", "Yes please, target the release/2.4 branch.", None),
    None,
    ("assistant", "Work order created: 'Fix null email crash in nightly export'. A worker "
                  "picked it up and is running it now.", None),
    ("system", "Worker fix-bot joined the orchestration.", None),
    ("user", "Can you also backfill the accounts that were skipped last night?", None),
    None,
    ("assistant", f"Queued a draft for the backfill. The fix is in review: {PR_URL}", None),
    None,
    ("assistant", "Also triaged last week's export alerts: all 12 were this crash; I closed "
                  "the 11 duplicates.", None),
]

ORDERS: list[dict[str, Any]] = [
    {"workflowType": "bugfix", "title": "Fix null email crash in nightly export",
     "prompt": "Guard export_rows against null emails and add a regression test.",
     "status": "submitted", "args": {"testCommand": "pytest tests/export", "retries": 2},
     "target": {"targetRepo": REPO, "targetBranch": "release/2.4"},
     "links": [{"kind": "github_issue", "value": ISSUE_URL}]},
    {"workflowType": "data-backfill", "title": "Backfill skipped accounts",
     "prompt": "Re-export the accounts skipped by last night's run.",
     "args": {"since": "2025-11-22", "dryRun": True},
     "target": {"targetRepo": REPO, "targetBranch": "main"}},
    {"workflowType": "triage", "title": "Triage last week's export alerts",
     "prompt": "Summarise last week's export alerts and close the duplicates.",
     "status": "submitted", "args": {"days": 7},
     "target": {"targetRepo": REPO, "targetBranch": "main"}},
]

# How far each order moves after it is created (the fix runs, the triage is done).
MOVES = [["accepted", "running"], [], ["accepted", "running", "succeeded"]]

TURNS = [
    ("Reproduced the crash with an account whose email is null.",
     [{"type": "command", "command": "pytest tests/export -k null_email", "exitCode": 1}]),
    ("Patched export_rows to skip the lower() call when the email is missing.",
     [{"type": "file_change", "path": "exporter/rows.py"}]),
    ("Added a regression test; the export suite is green.",
     [{"type": "command", "command": "pytest tests/export", "exitCode": 0}]),
]


async def seed(engine: Engine) -> str:
    """Create the demo session through the app's functions; returns the session id."""
    async def run(path: str, args: dict[str, Any]) -> Any:
        return (await engine.run_mutation(path, args)).value

    session = await run("chatSessions:create", {"userId": USER,
                                                "title": "Nightly export crash"})
    orders: list[str] = []
    for entry in CHAT:
        if entry is None:
            spec = ORDERS[len(orders)]
            order = await run("workOrders:create", {"sessionId": session,
                                                    "requestedBy": USER, **spec})
            for status in MOVES[len(orders)]:
                await run("workOrders:updateStatus", {"workOrderId": order, "status": status})
            orders.append(order)
            continue
        role, content, metadata = entry
        message: dict[str, Any] = {"sessionId": session, "role": role, "content": content}
        if metadata is not None:
            message["metadata"] = metadata
        await run("chatMessages:append", message)
    fix = orders[0]
    orchestration = f"orc-{fix}"
    await run("orchestrations:upsert", {"orchestrationId": orchestration,
                                        "topic": ORDERS[0]["title"], "repoUrl": REPO_URL,
                                        "status": "running"})
    for index, (text, items) in enumerate(TURNS):
        await run("orchestrations:appendTurn", {
            "orchestrationId": orchestration, "index": index, "threadId": "thread-fix-1",
            "finalResponse": text, "items": items,
            "usage": {"inputTokens": 1200 + 300 * index, "outputTokens": 250 + 40 * index}})
    await run("orchestrations:recordWorkerPr", {
        "orchestrationId": orchestration, "prUrl": PR_URL, "branch": "fix/null-email",
        "commitSha": "9f1c2ab4d7e0", "notes": "Ready for review; CI green."})
    await run("workOrderLinks:add", {"workOrderId": fix, "kind": "pr", "value": PR_URL})
    await run("workOrderLinks:add", {"workOrderId": fix, "kind": "commit",
                                     "value": "9f1c2ab4d7e0"})
    return str(session)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--app", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the app folder (default: this repository)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="PostgreSQL URL (default: $DATABASE_URL, else embedded)")
    parser.add_argument("--db-schema",
                        default=os.environ.get("REACTIVE_STORE_DB_SCHEMA", "app"),
                        help="Postgres schema of the deployment (default: app)")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> str:
    """Seed the deployment the command line names; print and return the session id."""
    ns = parse_args(argv)
    deployment = Deployment(Settings(app_dir=ns.app.resolve(),
                                     database_url=ns.database_url or None,
                                     namespace=ns.db_schema, run_jobs=False))
    engine = await deployment.start()
    try:
        session = await seed(engine)
    finally:
        await deployment.stop()
    print(session)
    print(f"seeded demo session {session} ({deployment.database_label}, schema "
          f"{ns.db_schema!r})", file=sys.stderr)
    return session


if __name__ == "__main__":
    asyncio.run(main())
