"""Fill the bundled app with one realistic demo session (chat, work orders, orchestration).

    .venv/bin/python scripts/seed_demo.py [--app .] [--database-url URL] [--db-schema app]

Uses the same database as `scripts/dev` (embedded unless DATABASE_URL); run it while the
dev server runs and the UI shows the new session at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

from reactive_store.deployment import Deployment, Settings
from reactive_store.engine import Engine

CHAT = [
    ("user", "The nightly export job crashes on accounts with no email address."),
    ("assistant", "I found it: `export_rows` calls `.lower()` on a null email. I can open a "
                  "work order to fix it and add a regression test."),
    ("user", "Yes please, target the release branch."),
    ("assistant", "Work order created: 'Fix null email crash in nightly export'."),
    ("system", "Worker picked up the work order."),
    ("assistant", "The fix is in review: https://github.com/acme/exporter/pull/42"),
    ("user", "Can you also backfill the accounts that were skipped last night?"),
    ("assistant", "Queued a second work order for the backfill."),
]


async def seed(engine: Engine) -> str:
    async def run(path: str, args: dict[str, Any]) -> Any:
        return (await engine.run_mutation(path, args)).value

    session = await run("chatSessions:create", {"userId": "demo-user",
                                                "title": "Nightly export crash"})
    for role, content in CHAT:
        await run("chatMessages:append", {"sessionId": session, "role": role,
                                          "content": content})
    fix = await run("workOrders:create", {
        "sessionId": session, "workflowType": "bugfix", "title":
        "Fix null email crash in nightly export", "prompt": "Guard export_rows against "
        "null emails and add a regression test.", "requestedBy": "demo-user",
        "status": "submitted", "args": {"testCommand": "pytest tests/export", "retries": 2},
        "target": {"targetRepo": "acme/exporter", "targetBranch": "release/2.4"},
        "links": [{"kind": "github_issue", "value": "https://github.com/acme/exporter/issues/41"}]})
    for status in ("accepted", "running"):
        await run("workOrders:updateStatus", {"workOrderId": fix, "status": status})
    await run("workOrderLinks:add", {"workOrderId": fix, "kind": "pr",
                                     "value": "https://github.com/acme/exporter/pull/42"})
    await run("workOrders:create", {
        "sessionId": session, "workflowType": "data-backfill", "title":
        "Backfill skipped accounts", "prompt": "Re-export accounts skipped on the last run.",
        "requestedBy": "demo-user", "args": {"since": "2026-11-22"}})
    done = await run("workOrders:create", {
        "sessionId": session, "workflowType": "triage", "title": "Triage export alerts",
        "prompt": "Summarise last week's export alerts.", "requestedBy": "demo-user",
        "status": "submitted"})
    for status in ("accepted", "running", "succeeded"):
        await run("workOrders:updateStatus", {"workOrderId": done, "status": status})
    await run("orchestrations:upsert", {"orchestrationId": f"orc-{fix}", "topic":
                                        "Fix null email crash", "repoUrl":
                                        "https://github.com/acme/exporter",
                                        "status": "running"})
    for index, text in enumerate(["Reproduced the crash.", "Patched export_rows.",
                                  "Added a regression test; CI is green."]):
        await run("orchestrations:appendTurn", {
            "orchestrationId": f"orc-{fix}", "index": float(index), "threadId": "thread-1",
            "finalResponse": text, "usage": {"inputTokens": 1200 + index, "outputTokens": 300}})
    await run("orchestrations:recordWorkerPr", {
        "orchestrationId": f"orc-{fix}", "prUrl": "https://github.com/acme/exporter/pull/42",
        "branch": "fix/null-email", "commitSha": "9f1c2ab", "notes": "Ready for review"})
    return str(session)


async def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--app", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--db-schema", default="app")
    ns = parser.parse_args(argv)
    deployment = Deployment(Settings(app_dir=ns.app, database_url=ns.database_url,
                                     namespace=ns.db_schema, run_jobs=False))
    engine = await deployment.start()
    try:
        session = await seed(engine)
    finally:
        await deployment.stop()
    print(f"seeded demo session {session}")
    return session


if __name__ == "__main__":
    asyncio.run(main())
