"""storage/search.py on real Postgres: the corpus statistics kept as delta rows (one per
document write) always sum to a count of the indexed documents, and compacting them
changes neither the sums nor any ranking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reactive_store.storage.search import rank
from reactive_store.storage.tokenizer import QueryTerms
from tests.support import write_app

SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "notes": define_table({"body": v.any(), "tag": v.string()})
        .search_index("s", search_field="body", filter_fields=["tag"]),
})
"""
FUNCTIONS = """
from reactive_store import mutation, v

@mutation(args={"ops": v.any()})
async def run(ctx, ops):
    ids = []
    for op in ops:
        if op[0] == "add":
            ids.append(await ctx.db.insert("notes", {"body": op[1], "tag": op[2]}))
        elif op[0] == "patch":
            await ctx.db.patch(ids[op[1]], op[2])
        else:
            await ctx.db.delete(ids[op[1]])
    return ids
"""


async def stats(engine: Any) -> tuple[list[Any], list[Any]]:
    side = engine.store.names.side_tables[("notes", "s")]
    async with engine.store.read() as tx:
        rows = await tx.fetch(f"SELECT n, total, f0 FROM {side.stats.sql} ORDER BY f0, n")
        truth = await tx.fetch(f"SELECT count(*), sum(len), f0 FROM {side.sql} "
                               "WHERE term = '' GROUP BY f0 ORDER BY f0")
    return rows, truth


async def ranked(engine: Any, text: str, tag: bytes | None) -> list[tuple[str, float]]:
    side = engine.store.names.side_tables[("notes", "s")]
    async with engine.store.read() as tx:
        hits = await rank(tx, side, QueryTerms.of(text), {} if tag is None else {0: tag}, 50)
    return [(h.doc_id, h.score) for h in hits]


def sums(rows: list[Any]) -> dict[bytes, tuple[int, int]]:
    out: dict[bytes, tuple[int, int]] = {}
    for n, total, f0 in rows:
        old = out.get(bytes(f0), (0, 0))
        out[bytes(f0)] = (old[0] + n, old[1] + total)
    return {k: v for k, v in out.items() if v != (0, 0)}


async def test_statistics_deltas_sum_to_the_truth_and_compact(tmp_path: Path,
                                                               deploy: Any) -> None:
    engine = await deploy(write_app(tmp_path / "app", {"schema/__init__.py": SCHEMA,
                                                       "functions/n.py": FUNCTIONS}))
    ops: list[Any] = [["add", f"alpha beta {'gamma ' * (i % 4)}", f"t{i % 3}"]
                      for i in range(30)]
    ops += [["patch", 1, {"body": "alpha"}], ["patch", 2, {"tag": "t9"}],
            ["patch", 3, {"body": 42}], ["delete", 4], ["patch", 5, {"tag": "t0"}]]
    await engine.run_mutation("n:run", {"ops": ops})
    rows, truth = await stats(engine)
    assert len(rows) > len(truth)  # one delta row per write, not yet compacted
    assert sums(rows) == {bytes(f0): (n, total) for n, total, f0 in truth}
    from reactive_store.keys import encode_tuple

    before = [await ranked(engine, "gamma alpha", None),
              await ranked(engine, "gamma", encode_tuple(["t1"]))]
    await engine.store.compact_search_stats()
    rows_after, truth_after = await stats(engine)
    assert truth_after == truth and len(rows_after) == len(truth)  # one row per tag
    assert sums(rows_after) == sums(rows)
    assert [await ranked(engine, "gamma alpha", None),
            await ranked(engine, "gamma", encode_tuple(["t1"]))] == before
    await engine.store.compact_search_stats()  # idempotent
    assert (await stats(engine))[0] == rows_after
