"""Schema push of search and vector indexes on real Postgres: an index added to a table
with documents is backfilled (with progress lines), a changed declaration rebuilds it, a
removed one is dropped, and stored documents that do not fit a new vector index refuse
the whole push, naming them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reactive_store.errors import SchemaError
from reactive_store.schema import define_table
from reactive_store.storage import search_ddl
from reactive_store.validators import v
from tests.support import new_namespace, write_app

PLAIN = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "notes": define_table({"body": v.string(), "tag": v.string(),
                           "vec": v.optional(v.array(v.float64()))}),
})
"""
SEARCH = PLAIN.replace('}),\n})', '}).search_index("s", search_field="body"),\n})')
SEARCH_TAGGED = PLAIN.replace(
    '}),\n})', '}).search_index("s", search_field="body", filter_fields=["tag"]),\n})')
VECTOR = PLAIN.replace(
    '}),\n})', '}).vector_index("v", vector_field="vec", dimensions=2),\n})')
assert SEARCH != PLAIN and VECTOR != PLAIN
FUNCTIONS = """
from reactive_store import mutation, query, v

@mutation(args={"body": v.string(), "tag": v.string(), "vec": v.optional(v.any())})
async def add(ctx, body, tag, vec=None):
    return await ctx.db.insert("notes", {"body": body, "tag": tag} | ({"vec": vec} if vec else {}))

@query(args={"text": v.string(), "tag": v.optional(v.string())})
async def find(ctx, text, tag=None):
    def build(q):
        q = q.search("body", text)
        return q.eq("tag", tag) if tag is not None else q
    docs = await ctx.db.query("notes").with_search_index("s", build).collect()
    return sorted(d["body"] for d in docs)
"""


async def test_search_index_backfill_rebuild_and_drop(
        tmp_path: Path, deploy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_ddl, "PROGRESS_EVERY", 100)
    monkeypatch.setattr(search_ddl, "BACKFILL_BATCH", 50)
    ns = new_namespace()
    app = write_app(tmp_path / "app", {"schema/__init__.py": PLAIN, "functions/n.py": FUNCTIONS})
    engine = await deploy(app, namespace=ns)

    async def bulk(db: Any, tx: Any) -> tuple[Any, Any]:
        for i in range(250):
            await db.insert("notes", {"body": f"note {i} {'even' if i % 2 == 0 else 'odd'}",
                                      "tag": "t" + str(i % 3)})
        return None, None

    await engine.transact("bulk", bulk)
    lines: list[str] = []
    engine.deployment.settings.progress = lines.append
    write_app(app, {"schema/__init__.py": SEARCH})
    report = await engine.deployment.reload()
    assert report.schema is not None and report.schema.created_indexes == ["notes.s"]
    assert lines == ["backfilling search index notes.s: 100/250 documents",
                     "backfilling search index notes.s: 200/250 documents",
                     "backfilled search index notes.s: 250 documents"]
    found = (await engine.run_query("n:find", {"text": "even"})).value
    assert len(found) == 125

    write_app(app, {"schema/__init__.py": SEARCH_TAGGED})
    report = await engine.deployment.reload()
    assert report.schema is not None and report.schema.rebuilt_indexes == ["notes.s"]
    tagged = (await engine.run_query("n:find", {"text": "even", "tag": "t0"})).value
    assert len(tagged) == 42  # i even and i % 3 == 0: 0, 6, ..., 246

    write_app(app, {"schema/__init__.py": PLAIN})
    report = await engine.deployment.reload()
    assert report.schema is not None and report.schema.retired_indexes == ["notes.s"]
    side = engine.store.names.side_table("search", "notes", "s")
    async with engine.store.read() as tx:
        assert await tx.fetch("SELECT to_regclass($1)", side.sql) == [(None,)]


async def test_bad_stored_vectors_refuse_the_push(tmp_path: Path, deploy: Any,
                                                  pgvector_url: str) -> None:
    ns = new_namespace()
    app = write_app(tmp_path / "app", {"schema/__init__.py": PLAIN, "functions/n.py": FUNCTIONS})
    engine = await deploy(app, namespace=ns, url=pgvector_url)
    good = (await engine.run_mutation("n:add", {"body": "a", "tag": "t", "vec": [1.0, 0.0]})).value
    bad = (await engine.run_mutation("n:add", {"body": "b", "tag": "t", "vec": [1.0, 0.0, 3.0]})
           ).value
    write_app(app, {"schema/__init__.py": VECTOR})
    with pytest.raises(SchemaError, match=rf"cannot build vector index notes\.v: 1 document\(s\) "
                       rf"have a bad vector: {bad}; first error: .*3 dimensions"):
        await engine.deployment.reload()
    assert "v" not in engine.app.schema.tables["notes"].vector_indexes  # the old app stays
    await engine.run_mutation("n:add", {"body": "c", "tag": "t", "vec": [1.0, 0.0, 3.0]})
    assert good


@pytest.mark.parametrize(("build", "message"), [
    (lambda t: t.search_index("s", search_field="_id"), "search_field must be a field name"),
    (lambda t: t.search_index("s", search_field="body", filter_fields="tag"),
     "filter_fields must be a list"),
    (lambda t: t.search_index("s", search_field="body", filter_fields=["tag", "tag"]),
     "a filter field appears twice"),
    (lambda t: t.search_index("s", search_field="body", filter_fields=[f"f{i}" for i in range(17)]),
     "at most 16 filter fields"),
    (lambda t: t.index("s", ["body"]).search_index("s", search_field="body"),
     "index 's' is declared twice"),
    (lambda t: t.vector_index("v", vector_field="vec", dimensions=1), "from 2 to 4096, got 1"),
    (lambda t: t.vector_index("v", vector_field="vec", dimensions=4097), "got 4097"),
    (lambda t: t.vector_index("v", vector_field="vec", dimensions=True), "got True"),
    (lambda t: t.vector_index("by_id", vector_field="vec", dimensions=2), "invalid index name"),
])
def test_declarations_are_checked(build: Any, message: str) -> None:
    table = define_table({"body": v.string(), "tag": v.string()})
    with pytest.raises(SchemaError, match=message):
        build(table)
