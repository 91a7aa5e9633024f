"""A deployment made before Convex's id format (tables numbered from 1, legacy ids stored)
keeps working after the upgrade: its ids are read, validated and resolved as before, new
documents in its tables get Convex-format ids with the table's old number, and a table
added later is numbered like Convex numbers user tables."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from reactive_store.engine.engine import Engine
from reactive_store.errors import ValidationError
from reactive_store.snapshot.exporter import export_snapshot
from reactive_store.snapshot.importer import Mode, import_source
from reactive_store.snapshot.sources import open_source
from reactive_store.snapshot.zip_format import LEGACY_IDS
from tests.id_formats import decode_convex_id, legacy_id
from tests.snapshot.test_convex_import_rules import Snapshot, tables_table
from tests.support import new_namespace, renumber_tables

SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "items": define_table({"name": v.string()}),
    "links": define_table({"item": v.id("items"), "any": v.any(),
                           "file": v.optional(v.id("_storage"))}).index("by_item", ["item"]),
})
"""
FUNCTIONS = """
from reactive_store import mutation, query, v

@query(args={"id": v.id("items")})
async def get(ctx, id):
    return await ctx.db.get(id)

@query(args={"table": v.string(), "id": v.string()})
async def normalize(ctx, table, id):
    return ctx.db.normalize_id(table, id)

@query(args={"item": v.id("items")})
async def links_of(ctx, item):
    return await ctx.db.query("links").with_index("by_item", lambda q: q.eq("item", item)).collect()

@query(args={"id": v.id("_storage")})
async def file_url(ctx, id):
    return await ctx.storage.get_url(id)

@mutation(args={"name": v.string()})
async def add(ctx, name):
    return await ctx.db.insert("items", {"name": name})

@mutation(args={"item": v.id("items")})
async def link(ctx, item):
    return await ctx.db.insert("links", {"item": item, "any": [item]})

@mutation(args={"id": v.id("items"), "name": v.string()})
async def rename(ctx, id, name):
    await ctx.db.patch(id, {"name": name})
"""
LEGACY_NUMBERS = {"items": 1, "links": 2, "_scheduled_functions": 3, "_cron_jobs": 4,
                  "_storage": 5, "_environment_variables": 6}
ITEM, LINK, FILE = legacy_id(1), legacy_id(2), legacy_id(5)


async def legacy_deployment(make_app: Callable[..., Path], deploy: Callable[..., Any],
                            tmp_path: Path, database_url: str) -> tuple[Engine, Path, str]:
    """A deployment numbered and filled as the code before Convex's ids left it: tables
    renumbered from 1, then documents and a file with legacy ids written by an import
    (which keeps ids of the target's table numbers)."""
    app = make_app({"schema/__init__.py": SCHEMA, "functions/legacy.py": FUNCTIONS})
    ns = new_namespace()
    await deploy(app, namespace=ns)
    await renumber_tables(database_url, f'"{ns}"."_tables"', LEGACY_NUMBERS)
    engine: Engine = await deploy(app, namespace=ns)
    assert engine.store.table_numbers == LEGACY_NUMBERS
    path = tmp_path / "legacy.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("items/documents.jsonl",
                   f'{{"_id":"{ITEM}","_creationTime":1600000000000.0,"name":"old"}}\n')
        z.writestr("links/documents.jsonl",
                   f'{{"_id":"{LINK}","_creationTime":1600000000001.0,"item":"{ITEM}",'
                   f'"any":{{"ref":"{ITEM}"}},"file":"{FILE}"}}\n')
        z.writestr("_storage/documents.jsonl",
                   f'{{"_id":"{FILE}","_creationTime":1600000000002.0,"size":3}}\n')
        z.writestr(f"_storage/{FILE}", b"old")
    source = open_source(path, engine.schema)
    try:
        await import_source(engine, source, Mode.REQUIRE_EMPTY)
    finally:
        source.close()
    return engine, app, ns


@pytest.fixture
async def legacy(make_app: Callable[..., Path], deploy: Callable[..., Any], tmp_path: Path,
                 database_url: str) -> Engine:
    engine, _, _ = await legacy_deployment(make_app, deploy, tmp_path, database_url)
    return engine


async def test_legacy_ids_are_read_validated_and_resolved(legacy: Engine) -> None:
    assert len(ITEM) == 28
    doc = (await legacy.run_query("legacy:get", {"id": ITEM})).value
    assert doc["_id"] == ITEM and doc["name"] == "old"
    (link,) = (await legacy.run_query("legacy:links_of", {"item": ITEM})).value
    assert link["_id"] == LINK and link["any"] == {"ref": ITEM} and link["file"] == FILE
    assert (await legacy.run_query("legacy:normalize", {"table": "items", "id": ITEM})
            ).value == ITEM
    assert (await legacy.run_query("legacy:normalize", {"table": "links", "id": ITEM})
            ).value is None
    assert (await legacy.run_query("legacy:file_url", {"id": FILE})).value
    await legacy.run_mutation("legacy:rename", {"id": ITEM, "name": "renamed"})
    assert (await legacy.run_query("legacy:get", {"id": ITEM})).value["name"] == "renamed"


async def test_v_id_still_tells_the_tables_of_legacy_ids_apart(legacy: Engine) -> None:
    with pytest.raises(ValidationError, match="expected an id of table 'items', got an id "
                                              "of table 'links'"):
        await legacy.run_query("legacy:get", {"id": LINK})


async def test_new_documents_get_convex_ids_with_the_tables_old_number(
        legacy: Engine) -> None:
    new = (await legacy.run_mutation("legacy:add", {"name": "new"})).value
    assert len(new) == 31 and decode_convex_id(new)[0] == 1
    link = (await legacy.run_mutation("legacy:link", {"item": ITEM})).value
    assert decode_convex_id(link)[0] == 2
    links = (await legacy.run_query("legacy:links_of", {"item": ITEM})).value
    assert {row["_id"] for row in links} == {LINK, link}
    assert (await legacy.run_query("legacy:get", {"id": new})).value["name"] == "new"


async def test_a_table_added_after_the_upgrade_is_numbered_above_10000(
        make_app: Callable[..., Path], deploy: Callable[..., Any], tmp_path: Path,
        database_url: str) -> None:
    _, app, ns = await legacy_deployment(make_app, deploy, tmp_path, database_url)
    (app / "schema/__init__.py").write_text(SCHEMA.replace(
        '"items":', '"tags": define_table({"t": v.string()}),\n    "items":'))
    engine: Engine = await deploy(app, namespace=ns)
    assert engine.store.table_numbers == {**LEGACY_NUMBERS, "tags": 10001}
    assert (await engine.run_query("legacy:get", {"id": ITEM})).value["name"] == "old"


async def test_an_export_writes_legacy_ids_in_convex_format_and_an_import_restores_them(
        legacy: Engine, tmp_path: Path) -> None:
    """Convex cannot read legacy ids, so an export writes each in Convex's format (same
    table number, ids.convex_form), references and files included; importing that snapshot
    here turns them back, so the ids users hold keep working after a restore."""
    new = (await legacy.run_mutation("legacy:add", {"name": "new"})).value
    await export_snapshot(legacy, tmp_path / "s.zip", include_storage=True)
    snapshot = Snapshot(tmp_path / "s.zip")
    assert LEGACY_IDS in snapshot.entries
    numbers = tables_table(snapshot)
    assert numbers == {"items": 1, "links": 2}
    items = [orjson.loads(line) for line in snapshot.documents["items"]]
    (link,) = [orjson.loads(line) for line in snapshot.documents["links"]]
    (file_id,) = snapshot.files
    assert decode_convex_id(file_id)[0] == 5 and file_id != FILE
    for doc in items:
        assert decode_convex_id(doc["_id"])[0] == 1
    assert new in {doc["_id"] for doc in items}  # Convex-format ids are written as they are
    assert decode_convex_id(link["_id"])[0] == 2 and link["item"] != ITEM
    assert link["item"] in {doc["_id"] for doc in items} and link["any"] == {"ref": link["item"]}
    assert link["file"] == file_id

    source = open_source(tmp_path / "s.zip", legacy.schema)
    try:
        await import_source(legacy, source, Mode.REPLACE)
    finally:
        source.close()
    assert (await legacy.run_query("legacy:get", {"id": ITEM})).value["name"] == "old"
    assert (await legacy.run_query("legacy:get", {"id": new})).value["name"] == "new"
    (back,) = (await legacy.run_query("legacy:links_of", {"item": ITEM})).value
    assert (back["_id"], back["any"], back["file"]) == (LINK, {"ref": ITEM}, FILE)
    assert (await legacy.run_query("legacy:file_url", {"id": FILE})).value


async def test_a_new_deployment_exports_without_the_legacy_marker(
        make_app: Callable[..., Path], deploy: Callable[..., Any], tmp_path: Path) -> None:
    engine: Engine = await deploy(make_app({"schema/__init__.py": SCHEMA,
                                            "functions/legacy.py": FUNCTIONS}))
    await engine.run_mutation("legacy:add", {"name": "x"})
    await export_snapshot(engine, tmp_path / "s.zip")
    assert LEGACY_IDS not in Snapshot(tmp_path / "s.zip").entries
