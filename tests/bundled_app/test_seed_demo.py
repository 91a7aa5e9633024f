"""scripts/seed_demo.py fills one realistic session, end to end through its command line."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support import new_namespace

ROOT = Path(__file__).resolve().parents[2]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("seed_demo", ROOT / "scripts" / "seed_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_seed_demo_main(deploy: Any, database_url: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    namespace = new_namespace()
    engine = await deploy(ROOT, namespace=namespace)  # the fixture drops the namespace after
    session = await load_script().main(["--app", str(ROOT), "--database-url", database_url,
                                        "--db-schema", namespace])
    assert capsys.readouterr().out == f"{session}\n"

    async def ask(path: str, args: dict[str, Any]) -> Any:
        return (await engine.run_query(path, args)).value

    assert (await ask("chatSessions:list", {}))[0]["_id"] == session
    messages = await ask("chatMessages:listBySession", {"sessionId": session})
    assert len(messages) == 8
    assert {m["role"] for m in messages} == {"user", "assistant", "system"}
    assert any("metadata" in m for m in messages)
    orders = await ask("workOrders:listBySession", {"sessionId": session})
    assert [o["status"] for o in orders] == ["running", "draft", "succeeded"]
    for order in orders:
        full = await ask("workOrders:get", {"workOrderId": order["_id"]})
        assert full["args"] and full["target"] is not None
    fix = await ask("workOrders:get", {"workOrderId": orders[0]["_id"]})
    assert sorted(link["kind"] for link in fix["links"]) == ["commit", "github_issue", "pr"]
    state = await ask("orchestrations:getState", {"orchestrationId": f"orc-{fix['_id']}"})
    assert [t["index"] for t in state["turns"]] == [0.0, 1.0, 2.0]
    assert all(t["finalResponse"] and t["usage"] for t in state["turns"])
    assert [p["prUrl"] for p in state["workerPrs"]] == [
        link["value"] for link in fix["links"] if link["kind"] == "pr"]
