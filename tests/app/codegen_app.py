"""An app that uses every kind of validator, in both forms, for the code generator tests."""

from __future__ import annotations

from tests.support import AppFiles

SCHEMA = """
from reactive_store import define_schema, define_table, v

schema = define_schema({
    "notes": define_table({
        "title": v.string(), "views": v.int64(), "data": v.optional(v.bytes()),
        "meta": v.optional(v.any()),
        "kind": v.union(v.literal("a"), v.literal(5), v.literal(True), v.literal(1.5)),
        "nested": v.object({"x": v.float64(), "my-key": v.string()}),
        "scores": v.optional(v.record(v.string(), v.float64())),
    }).index("by_title", ["title"]),
    "events": define_table(v.union(
        v.object({"type": v.literal("click"), "x": v.float64()}),
        v.object({"type": v.literal("key"), "key": v.string()}),
    )),
})
"""

NOTES = '''
from __future__ import annotations

from typing import Literal

from reactive_store import Doc, Id, internal_query, mutation, query, v

NoteId = Id["notes"]



@mutation(args={"note": v.object({
    "title": v.string(), "views": v.int64(),
    "kind": v.union(v.literal("a"), v.literal(5), v.literal(True), v.literal(1.5)),
    "nested": v.object({"x": v.float64(), "my-key": v.string()})})}, returns=v.id("notes"))
async def add(ctx, note):
    """Add a note.

    Returns its id; */ closes no comment."""
    return await ctx.db.insert("notes", note)


@query
async def get(ctx, id: NoteId) -> Doc["notes"] | None:
    return await ctx.db.get(id)


@query(name="list")
async def list_notes(ctx, kind: Literal["a", "b"] | None = None) -> list[Doc["notes"]]:
    return await ctx.db.query("notes").collect()


@query
async def count(ctx) -> float:
    return 0


@query
async def stats(ctx, ids: list[NoteId]) -> dict[str, int]:
    return {}


@query
async def raw(ctx, **args):
    return args


@query
async def events(ctx) -> list[Doc["events"]]:
    return []


@internal_query
async def secret(ctx) -> str:
    return "secret"
'''

PING = '''
from typing import Literal

from reactive_store import action


@action
async def ping(ctx, times: int = 1) -> Literal["pong"]:
    return "pong"


@action(name="import")
async def import_(ctx, data: bytes) -> None:
    return None
'''

CODEGEN_APP: AppFiles = {"schema/__init__.py": SCHEMA, "functions/notes.py": NOTES,
                         "functions/dir/sub.py": PING}
