"""`paginate` against real Postgres: end cursors (given or journaled), split cursors, page
status under row and byte limits, cursors refused by another query, and every misuse."""

from __future__ import annotations

from typing import Any

import pytest

from reactive_store.engine.pagination import InvalidCursor, decode_journal
from reactive_store.errors import ConvexError, QueryError

SCHEMA = """
from reactive_store import define_schema, define_table, v

schema = define_schema({
    "items": define_table({"rank": v.float64(), "team": v.string(), "body": v.string()})
        .index("by_rank", ["rank"]).index("by_team_rank", ["team", "rank"])
        .search_index("search_body", search_field="body"),
    "others": define_table({"rank": v.float64()}).index("by_rank", ["rank"]),
})
"""

FUNCTIONS = """
from reactive_store import mutation, query, v

@mutation(args={"ranks": v.array(v.float64()), "team": v.string()})
async def seed(ctx, ranks, team):
    return [await ctx.db.insert("items", {"rank": r, "team": team, "body": "word " * int(r)})
            for r in ranks]

@mutation(args={"id": v.id("items")})
async def remove(ctx, id):
    await ctx.db.delete(id)

def build(spec):
    def range_(q):
        if spec.get("team"):
            q = q.eq("team", spec["team"])
        if spec.get("gt") is not None:
            q = q.gt("rank", spec["gt"])
        return q
    return range_

def source(ctx, spec):
    if spec.get("search"):
        return ctx.db.query("items").with_search_index(
            "search_body", lambda q: q.search("body", spec["search"]))
    q = ctx.db.query(spec.get("table", "items")).with_index(
        spec.get("index", "by_rank"), build(spec))
    if spec.get("order"):
        q = q.order(spec["order"])
    if spec.get("odd"):
        q = q.filter(lambda d: d["rank"] % 2 == 1)
    if spec.get("none"):
        q = q.filter(lambda d: False)
    return q

@query(args={"spec": v.any(), "opts": v.any()})
async def page(ctx, spec, opts):
    r = await source(ctx, spec).paginate(opts)
    return {**r, "page": [d["rank"] for d in r["page"]]}

@query(args={"spec": v.any(), "opts": v.any()})
async def sliding(ctx, spec, opts):
    r = await source(ctx, spec).paginate(opts, stable=False)
    return {**r, "page": [d["rank"] for d in r["page"]]}

@query(args={"spec": v.any()})
async def twice(ctx, spec):
    await source(ctx, spec).paginate({"numItems": 1, "cursor": None})
    await source(ctx, spec).paginate({"numItems": 1, "cursor": None})

@query(args={})
async def plain(ctx):
    return len(await ctx.db.query("items").collect())
"""

RANKS = [float(r) for r in range(1, 11)]  # 1.0 .. 10.0


@pytest.fixture
async def engine(make_app: Any, deploy: Any) -> Any:
    engine = await deploy(make_app({"schema/__init__.py": SCHEMA,
                                    "functions/items.py": FUNCTIONS}))
    ids = (await engine.run_mutation("items:seed", {"ranks": RANKS, "team": "red"})).value
    engine.ids = dict(zip(RANKS, ids, strict=True))
    return engine


async def page(engine: Any, opts: dict[str, Any], journal: str | None = None,
               **spec: Any) -> tuple[dict[str, Any], str | None]:
    outcome = await engine.run_query("items:page", {"spec": spec, "opts": opts},
                                     journal=journal)
    return outcome.value, outcome.journal


def opts(n: int, cursor: str | None = None, **more: Any) -> dict[str, Any]:
    return {"numItems": float(n), "cursor": cursor, **more}


async def test_first_run_reads_num_items_and_journals_its_end(engine: Any) -> None:
    first, journal = await page(engine, opts(3))
    assert first["page"] == [1.0, 2.0, 3.0] and not first["isDone"]
    assert decode_journal(journal) == first["continueCursor"]
    assert first["pageStatus"] is None
    rest, _ = await page(engine, opts(20, first["continueCursor"]))
    assert rest["page"] == RANKS[3:] and rest["isDone"]


async def test_a_function_that_does_not_paginate_has_no_journal(engine: Any) -> None:
    assert (await engine.run_query("items:plain", {})).journal is None


async def test_rerun_with_journal_keeps_the_page_whatever_its_size(engine: Any) -> None:
    first, journal = await page(engine, opts(3))
    await engine.run_mutation("items:seed", {"ranks": [0.5, 2.5], "team": "red"})
    again, journal_again = await page(engine, opts(3), journal)
    assert again["page"] == [0.5, 1.0, 2.0, 2.5, 3.0]
    assert again["continueCursor"] == first["continueCursor"] and journal_again == journal
    for rank in (1.0, 2.0, 3.0):
        await engine.run_mutation("items:remove", {"id": engine.ids[rank]})
    shrunk, _ = await page(engine, opts(3), journal)
    assert shrunk["page"] == [0.5, 2.5] and shrunk["continueCursor"] == first["continueCursor"]
    rest, _ = await page(engine, opts(3, first["continueCursor"]))
    assert rest["page"] == [4.0, 5.0, 6.0]  # next page starts right after, no gap


@pytest.mark.parametrize("spec", [{}, {"search": "word"}], ids=["index", "search"])
async def test_an_unstable_page_ignores_and_leaves_no_journal(engine: Any,
                                                              spec: dict[str, Any]) -> None:
    _, journal = await page(engine, opts(3), **spec)
    if not spec:  # (a write would move BM25 scores, and with them a search's positions)
        await engine.run_mutation("items:seed", {"ranks": [0.5], "team": "red"})
    outcome = await engine.run_query("items:sliding", {"spec": spec, "opts": opts(2)},
                                     journal=journal)
    assert len(outcome.value["page"]) == 2 and outcome.journal is None
    bounded = await engine.run_query("items:sliding", {"spec": spec, "opts": opts(
        1, endCursor=decode_journal(journal))})
    assert len(bounded.value["page"]) == (3 if spec else 4)  # an endCursor still holds


async def test_end_cursor_option_wins_over_the_journal(engine: Any) -> None:
    short, journal = await page(engine, opts(2))
    longer, _ = await page(engine, opts(5))
    got, out = await page(engine, opts(1, endCursor=longer["continueCursor"]), journal)
    assert got["page"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert decode_journal(out) == longer["continueCursor"]
    null_end, _ = await page(engine, opts(1, endCursor=None), journal)
    assert null_end["page"] == [1.0, 2.0] == short["page"]


async def test_last_page_ends_at_the_end_and_grows(engine: Any) -> None:
    first, _ = await page(engine, opts(8))
    last, journal = await page(engine, opts(8, first["continueCursor"]))
    assert last["page"] == [9.0, 10.0] and last["isDone"]
    await engine.run_mutation("items:seed", {"ranks": [11.0, 12.0, 13.0], "team": "red"})
    grown, _ = await page(engine, opts(8, first["continueCursor"]), journal)
    assert grown["page"] == [9.0, 10.0, 11.0, 12.0, 13.0] and grown["isDone"]
    after_end, _ = await page(engine, opts(3, last["continueCursor"]))
    assert after_end["page"] == [] and after_end["isDone"]
    assert after_end["continueCursor"] == last["continueCursor"]


async def test_desc_pages_with_end_cursor(engine: Any) -> None:
    first, journal = await page(engine, opts(3), order="desc")
    assert first["page"] == [10.0, 9.0, 8.0]
    await engine.run_mutation("items:seed", {"ranks": [8.5, 7.5], "team": "red"})
    again, _ = await page(engine, opts(3), journal, order="desc")
    assert again["page"] == [10.0, 9.0, 8.5, 8.0]
    rest, _ = await page(engine, opts(3, first["continueCursor"]), order="desc")
    assert rest["page"] == [7.5, 7.0, 6.0]


async def test_split_cursor_cuts_a_page_in_two_halves(engine: Any) -> None:
    whole, _ = await page(engine, opts(5))
    split = whole["splitCursor"]
    assert split is not None
    left, _ = await page(engine, opts(5, endCursor=split))
    right, _ = await page(engine, opts(5, split, endCursor=whole["continueCursor"]))
    assert left["page"] + right["page"] == whole["page"] and left["page"] and right["page"]
    small, _ = await page(engine, opts(2))
    assert small["splitCursor"] is None


async def test_filters_move_the_cursor_past_rows_they_skip(engine: Any) -> None:
    first, _ = await page(engine, opts(2), odd=True)
    assert first["page"] == [1.0, 3.0]
    rest, _ = await page(engine, opts(10, first["continueCursor"]), odd=True)
    assert rest["page"] == [5.0, 7.0, 9.0] and rest["isDone"]


async def test_maximum_rows_read_stops_early_with_split_required(engine: Any) -> None:
    got, journal = await page(engine, opts(5, maximumRowsRead=3.0), none=True)
    assert got["page"] == [] and not got["isDone"] and got["pageStatus"] == "SplitRequired"
    seen, cursor = 3, got["continueCursor"]
    assert decode_journal(journal) == cursor
    while True:
        got, _ = await page(engine, opts(5, cursor, maximumRowsRead=3.0), none=True)
        cursor = got["continueCursor"]
        if got["isDone"]:
            break
        assert got["pageStatus"] == "SplitRequired"
        seen += 3
    assert seen == 9


async def test_maximum_bytes_read_reads_at_least_one_row(engine: Any) -> None:
    got, _ = await page(engine, opts(5, maximumBytesRead=1.0))
    assert got["page"] == [1.0] and got["pageStatus"] == "SplitRequired"


async def test_soft_limits_recommend_a_split(engine: Any) -> None:
    got, _ = await page(engine, opts(7, maximumRowsRead=8.0))
    assert got["page"] == RANKS[:7] and got["pageStatus"] == "SplitRecommended"
    fine, _ = await page(engine, opts(6, maximumRowsRead=8.0))
    assert fine["pageStatus"] is None
    # With an end cursor the whole range is read: the limits only recommend a split.
    bounded, _ = await page(engine, opts(1, endCursor=got["continueCursor"],
                                         maximumRowsRead=2.0))
    assert bounded["page"] == RANKS[:7] and bounded["pageStatus"] == "SplitRecommended"


async def test_search_pages_keep_their_end_cursor(engine: Any) -> None:
    first, journal = await page(engine, opts(3), search="word")
    assert len(first["page"]) == 3 and decode_journal(journal) == first["continueCursor"]
    again, _ = await page(engine, opts(3), journal, search="word")
    assert again["page"] == first["page"]
    rest, _ = await page(engine, opts(20, first["continueCursor"]), search="word")
    assert rest["isDone"] and not set(rest["page"]) & set(first["page"])
    assert len(rest["page"]) + 3 == len(RANKS)
    assert first["splitCursor"] is not None
    left, _ = await page(engine, opts(3, endCursor=first["splitCursor"]), search="word")
    assert left["page"] == first["page"][:2]


FOREIGN = [
    ({"index": "by_rank"}, {"index": "by_team_rank", "team": "red"}),
    ({"index": "by_rank"}, {"index": "by_rank", "order": "desc"}),
    ({"index": "by_team_rank", "team": "red"}, {"index": "by_team_rank", "team": "blue"}),
    ({"index": "by_rank"}, {"index": "by_rank", "gt": 2.0}),
    ({"index": "by_rank"}, {"table": "others"}),
    ({"index": "by_rank"}, {"search": "word"}),
    ({"search": "word"}, {"search": "other"}),
]


@pytest.mark.parametrize(("made_by", "used_by"), FOREIGN,
                         ids=["index", "order", "range", "bound", "table", "search",
                              "terms"])
@pytest.mark.parametrize("how", ["cursor", "endCursor", "journal"])
async def test_a_cursor_of_another_query_is_invalid(engine: Any, made_by: dict[str, Any],
                                                    used_by: dict[str, Any], how: str) -> None:
    made, journal = await page(engine, opts(2), **made_by)
    cursor = made["continueCursor"]
    options = opts(2, cursor) if how == "cursor" else (
        opts(2, endCursor=cursor) if how == "endCursor" else opts(2))
    with pytest.raises(InvalidCursor) as raised:
        await page(engine, options, journal if how == "journal" else None, **used_by)
    error = raised.value
    assert isinstance(error, ConvexError)
    assert error.data == {"isConvexSystemError": True, "paginationError": "InvalidCursor"}
    assert str(error).startswith("InvalidCursor: ") and "different query" in str(error)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cursor": None}, "paginate\\(\\) takes"),
        (opts(0), "numItems must be at least 1"),
        (opts(-1), "numItems: expected a non-negative integer, got -1"),
        (opts(40_000), "numItems 40000 is more than one query may read"),
        (opts(2, 5), "cursor must be a string or None, got 5"),
        (opts(2, "%%%"), "malformed cursor '%%%'"),
        (opts(2, "bm9wZQ=="), "malformed cursor 'bm9wZQ=='"),
        (opts(2, endCursor=7), "end cursor must be a string or None, got 7"),
        (opts(2, maximumRowsRead=0.0), "maximumRowsRead must be greater than 0"),
        (opts(2, maximumBytesRead=0.0), "maximumBytesRead must be greater than 0"),
        (opts(2, maximumRowsRead=1.5), "maximumRowsRead: expected a non-negative integer"),
    ],
)
async def test_misuse_names_the_problem(engine: Any, options: dict[str, Any],
                                        message: str) -> None:
    with pytest.raises(QueryError, match=message):
        await page(engine, options)


async def test_search_misuse_names_the_problem(engine: Any) -> None:
    with pytest.raises(QueryError, match="numItems must be at least 1"):
        await page(engine, opts(0), search="word")
    with pytest.raises(QueryError, match="malformed cursor"):
        await page(engine, opts(1, "bm9wZQ=="), search="word")


async def test_one_paginated_query_per_function(engine: Any) -> None:
    for spec in ({"index": "by_rank"}, {"search": "word"}):
        with pytest.raises(QueryError, match="ran multiple paginated queries"):
            await engine.run_query("items:twice", {"spec": spec})


async def test_a_malformed_journal_fails_the_query(engine: Any) -> None:
    with pytest.raises(QueryError, match="malformed query journal 'garbage'"):
        await page(engine, opts(2), "garbage")
