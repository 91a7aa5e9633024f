"""Schema push on real Postgres: create, backfill, rebuild, retire, and refuse; never drop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from reactive_store.app.loader import AppLoadError
from reactive_store.errors import SchemaError
from tests.support import new_namespace, write_app

V1 = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "items": define_table({"name": v.string(), "size": v.float64()}),
    "old": define_table({"x": v.string()}),
})
"""
V2 = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "items": define_table({"name": v.string(), "size": v.float64()})
        .index("by_size", ["size"]).index("by_name", ["name"]),
})
"""
V3 = V2.replace('.index("by_size", ["size"])', '.index("by_size", ["size", "name"])')
STRICT = V2.replace('"size": v.float64()', '"size": v.literal(1.0)')
FUNCTIONS = """
from reactive_store import mutation, query, v

@mutation(args={"name": v.string(), "size": v.float64()})
async def add(ctx, name, size):
    return await ctx.db.insert("items", {"name": name, "size": size})

@query(args={})
async def by_size(ctx):
    return [d["name"] for d in await ctx.db.query("items").with_index("by_size").collect()]
"""


async def test_push_creates_backfills_rebuilds_and_retires(
    tmp_path: Path, deploy: Any, database_url: str
) -> None:
    ns = new_namespace()
    app = write_app(tmp_path / "app", {"schema/__init__.py": V1})
    engine = await deploy(app, namespace=ns)
    numbers = engine.store.table_numbers
    # User tables above the 10,000 numbers reserved for system tables, in schema order;
    # system tables at Convex's default numbers (storage/ddl.py new_table_number).
    assert numbers["items"] == 10001 and numbers["old"] == 10002
    assert numbers["_scheduled_functions"] == 539 and numbers["_storage"] == 540
    write_app(app, {"functions/items.py": FUNCTIONS.replace(
        "async def by_size", "async def _unused")})
    engine2 = await deploy(app, namespace=ns)
    for name, size in [("b", 2.0), ("a", 3.0), ("c", 1.0)]:
        await engine2.run_mutation("items:add", {"name": name, "size": size})

    write_app(app, {"schema/__init__.py": V2, "functions/items.py": FUNCTIONS})
    engine3 = await deploy(app, namespace=ns)
    assert (await engine3.run_query("items:by_size", {})).value == ["c", "b", "a"]

    write_app(app, {"schema/__init__.py": V3})
    engine4 = await deploy(app, namespace=ns)
    assert (await engine4.run_query("items:by_size", {})).value == ["c", "b", "a"]

    conn = await asyncpg.connect(database_url)
    try:
        tables = await conn.fetch(f'SELECT name, active FROM "{ns}"."_tables" '
                                  "WHERE name NOT LIKE '\\_%' ORDER BY name")
        assert [(r["name"], r["active"]) for r in tables] == [("items", True), ("old", False)]
        count = await conn.fetchval(f'SELECT count(*) FROM "{ns}"."items"')
        assert count == 3
        fields = await conn.fetchval(
            f"SELECT fields FROM \"{ns}\".\"_indexes\" WHERE index_name = 'by_size'")
        assert json.loads(fields) == ["size", "name"]
    finally:
        await conn.close()


async def test_push_refuses_documents_that_no_longer_validate(
    tmp_path: Path, deploy: Any
) -> None:
    ns = new_namespace()
    app = write_app(tmp_path / "app", {"schema/__init__.py": V2, "functions/items.py": FUNCTIONS})
    engine = await deploy(app, namespace=ns)
    ids = [(await engine.run_mutation("items:add", {"name": n, "size": s})).value
           for n, s in [("ok", 1.0), ("big", 2.0), ("bigger", 3.0)]]
    write_app(app, {"schema/__init__.py": STRICT})
    with pytest.raises(SchemaError) as info:
        await deploy(app, namespace=ns)
    message = info.value.message
    assert "2 document(s) in table 'items' no longer validate" in message
    assert ids[1] in message and ids[2] in message and ids[0] not in message
    write_app(app, {"schema/__init__.py": V2})
    again = await deploy(app, namespace=ns)
    assert sorted((await again.run_query("items:by_size", {})).value) == ["big", "bigger", "ok"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"schema/__init__.py": "schema = 1\n"}, "expected a variable `schema"),
        ({"schema/__init__.py": "def broken(:\n"}, "__init__.py:1: syntax error"),
        ({"schema/__init__.py": V1, "functions/m.py": "import does_not_exist\n"},
         "m.py:1: ModuleNotFoundError"),
    ],
)
async def test_broken_apps_name_the_file(
    tmp_path: Path, deploy: Any, files: dict[str, str], message: str
) -> None:
    app = write_app(tmp_path / "app", files)
    with pytest.raises(AppLoadError, match=message):
        await deploy(app)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('define_schema({"_sys": define_table({})})', "invalid table name '_sys'"),
        ('define_schema({"t": define_table({"_x": v.string()})})', "reserved"),
        ('define_schema({"t": define_table({}).index("by_x", [])})', "non-empty list"),
        ('define_schema({"t": define_table({}).index("by_id", ["a"])})', "invalid index name"),
        ('define_schema({"t": {"a": v.string()}})', "expected define_table"),
    ],
)
async def test_bad_schema_declarations(tmp_path: Path, deploy: Any, source: str,
                                       message: str) -> None:
    app = write_app(tmp_path / "app", {"schema/__init__.py":
        f"from reactive_store import define_schema, define_table, v\nschema = {source}\n"})
    with pytest.raises(AppLoadError, match=message):
        await deploy(app)
