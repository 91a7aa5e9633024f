"""Stable pages with the official npm client's paginated queries, on a real server.

tests/js/sync_client.mjs drives `ConvexClient.onPaginatedUpdate_experimental` (the
`PaginatedQueryClient` that `usePaginatedQuery` shares: one subscription per page, each
next page starting at the previous page's `continueCursor`, pages split on `splitCursor`).
Three pages are loaded, then documents are inserted and deleted around every page
boundary, inside pages and at both ends, one change at a time from another client (HTTP),
and the server is killed and restarted once (the client re-adds its pages with their
journals). After every change, the union of the pages must be exactly the table, in
index order, without duplicates; and no update the client ever showed may be anything
but the table before or after the change in flight.

The PyPI client has no paginated-query helper and sends no journals back; a page it
subscribes to still keeps its bounds while its socket lives (the server keeps the journal).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.clients import (
    RECONNECT_WAIT,
    NodeSync,
    http_call,
    is_event,
    node_client,
    pypi_client,
)
from tests.e2e.servers import ServeApp
from tests.support import write_app

pytestmark = pytest.mark.e2e

PAGED_APP = {
    "schema/__init__.py": """
        from reactive_store import define_schema, define_table, v

        schema = define_schema({
            "items": define_table({"rank": v.float64()}).index("by_rank", ["rank"]),
        })
    """,
    "functions/items.py": """
        from reactive_store import mutation, query, v

        PAGINATION = v.object({
            "numItems": v.float64(),
            "cursor": v.union(v.string(), v.null()),
            "endCursor": v.optional(v.union(v.string(), v.null())),
            "id": v.optional(v.float64()),
            "maximumRowsRead": v.optional(v.float64()),
            "maximumBytesRead": v.optional(v.float64()),
        })

        @query(args={"paginationOpts": PAGINATION})
        async def page(ctx, paginationOpts):
            return await ctx.db.query("items").with_index("by_rank").paginate(paginationOpts)

        @query(args={"numItems": v.float64()})
        async def ranks(ctx, numItems):
            r = await ctx.db.query("items").with_index("by_rank").paginate(
                {"numItems": numItems, "cursor": None})
            return [d["rank"] for d in r["page"]]

        @mutation(args={"rank": v.float64()})
        async def add(ctx, rank):
            return await ctx.db.insert("items", {"rank": rank})

        @mutation(args={"id": v.id("items")})
        async def remove(ctx, id):
            await ctx.db.delete(id)
    """,
}
PAGE = 10  # initialNumItems, and each loadMore


@dataclass
class Table:
    """What the table holds, as (rank, id); the order among equal ranks is the server's."""

    rows: dict[str, float] = field(default_factory=dict)
    states: list[frozenset[str]] = field(default_factory=list)

    def snapshot(self) -> None:
        self.states.append(frozenset(self.rows))


@dataclass
class Pages:
    """The last paginated update the client showed."""

    results: list[dict[str, Any]]
    status: str
    sizes: list[int | None]
    journals: list[str | None]

    @classmethod
    def of(cls, event: dict[str, Any]) -> Pages:
        return cls(event["results"], event["status"], [s for s, _ in event["pages"]],
                   [j for _, j in event["pages"]])

    def ids(self) -> list[str]:
        return [doc["_id"] for doc in self.results]

    def boundaries(self) -> list[tuple[int, int]]:
        """(first, last) index into results of each non-empty page."""
        out, start = [], 0
        for size in self.sizes:
            if size:
                out.append((start, start + size - 1))
            start += size or 0
        return out


def check_order(event: dict[str, Any]) -> None:
    docs = event["results"]
    ids = [d["_id"] for d in docs]
    assert len(ids) == len(set(ids)), f"duplicated items: {event}"
    keys = [(d["rank"], d["_creationTime"], d["_id"]) for d in docs]
    assert keys == sorted(keys), f"items out of index order: {keys}"


def settled(table: Table) -> Any:
    expected = set(table.rows)
    return lambda e: (is_event("pages", id="p")(e) and e["status"] == "Exhausted"
                      and {d["_id"] for d in e["results"]} == expected
                      and len(e["results"]) == len(expected))


async def wait_settled(node: NodeSync, table: Table, after: int,
                       timeout: float = 10.0) -> Pages:
    try:
        _, event = await node.wait(settled(table), after=after, timeout=timeout)
    except pytest.fail.Exception:
        shown = [e for e in node.events if is_event("pages", id="p")(e)][-1:]
        ids = [d["_id"] for d in shown[0]["results"]] if shown else []
        pytest.fail(f"the pages never came to equal the table: missing "
                    f"{sorted(set(table.rows) - set(ids))}, extra "
                    f"{sorted(set(ids) - set(table.rows))}, duplicated "
                    f"{sorted({i for i in ids if ids.count(i) > 1})}; last pages "
                    f"{shown[0]['pages'] if shown else None}", pytrace=False)
    check_order(event)
    return Pages.of(event)


def choose(pages: Pages, table: Table, rng: random.Random, step: int) -> tuple[str, Any]:
    """The next change: ("add", rank) or ("remove", id), around a page boundary first."""
    docs = pages.results
    ranks = [d["rank"] for d in docs]
    bounds = pages.boundaries()
    first, last = bounds[step % len(bounds)] if bounds else (0, 0)
    kinds = ["remove_first_of_page", "remove_last_of_page", "add_between_pages",
             "add_tie_with_last_of_page", "add_inside_page", "add_at_start", "add_at_end",
             "remove_very_first", "remove_very_last"]
    kind = kinds[step % len(kinds)] if step < 3 * len(kinds) else rng.choice(kinds)
    if not docs:
        return "add", 1000.0
    if kind == "remove_first_of_page":
        return "remove", docs[first]["_id"]
    if kind == "remove_last_of_page":
        return "remove", docs[last]["_id"]
    if kind == "add_between_pages":
        after = ranks[last + 1] if last + 1 < len(ranks) else ranks[last] + 10
        return "add", (ranks[last] + after) / 2
    if kind == "add_tie_with_last_of_page":
        return "add", ranks[last]
    if kind == "add_inside_page":
        return "add", (ranks[first] + ranks[last]) / 2
    if kind == "add_at_start":
        return "add", ranks[0] - rng.uniform(1, 10)
    if kind == "add_at_end":
        return "add", ranks[-1] + rng.uniform(1, 10)
    return "remove", docs[0 if kind == "remove_very_first" else -1]["_id"]


async def apply(url: str, table: Table, change: tuple[str, Any]) -> None:
    kind, arg = change
    if kind == "add":
        doc_id = await http_call(url, "mutation", "items:add", {"rank": arg})
        table.rows[doc_id] = arg
    else:
        await http_call(url, "mutation", "items:remove", {"id": arg})
        del table.rows[arg]
    table.snapshot()


async def load_three_pages(node: NodeSync, table: Table) -> Pages:
    await node.send(op="paginate", id="p", path="items:page", args={}, initialNumItems=PAGE)
    await node.wait(lambda e: is_event("pages", id="p")(e) and len(e["results"]) == PAGE)
    for expected in (2 * PAGE, len(table.rows)):
        mark = len(node.events)
        await node.send(op="loadMore", id="p", numItems=PAGE)
        _, started = await node.wait(is_event("loadMore", id="p"), after=mark)
        assert started["started"], node.describe()
        await node.wait(lambda e, n=expected: is_event("pages", id="p")(e)
                        and len(e["results"]) == n and e["status"] != "LoadingMore",
                        after=mark)
    return await wait_settled(node, table, 0)


async def run_changes(node: NodeSync, url: str, table: Table, pages: Pages,
                      rng: random.Random, steps: range) -> Pages:
    for step in steps:
        mark = len(node.events)
        before = table.states[-1]
        await apply(url, table, choose(pages, table, rng, step))
        pages = await wait_settled(node, table, mark)
        for event in node.events[mark:]:
            if is_event("pages", id="p")(event):
                check_order(event)
                shown = frozenset(d["_id"] for d in event["results"])
                assert shown in (before, table.states[-1]), (
                    f"step {step}: the client showed {sorted(shown)}, neither the table "
                    f"before nor after the change; {node.describe()}")
                assert event["status"] == "Exhausted", event
    return pages


async def test_three_pages_stay_contiguous_through_changes_and_a_restart(
    serve_app: ServeApp, tmp_path: Path, js_client_dir: Path,
) -> None:
    url = await serve_app(write_app(tmp_path / "app", PAGED_APP))
    server = serve_app.server(url)
    table = Table()
    for n in range(1, 26):
        await apply(url, table, ("add", float(10 * n)))
    rng = random.Random(17)
    async with node_client(url, js_client_dir, tmp_path) as node:
        pages = await load_three_pages(node, table)
        assert pages.sizes == [10, 10, 5], pages.sizes
        assert all(j is not None and j.startswith("page1:") for j in pages.journals), pages
        pages = await run_changes(node, url, table, pages, rng, range(0, 40))

        # Kill the server; the client re-adds each page with its journal on reconnect, so
        # every page keeps its boundaries (without them the first page would shrink back
        # to 10 items and leave a gap before the second).
        sizes_before = pages.sizes
        mark = len(node.events)
        await server.kill()
        down, _ = await node.wait(is_event("connection", connected=False), after=mark)
        await server.start(port=server.port)
        await node.wait(is_event("connection", connected=True), after=down,
                        timeout=RECONNECT_WAIT)
        pages = await run_changes(node, url, table, pages, rng, range(40, 41))
        assert len(pages.sizes) == len(sizes_before), (sizes_before, pages.sizes)

        pages = await run_changes(node, url, table, pages, rng, range(41, 70))
        # Grow the last page past twice the page size: the client splits it.
        count = len(pages.sizes)
        for _ in range(2 * PAGE + 2):
            mark = len(node.events)
            await apply(url, table, ("add", max(table.rows.values()) + 1.0))
            pages = await wait_settled(node, table, mark)
        assert len(pages.sizes) > count, f"no page split: {pages.sizes}"
        assert all(size is not None and size <= 2 * PAGE for size in pages.sizes), pages.sizes
        await node.close()


async def test_pypi_subscription_to_a_page_keeps_its_end(
    serve_app: ServeApp, tmp_path: Path,
) -> None:
    url = await serve_app(write_app(tmp_path / "app", PAGED_APP))
    for rank in (10.0, 20.0, 30.0):
        await http_call(url, "mutation", "items:add", {"rank": rank})
    plan = [{"op": "subscribe", "path": "items:ranks", "args": {"numItems": 2},
             "until": [5.0, 10.0, 15.0, 20.0]}]
    async with pypi_client(url, plan, tmp_path) as pypi:
        await pypi.wait(is_event("update", value=[10.0, 20.0]))
        await http_call(url, "mutation", "items:add", {"rank": 25.0})  # after the page's end
        await http_call(url, "mutation", "items:add", {"rank": 15.0})
        await pypi.wait(is_event("update", value=[10.0, 15.0, 20.0]))
        await http_call(url, "mutation", "items:add", {"rank": 5.0})
        await pypi.finish()
    assert all(len(u) >= 2 and u[-1] == 20.0 for u in pypi.updates(0)), pypi.describe()
