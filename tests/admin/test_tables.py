"""`_system/cli/tables`, `tableData`, `tableSize`, `queryTable`: what `npx convex data` reads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive_store.admin import tables
from reactive_store.client import ClientError
from tests.admin.conftest import Admin

pytestmark = pytest.mark.e2e


def page_args(numItems: float, cursor: str | None = None, **args: Any) -> dict[str, Any]:
    return {**args, "paginationOpts": {"numItems": numItems, "cursor": cursor}}


async def add(client: Any, body: str, rank: int) -> str:
    doc_id: str = await client.mutation("notes:add", {"body": body, "rank": rank})
    return doc_id


async def test_tables_lists_the_apps_tables_as_one_page(admin: Admin) -> None:
    client, _, _ = admin
    result = await client.query("_system/cli/tables", page_args(10000.0))
    assert result == {"page": [{"name": "notes"}, {"name": "tags"}], "isDone": True,
                      "continueCursor": "end"}
    assert await client.query("_system/cli/tables:default", page_args(1.0)) == result


async def test_table_data_pages_by_creation_time_and_keeps_int64(admin: Admin) -> None:
    client, _, _ = admin
    for rank in range(5):
        await add(client, f"n{rank}", rank)
    first = await client.query("_system/cli/tableData",
                               page_args(2.0, table="notes", order="desc"))
    assert [d["body"] for d in first["page"]] == ["n4", "n3"]
    assert first["isDone"] is False
    doc = first["page"][0]
    assert type(doc["rank"]) is int and type(doc["_creationTime"]) is float
    assert set(doc) == {"_id", "_creationTime", "body", "rank"}
    rest = await client.query("_system/cli/tableData",
                              page_args(10.0, first["continueCursor"], table="notes",
                                        order="desc"))
    assert [d["body"] for d in rest["page"]] == ["n2", "n1", "n0"] and rest["isDone"]
    oldest = await client.query("_system/cli/tableData",
                                page_args(1.0, table="notes", order="asc"))
    assert [d["body"] for d in oldest["page"]] == ["n0"]


async def test_a_page_is_capped_and_the_cursor_brings_the_rest(
        admin: Admin, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _, _ = admin
    monkeypatch.setattr(tables, "MAX_PAGE", 2)
    for rank in range(3):
        await add(client, f"n{rank}", rank)
    first = await client.query("_system/cli/tableData",
                               page_args(101.0, table="notes", order="asc"))
    assert len(first["page"]) == 2 and first["isDone"] is False


async def test_table_data_reads_readable_system_tables_only(admin: Admin) -> None:
    client, deployment, _ = admin
    await client.mutation("notes:later", {"delay": 60.0})
    jobs = await client.query("_system/cli/tableData",
                              page_args(5.0, table="_scheduled_functions", order="desc"))
    assert [job["name"] for job in jobs["page"]] == ["notes:add"]
    await deployment.update_environment([("SECRET", "s")])
    with pytest.raises(ClientError, match="'_environment_variables' is not readable"):
        await client.query("_system/cli/tableData",
                           page_args(5.0, table="_environment_variables", order="desc"))


@pytest.mark.parametrize(("path", "args", "message"), [
    ("_system/cli/tableData", page_args(5.0, table="nope", order="desc"),
     r"there is no table 'nope' in this deployment \(its tables: notes, tags\)"),
    ("_system/cli/tableData", page_args(5.0, table="notes", order="sideways"),
     "order"),
    ("_system/cli/tableData", {"table": "notes", "order": "asc"}, "paginationOpts"),
    ("_system/cli/tableSize", {"tableName": "nope"}, "there is no table 'nope'"),
    ("_system/cli/queryTable", {"tableName": "nope"}, "there is no table 'nope'"),
])
async def test_bad_arguments_are_refused_with_what_was_wrong(
        admin: Admin, path: str, args: dict[str, Any], message: str) -> None:
    client, _, _ = admin
    with pytest.raises(ClientError, match=message):
        await client.query(path, args)


async def test_table_size_counts_as_a_number(admin: Admin) -> None:
    client, _, _ = admin
    assert await client.query("_system/cli/tableSize:default", {"tableName": "notes"}) == 0.0
    await add(client, "a", 1)
    await add(client, "b", 2)
    size = await client.query("_system/cli/tableSize:default", {"tableName": "notes"})
    assert size == 2.0 and type(size) is float


async def test_query_table_changes_when_the_table_does_and_not_otherwise(
        admin: Admin) -> None:
    client, _, _ = admin
    watch = client.subscribe("_system/cli/queryTable", {"tableName": "notes"})
    first = await anext(watch)
    assert isinstance(first, float)
    following = asyncio.ensure_future(anext(watch))
    await client.mutation("notes:later", {"delay": 60.0})  # writes another table only
    await asyncio.sleep(0.5)
    assert not following.done()
    await add(client, "a", 1)
    assert await asyncio.wait_for(following, 5) != first
    await watch.aclose()
