"""Live queries and their journals: a re-run repeats its page, a new subscriber gets its
own page, a client that brings a journal back shares the query that made it."""

from __future__ import annotations

from typing import Any

import pytest

from reactive_store.engine.pagination import decode_journal
from reactive_store.live.subscriptions import LiveQuery
from tests.live.test_precision import FUNCTIONS, SCHEMA, Live

EXTRA = """
from reactive_store import query, v

@query(args={"numItems": v.float64(), "failOn": v.float64()})
async def fragile(ctx, numItems, failOn):
    r = await ctx.db.query("ranked").with_index("by_rank").paginate(
        {"numItems": int(numItems), "cursor": None})
    ranks = [d["rank"] for d in r["page"]]
    if failOn in ranks:
        raise ValueError("the page holds the failing rank")
    return ranks
"""


@pytest.fixture
async def live(make_app: Any, deploy: Any) -> Live:
    engine = await deploy(make_app({"schema/__init__.py": SCHEMA,
                                    "functions/ranked.py": FUNCTIONS,
                                    "functions/extra.py": EXTRA}))
    state = Live(engine)
    for rank in (1.0, 2.0, 3.0, 4.0):
        state.ids[rank] = await state.write("ranked:add", {"rank": rank, "group": "a"})
    return state


async def subscribe(live: Live, args: dict[str, Any], journal: str | None = None,
                    path: str = "ranked:page") -> LiveQuery:
    query = live.manager.subscribe(path, args, None, lambda: None, journal=journal)
    await live.manager.settled()
    return query


async def test_new_subscribers_get_their_own_page(live: Live) -> None:
    first = await subscribe(live, {"numItems": 2.0})
    assert first.value == [1.0, 2.0] and decode_journal(first.journal) is not None
    await live.write("ranked:add", {"rank": 1.5, "group": "a"})
    assert first.value == [1.0, 1.5, 2.0]
    fresh = await subscribe(live, {"numItems": 2.0})
    assert fresh is not first and fresh.value == [1.0, 1.5]
    back = await subscribe(live, {"numItems": 2.0}, first.journal)
    assert back is first and first.runs == 2  # joined, not run again


async def test_a_journal_brought_back_repeats_the_page(live: Live) -> None:
    first = await subscribe(live, {"numItems": 2.0})
    journal = first.journal
    live.manager.unsubscribe(first, next(iter(first.watchers)))
    await live.write("ranked:add", {"rank": 0.5, "group": "a"})
    again = await subscribe(live, {"numItems": 2.0}, journal)
    assert again is not first and again.value == [0.5, 1.0, 2.0]
    assert again.journal == journal


async def test_a_failed_run_keeps_the_journal(live: Live) -> None:
    query = await subscribe(live, {"numItems": 2.0, "failOn": 1.25}, path="extra:fragile")
    journal = query.journal
    assert query.ok and query.value == [1.0, 2.0]
    await live.write("ranked:add", {"rank": 1.5, "group": "a"})
    assert query.value == [1.0, 1.5, 2.0] and query.journal == journal
    failing = await live.write("ranked:add", {"rank": 1.25, "group": "a"})
    assert not query.ok and query.journal == journal
    await live.write("ranked:remove", {"id": failing})
    assert query.ok and query.value == [1.0, 1.5, 2.0] and query.journal == journal
