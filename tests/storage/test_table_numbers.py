"""Table numbers (in every id): new user tables above 10,000, system tables at Convex's
default numbers, and existing tables, legacy numbering included, keep theirs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reactive_store.engine.db import document_from_row
from reactive_store.engine.system_tables import SYSTEM_TABLE_NUMBERS, with_system_tables
from reactive_store.schema import Schema, TableDefinition
from reactive_store.storage.ddl import new_table_number
from reactive_store.storage.store import Store
from reactive_store.validators import v
from tests.support import new_namespace, renumber_tables


def table() -> TableDefinition:
    return TableDefinition(v.object({"n": v.float64()}))


@pytest.mark.parametrize(("name", "taken", "expected"), [
    ("users", set(), 10001),
    ("users", {10001, 10002, 540}, 10003),
    ("users", {1, 2, 3}, 10001),          # a legacy deployment: new tables join Convex's range
    ("users", {1, 12000}, 12001),
    ("_storage", set(), 540),             # preferred and free
    ("_storage", {540}, 513),             # taken: the least free system number above 512
    ("_storage", {540, 513, 514}, 515),
    ("_new_system", set(), 513),
])
def test_new_table_number(name: str, taken: set[int], expected: int) -> None:
    assert new_table_number(name, taken, {"_storage": 540}) == expected


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = await Store.open(database_url, new_namespace(), min_size=1, max_size=2)
    yield store
    await store.drop()
    await store.close()


async def push(store: Store, tables: dict[str, TableDefinition]) -> dict[str, int]:
    await store.push_schema(with_system_tables(Schema(tables)), document_from_row,
                            preferred_numbers=SYSTEM_TABLE_NUMBERS)
    return dict(store.table_numbers)


async def test_a_new_deployment_numbers_like_convex(store: Store) -> None:
    numbers = await push(store, {"b": table(), "a": table()})
    assert numbers == {"b": 10001, "a": 10002, "_scheduled_functions": 539,
                       "_cron_jobs": 531, "_storage": 540, "_environment_variables": 525}
    # A table added later: above every number; a removed one keeps its number for good.
    numbers = await push(store, {"a": table(), "c": table()})
    assert numbers["a"] == 10002 and numbers["c"] == 10003
    numbers = await push(store, {"a": table(), "b": table(), "c": table(), "d": table()})
    assert (numbers["b"], numbers["d"]) == (10001, 10004)


async def test_a_legacy_deployment_keeps_its_numbers(store: Store) -> None:
    await push(store, {"a": table()})
    legacy = {"a": 1, "_scheduled_functions": 2, "_cron_jobs": 3, "_storage": 4,
              "_environment_variables": 5}
    await renumber_tables(store.url, store.names.system("tables"), legacy)
    numbers = await push(store, {"a": table(), "b": table()})
    assert numbers == {**legacy, "b": 10001}
