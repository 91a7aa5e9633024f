"""The same app written twice, with `v.*` validators and with type hints, is the same app to
a client: the same `/api/functions` catalog, the same responses on the wire (values and
int64/float64 encodings), and the same error messages for bad arguments."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from reactive_store.server import create_app

V_SCHEMA = """
from reactive_store import define_schema, define_table, v

schema = define_schema({
    "notes": define_table({"title": v.string(), "stars": v.float64(), "views": v.int64(),
                           "kind": v.union(v.literal("memo"), v.literal("todo")),
                           "tags": v.optional(v.array(v.string()))})
        .index("by_title", ["title"]),
})
"""

TYPED_SCHEMA = """
from typing import Literal, NotRequired
from typing_extensions import TypedDict
from reactive_store import define_schema, define_table


class Note(TypedDict):
    title: str
    stars: float
    views: int
    kind: Literal["memo", "todo"]
    tags: NotRequired[list[str]]


schema = define_schema({"notes": define_table(Note).index("by_title", ["title"])})
"""

V_FUNCTIONS = """
from reactive_store import mutation, query, v

NOTE = v.object({"title": v.string(), "stars": v.float64(), "views": v.int64(),
                 "kind": v.union(v.literal("memo"), v.literal("todo")),
                 "tags": v.optional(v.array(v.string()))})


@mutation(args={"note": NOTE}, returns=v.id("notes"))
async def add(ctx, note):
    \"\"\"Add a note.\"\"\"
    return await ctx.db.insert("notes", note)


@query(args={"title": v.string()}, returns=v.union(v.doc("notes"), v.null()))
async def by_title(ctx, title):
    \"\"\"The note with this title.\"\"\"
    return await ctx.db.query("notes").with_index(
        "by_title", lambda q: q.eq("title", title)).first()


@query(args={"minStars": v.optional(v.float64())}, returns=v.number(), name="count")
async def count_notes(ctx, minStars=0.0):
    \"\"\"How many notes have at least minStars.\"\"\"
    return len([n for n in await ctx.db.query("notes").collect() if n["stars"] >= minStars])


@query(args={"limit": v.int64()}, returns=v.array(v.int64()))
async def views(ctx, limit):
    \"\"\"Views per note.\"\"\"
    return [n["views"] for n in await ctx.db.query("notes").take(limit)]
"""

TYPED_FUNCTIONS = """
from __future__ import annotations

from pydantic import BaseModel

from reactive_store import Doc, Id, mutation, query

from ..schema import Note

NoteId = Id["notes"]
NoteDoc = Doc["notes"]


@mutation
async def add(ctx, note: Note) -> NoteId:
    \"\"\"Add a note.\"\"\"
    return await ctx.db.insert("notes", note)


@query
async def by_title(ctx, title: str) -> NoteDoc | None:
    \"\"\"The note with this title.\"\"\"
    return await ctx.db.query("notes").with_index(
        "by_title", lambda q: q.eq("title", title)).first()


@query(name="count")
async def count_notes(ctx, minStars: float = 0.0) -> float:
    \"\"\"How many notes have at least minStars.\"\"\"
    return len([n for n in await ctx.db.query("notes").collect() if n["stars"] >= minStars])


@query
async def views(ctx, limit: int) -> list[int]:
    \"\"\"Views per note.\"\"\"
    return [n["views"] for n in await ctx.db.query("notes").take(limit)]
"""

NOTE = {"title": "hello", "stars": 4, "views": {"$integer": "BQAAAAAAAAA="}, "kind": "memo"}

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("/api/mutation", {"path": "notes:add", "args": {"note": NOTE},
                       "format": "convex_encoded_json"}),
    ("/api/mutation", {"path": "notes:add", "args": {"note": {**NOTE, "title": "tags",
                                                               "tags": ["a"]}}}),
    ("/api/query", {"path": "notes:by_title", "args": {"title": "hello"},
                    "format": "convex_encoded_json"}),
    ("/api/query", {"path": "notes:by_title", "args": {"title": "hello"}}),
    ("/api/query", {"path": "notes:by_title", "args": {"title": "nobody"}}),
    ("/api/query", {"path": "notes:count", "args": {}, "format": "convex_encoded_json"}),
    ("/api/query", {"path": "notes:count", "args": {"minStars": 5}}),
    ("/api/query", {"path": "notes:views", "args": {"limit": {"$integer": "AgAAAAAAAAA="}},
                    "format": "convex_encoded_json"}),
    ("/api/query", {"path": "notes:views", "args": {"limit": {"$integer": "AgAAAAAAAAA="}}}),
    # bad arguments, each a different way
    ("/api/mutation", {"path": "notes:add", "args": {"note": {**NOTE, "views": 5}}}),
    ("/api/mutation", {"path": "notes:add", "args": {"note": {**NOTE, "kind": "poem"}}}),
    ("/api/mutation", {"path": "notes:add", "args": {"note": {"title": "x"}}}),
    ("/api/mutation", {"path": "notes:add", "args": {"note": {**NOTE, "tags": "a"}}}),
    ("/api/mutation", {"path": "notes:add", "args": {"note": {**NOTE, "_id": "x"}}}),
    ("/api/mutation", {"path": "notes:add", "args": {}}),
    ("/api/query", {"path": "notes:by_title", "args": {"title": None}}),
    ("/api/query", {"path": "notes:count", "args": {"minStars": "many"}}),
    ("/api/query", {"path": "notes:views", "args": {"limit": 2}}),
    ("/api/query", {"path": "notes:count_notes", "args": {}}),
    ("/api/query", {"path": "notes:add", "args": {}}),
]


def normalize(body: Any, ids: dict[str, str]) -> Any:
    """Ids and creation times differ between the two deployments; nothing else may."""
    if isinstance(body, dict):
        return {k: "<time>" if k == "_creationTime" else normalize(x, ids)
                for k, x in body.items()}
    if isinstance(body, list):
        return [normalize(x, ids) for x in body]
    if isinstance(body, str) and body in ids:
        return ids[body]
    return body


@pytest.fixture
async def clients(make_app: Any, deploy: Any) -> AsyncIterator[list[httpx.AsyncClient]]:
    out = []
    for schema, functions in ((V_SCHEMA, V_FUNCTIONS), (TYPED_SCHEMA, TYPED_FUNCTIONS)):
        engine = await deploy(make_app({"schema/__init__.py": schema,
                                        "functions/notes.py": functions}))
        app = create_app(engine.deployment, manage_lifespan=False)
        out.append(httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test"))
    yield out
    for client in out:
        await client.aclose()


async def test_the_catalogs_are_identical(clients: list[httpx.AsyncClient]) -> None:
    v_form, typed = [(await c.get("/api/functions")).json() for c in clients]
    assert typed == v_form
    assert [f["path"] for f in typed["functions"]] == [
        "notes:add", "notes:by_title", "notes:count", "notes:views"]


async def test_responses_are_identical_on_the_wire(clients: list[httpx.AsyncClient]) -> None:
    ids: list[dict[str, str]] = [{}, {}]
    for url, body in REQUESTS:
        answers = []
        for client, known in zip(clients, ids, strict=True):
            response = await client.post(url, json=body)
            answer = response.json()
            if body["path"] == "notes:add" and answer.get("status") == "success":
                known[answer["value"]] = f"<id {len(known)}>"
            answers.append((response.status_code, normalize(answer, known)))
        assert answers[0] == answers[1], (url, body)
