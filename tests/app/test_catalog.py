"""The function catalog: JSON at /api/functions and Markdown from `reactive-store docs`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from reactive_store.cli import main
from tests.support import ACCOUNTS_APP, write_app

DOCUMENTED = """
from reactive_store import internal_query, query, v

@query(args={"ids": v.array(v.id("accounts")), "mode": v.optional(v.union(v.literal("a"),
       v.literal("b")))}, returns=v.record(v.string(), v.float64()))
async def described(ctx, ids, mode=None):
    \"\"\"Sum balances by owner.

    Errors: none.
    \"\"\"
    return {}

@query(args={}, returns=v.array(v.doc("accounts")))
async def everyone(ctx):
    return []

@internal_query(args={})
async def hidden(ctx):
    return 1
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return write_app(tmp_path / "app", {**ACCOUNTS_APP, "functions/doc.py": DOCUMENTED})


async def test_json_catalog_lists_public_functions(app: Path, serve: Any) -> None:
    url, _ = await serve(app)
    async with httpx.AsyncClient(base_url=url) as http:
        body = (await http.get("/api/functions")).json()
    paths = [f["path"] for f in body["functions"]]
    assert paths == sorted(paths) and "doc:described" in paths and "doc:hidden" not in paths
    described = next(f for f in body["functions"] if f["path"] == "doc:described")
    assert described["kind"] == "query" and described["doc"].startswith("Sum balances")
    assert described["args"]["value"]["ids"]["fieldType"] == {
        "type": "array", "value": {"type": "id", "tableName": "accounts"}}
    assert body["schema"]["accounts"]["indexes"] == {"by_owner": ["owner"]}


def test_markdown_docs(app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "functions.md"
    assert main(["docs", "--app", str(app), "--output", str(out)]) == 0
    text = out.read_text()
    assert "### `doc:described` (query)" in text
    assert ('- args: `{ids: Id<accounts>[], mode?: "a" | "b"}`' in text)
    assert "- returns: `Record<string, number>`" in text
    assert "- returns: `Doc<accounts>[]`" in text
    assert "doc:hidden" not in text
    assert main(["docs", "--app", str(tmp_path / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err
