"""The npm ConvexClient against `reactive-store dev` (hot reload) and the bundled app."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.clients import http_call, is_event, node_client
from tests.e2e.servers import ServeApp
from tests.support import write_app

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]

GREETING = """
from reactive_store import query

@query
async def greeting(ctx):
    return "VERSION"
"""


async def test_npm_subscription_sees_a_hot_reload_without_reconnecting(
    serve_app: ServeApp, js_client_dir: Path, tmp_path: Path,
) -> None:
    app = write_app(tmp_path / "app", {"functions/hello.py": GREETING.replace("VERSION", "v1")})
    url = await serve_app(app, command="dev")
    async with node_client(url, js_client_dir, tmp_path) as node:
        await node.subscribe("g", "hello:greeting", {})
        seen = await node.update("g", "v1")
        (app / "functions" / "hello.py").write_text(GREETING.replace("VERSION", "v2"))
        seen = await node.update("g", "v2", after=seen)
        # a broken edit keeps v2 serving; fixing it pushes v3
        (app / "functions" / "hello.py").write_text("def broken(:\n")
        await asyncio.sleep(0.5)
        (app / "functions" / "hello.py").write_text(GREETING.replace("VERSION", "v3"))
        await node.update("g", "v3", after=seen)
        counts = {e["connectionCount"] for e in node.events if e.get("event") == "connection"}
        assert max(counts) == 1, f"the socket must stay open across reloads: {counts}"
        await node.close()


async def test_npm_client_sees_a_work_order_status_change_pushed(
    serve_app: ServeApp, js_client_dir: Path, tmp_path: Path,
) -> None:
    url = await serve_app(ROOT)
    session = await http_call(url, "mutation", "chatSessions:create",
                              {"userId": "u", "title": "t"})
    order = await http_call(url, "mutation", "workOrders:create", {
        "sessionId": session, "workflowType": "fix", "prompt": "p", "title": "Fix",
        "requestedBy": "u"})
    async with node_client(url, js_client_dir, tmp_path) as node:
        await node.subscribe("orders", "workOrders:listBySession", {"sessionId": session})

        def statuses(event: dict[str, Any], wanted: str) -> bool:
            value = event.get("value")
            return (is_event("update", id="orders")(event) and isinstance(value, list)
                    and [o["status"] for o in value] == [wanted])

        index, first = await node.wait(lambda e: statuses(e, "draft"))
        await http_call(url, "mutation", "workOrders:updateStatus",
                        {"workOrderId": order, "status": "submitted"})
        _, pushed = await node.wait(lambda e: statuses(e, "submitted"), after=index)
        assert [o["_id"] for o in pushed["value"]] == [order]
        assert [o["_id"] for o in first["value"]] == [order]
        counts = {e["connectionCount"] for e in node.events if e.get("event") == "connection"}
        assert max(counts) == 1, f"the update must arrive on the first connection: {counts}"
        await node.close()
