"""The demo seed fills a realistic session the UI can show."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


async def test_seed_demo(app: Any) -> None:
    spec = importlib.util.spec_from_file_location("seed_demo", ROOT / "scripts" / "seed_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    session = await module.seed(app)
    messages = (await app.run_query("chatMessages:listBySession", {"sessionId": session})).value
    orders = (await app.run_query("workOrders:listBySession", {"sessionId": session})).value
    assert len(messages) == 8
    assert sorted(o["status"] for o in orders) == ["draft", "running", "succeeded"]
    state = (await app.run_query("orchestrations:getState",
                                 {"orchestrationId": f"orc-{orders[0]['_id']}"})).value
    assert len(state["turns"]) == 3 and len(state["workerPrs"]) == 1
