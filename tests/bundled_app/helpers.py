"""Helpers shared by the bundled app's tests: table snapshots, missing ids, index-only reads."""

from __future__ import annotations

from typing import Any

from reactive_store.engine.engine import Engine, Outcome
from reactive_store.ids import new_id

TABLES = ("chat_sessions", "chat_messages", "work_orders", "work_order_args",
          "work_order_targets", "work_order_links", "orchestrations", "turns", "worker_prs")


async def snapshot(app: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every app table, to show that a refused write wrote nothing."""
    async def read(db: Any) -> dict[str, list[dict[str, Any]]]:
        return {table: await db.query(table).collect() for table in TABLES}

    result: dict[str, list[dict[str, Any]]] = await app.read(read)
    return result


def missing_id(app: Engine, table: str) -> str:
    """A well-formed id of `table` that names no document."""
    return new_id(app.store.table_numbers[table])


def assert_indexed(outcome: Outcome) -> None:
    """The function read through its indexes, never by scanning a table in creation order."""
    assert not [ref for ref, _ in outcome.reads if ref[1] == "by_creation_time"], outcome.reads
