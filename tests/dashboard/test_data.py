"""The Data page's functions: counts, pages by index range, edits that are real mutations."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive_store.client import ClientError

pytestmark = pytest.mark.e2e


async def add(client: Any, body: str, rank: int) -> str:
    doc_id: str = await client.mutation("notes:add", {"body": body, "rank": rank})
    return doc_id


async def test_tables_list_counts_schema_and_update_live(dashboard: Any) -> None:
    client, _, _ = dashboard
    tables = client.subscribe("_system/data:tables", {})
    first = await anext(tables)
    assert [t["name"] for t in first] == ["notes", "tags"]
    notes = first[0]
    assert notes["count"] == 0 and notes["fields"] == ["body", "rank", "score"]
    assert [i["name"] for i in notes["indexes"]] == ["by_creation_time", "by_rank",
                                                     "by_body_rank"]
    assert notes["indexes"][2]["fields"] == ["body", "rank", "_creationTime"]
    assert notes["type"] == "{body: string, rank: bigint, score?: number}"
    await add(client, "a", 1)
    assert (await anext(tables))[0]["count"] == 1
    await tables.aclose()


async def test_documents_newest_first_with_pages(dashboard: Any) -> None:
    client, _, _ = dashboard
    for rank in range(5):
        await add(client, f"n{rank}", rank)
    args = {"table": "notes", "numItems": 2}
    page = await client.query("_system/data:documents", args)
    assert [d["fields"]["body"] for d in page["page"]] == ["n4", "n3"]
    assert page["page"][0]["fields"]["rank"] == "4" and '"rank": 4' in page["page"][0]["json"]
    assert not page["isDone"]
    second = await client.query("_system/data:documents",
                                {**args, "cursor": page["continueCursor"]})
    assert [d["fields"]["body"] for d in second["page"]] == ["n2", "n1"]
    oldest = await client.query("_system/data:documents", {**args, "order": "asc"})
    assert [d["fields"]["body"] for d in oldest["page"]] == ["n0", "n1"]


async def test_a_live_page_shows_the_newest_n_whatever_arrives(dashboard: Any) -> None:
    """The Data page shows one page at a time: its first page keeps no journal, so it
    stays the newest `numItems` (an app's paginated query would keep its bounds)."""
    client, _, _ = dashboard
    for rank in range(3):
        await add(client, f"n{rank}", rank)
    pages = client.subscribe("_system/data:documents", {"table": "notes", "numItems": 2})
    assert [d["fields"]["body"] for d in (await anext(pages))["page"]] == ["n2", "n1"]
    await add(client, "n3", 3)
    assert [d["fields"]["body"] for d in (await anext(pages))["page"]] == ["n3", "n2"]
    await pages.aclose()


async def test_documents_by_index_range(dashboard: Any) -> None:
    client, _, _ = dashboard
    for body, rank in (("x", 1), ("x", 5), ("y", 3), ("x", 9)):
        await add(client, body, rank)
    by_rank = {"table": "notes", "index": "by_rank", "numItems": 10, "order": "asc"}
    page = await client.query("_system/data:documents", {
        **by_rank, "lower": {"op": ">=", "value": "3"}, "upper": {"op": "<", "value": "9"}})
    assert [d["fields"]["rank"] for d in page["page"]] == ["3", "5"]
    page = await client.query("_system/data:documents", {
        **by_rank, "index": "by_body_rank", "eq": ['"x"'], "lower": {"op": ">", "value": "1"}})
    assert [d["fields"]["rank"] for d in page["page"]] == ["5", "9"]


@pytest.mark.parametrize(("args", "message"), [
    ({"table": "nope"}, "there is no table 'nope' in the schema"),
    ({"index": "by_nothing"}, "table 'notes' has no index 'by_nothing'"),
    ({"index": "by_rank", "eq": ["one"]}, "the value for 'rank' is not valid JSON"),
    ({"index": "by_rank", "eq": ["1", "2", "3"]}, "has only the fields"),
    ({"index": "by_rank", "lower": {"op": "<", "value": "1"}}, "use > or >="),
    ({"index": "by_rank", "upper": {"op": "=", "value": "1"}}, "use < or <="),
    ({"index": "by_rank", "lower": {"op": ">", "value": "[1"}}, "the bound on 'rank'"),
])
async def test_bad_filters_are_explained(dashboard: Any, args: dict[str, Any],
                                         message: str) -> None:
    client, _, _ = dashboard
    with pytest.raises(ClientError) as failed:
        await client.query("_system/data:documents", {"table": "notes", "numItems": 5, **args})
    assert message in str(failed.value)


async def test_edits_are_validated_mutations_that_subscribers_see(dashboard: Any) -> None:
    client, _, open_client = dashboard
    viewer = await open_client()  # an ordinary client of the app, not the admin
    bodies = viewer.subscribe("notes:listed", {})
    assert await anext(bodies) == []
    doc_id = await client.mutation("_system/data:insert", {
        "table": "notes", "json": '{"body": "from the dashboard", "rank": 7}'})
    assert await anext(bodies) == ["from the dashboard"]
    await client.mutation("_system/data:replace", {
        "id": doc_id, "json": f'{{"_id": "{doc_id}", "body": "edited", "rank": 8, '
                              '"score": 2.5}'})
    assert await anext(bodies) == ["edited"]
    with pytest.raises(ClientError, match=r"notes\.rank.*int64"):
        await client.mutation("_system/data:replace", {
            "id": doc_id, "json": '{"body": "bad", "rank": "eight"}'})
    with pytest.raises(ClientError, match="not valid JSON"):
        await client.mutation("_system/data:insert", {"table": "notes", "json": "{body}"})
    with pytest.raises(ClientError, match="must be a JSON object"):
        await client.mutation("_system/data:insert", {"table": "notes", "json": "[]"})
    page = await client.query("_system/data:documents", {"table": "notes", "numItems": 5})
    assert page["page"][0]["fields"] == {"body": "edited",
                                         "rank": "8", "score": "2.5"}
    assert await client.mutation("_system/data:delete", {"ids": [doc_id]}) == 1.0
    assert await anext(bodies) == []
    with pytest.raises(ClientError, match="does not exist"):
        await client.mutation("_system/data:delete", {"ids": [doc_id]})
    await bodies.aclose()


async def test_only_the_admin_reaches_system_functions(dashboard: Any) -> None:
    _, _, open_client = dashboard
    anonymous = await open_client()
    with pytest.raises(ClientError, match="You do not have permission to perform this "
                                          "operation: '_system/data:tables' needs the admin"):
        await anonymous.query("_system/data:tables", {})
    wrong = await open_client(admin_key="not-the-key")
    with pytest.raises(TimeoutError):  # refused: the server closes, nothing is answered
        await asyncio.wait_for(wrong.query("_system/data:tables", {}), 2)
    assert wrong.auth_error == "the admin key is not valid"
