"""Functions in the annotation form, run by the engine on real Postgres: models arrive as
instances and leave as plain values, ints become float64 where a number is declared, Doc
results are checked against the schema, and both forms fail alike on bad arguments."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from reactive_store.engine.engine import Engine
from reactive_store.errors import ValidationError
from reactive_store.values import encode

SCHEMA = """
from typing import NotRequired, TypedDict
from pydantic import BaseModel
from reactive_store import Id, define_schema, define_table

NoteId = Id["notes"]


class Note(TypedDict):
    title: str
    body: str
    stars: float
    tags: NotRequired[list[str]]


class Reaction(BaseModel):
    noteId: NoteId
    emoji: str


schema = define_schema({
    "notes": define_table(Note).index("by_title", ["title"]),
    "reactions": define_table(Reaction),
})
"""

TYPED = """
from __future__ import annotations

import dataclasses
import enum
from typing import Any

from pydantic import BaseModel, Field

from reactive_store import Doc, mutation, query, v

from ..schema import NoteId, Reaction

Notes = list[Doc["notes"]]


class Draft(BaseModel):
    title: str = Field(min_length=1)
    body: str = ""
    stars: float = 0


class Order(enum.Enum):
    OLDEST = "asc"
    NEWEST = "desc"


@dataclasses.dataclass
class Summary:
    title: str
    stars: float


@dataclasses.dataclass
class Page:
    items: list[Summary]
    total: float


@mutation
async def create(ctx, draft: Draft, tags: list[str] = []) -> NoteId:
    assert isinstance(draft, Draft), draft
    tags.append("new")  # each call without tags gets its own list
    return await ctx.db.insert("notes", {**draft.model_dump(), "tags": tags})


@query(name="list")
async def list_notes(ctx, order: Order = Order.OLDEST) -> Notes:
    assert isinstance(order, Order), order
    return await ctx.db.query("notes").order(order.value).collect()


@query
async def count(ctx) -> float:
    return len(await ctx.db.query("notes").collect())


@query(returns=v.number())
async def count_v(ctx, title: str | None = None) -> int:
    return len(await ctx.db.query("notes").collect())


@query
async def counts(ctx) -> dict[str, list[float]]:
    return {"all": [1, 2, 3]}


@query
async def page(ctx) -> Page:
    notes = await ctx.db.query("notes").collect()
    return Page([Summary(n["title"], n["stars"]) for n in notes], len(notes))


@query
async def loose(ctx) -> Any:
    return [Summary("loose", 1.0), Order.NEWEST]


@query
async def untyped(ctx, title: str):
    return Summary(title, 2)


@query
async def huge(ctx) -> float:
    return 2**60


@query
async def forged(ctx) -> Doc["notes"]:
    note = await ctx.db.query("notes").first()
    return {**note, "stars": "five"}


@mutation
async def later(ctx, title: str) -> str:
    from reactive_store.client import MutationReference

    return await ctx.scheduler.run_after(60, MutationReference("typed:create"),
                                         {"draft": {"title": title}})


@query
async def via_reference(ctx) -> float:
    return len(await ctx.db.system.query("_scheduled_functions").collect())


@mutation
async def react(ctx, reaction: Reaction) -> Doc["reactions"]:
    assert isinstance(reaction, Reaction), reaction
    return await ctx.db.get(await ctx.db.insert("reactions", reaction))
"""

V_FORM = """
from reactive_store import mutation, query, v

DRAFT = v.object({"title": v.string(), "body": v.optional(v.string()),
                  "stars": v.optional(v.float64())})


@mutation(args={"draft": DRAFT, "tags": v.optional(v.array(v.string()))},
          returns=v.id("notes"))
async def create(ctx, draft, tags=None):
    return await ctx.db.insert("notes", {"body": "", "stars": 0.0, **draft,
                                         "tags": [*(tags or []), "new"]})


@query(args={"order": v.optional(v.union(v.literal("asc"), v.literal("desc")))},
       returns=v.array(v.doc("notes")), name="list")
async def list_notes(ctx, order="asc"):
    return await ctx.db.query("notes").order(order).collect()


@query(args={}, returns=v.number())
async def count(ctx):
    return len(await ctx.db.query("notes").collect())
"""


@pytest.fixture
async def app(make_app: Any, deploy: Any) -> Engine:
    root: Path = make_app({"schema/__init__.py": SCHEMA, "functions/typed.py": TYPED,
                           "functions/plain.py": V_FORM})
    engine: Engine = await deploy(root)
    return engine


async def test_models_arrive_as_instances_and_mutable_defaults_are_fresh(app: Engine) -> None:
    first = await app.run_mutation("typed:create", {"draft": {"title": "a", "stars": 4}})
    await app.run_mutation("typed:create", {"draft": {"title": "b"}, "tags": ["x"]})
    await app.run_mutation("typed:create", {"draft": {"title": "c"}})
    notes = (await app.run_query("typed:list", {})).value
    assert [(n["title"], n["stars"], n["tags"]) for n in notes] == [
        ("a", 4.0, ["new"]), ("b", 0.0, ["x", "new"]), ("c", 0.0, ["new"])]
    assert notes[0]["_id"] == first.value
    newest = (await app.run_query("typed:list", {"order": "desc"})).value
    assert [n["title"] for n in newest] == ["c", "b", "a"]


async def test_a_declared_number_turns_a_returned_int_into_float64(app: Engine) -> None:
    await app.run_mutation("typed:create", {"draft": {"title": "a"}})
    for path in ("typed:count", "typed:count_v", "plain:count"):
        outcome = await app.run_query(path, {})
        assert outcome.value == 1.0 and type(outcome.value) is float, path
        assert outcome.encoded == 1.0  # a JSON number, not {"$integer": ...}
    nested = await app.run_query("typed:counts", {})
    assert nested.encoded == {"all": [1.0, 2.0, 3.0]}
    with pytest.raises(ValidationError, match="typed:huge: return value: expected float64, "
                                              "got int64 1152921504606846976"):
        await app.run_query("typed:huge", {})


async def test_returned_models_are_serialized(app: Engine) -> None:
    await app.run_mutation("typed:create", {"draft": {"title": "a", "stars": 2.5}})
    page = await app.run_query("typed:page", {})
    assert page.encoded == {"items": [{"title": "a", "stars": 2.5}], "total": 1.0}
    # Undeclared (Any, or no return hint): serialized too, rather than refused.
    assert (await app.run_query("typed:loose", {})).encoded == [
        {"title": "loose", "stars": 1.0}, "desc"]
    untyped = await app.run_query("typed:untyped", {"title": "t"})
    assert untyped.encoded == {"title": "t", "stars": encode(2)}


async def test_model_instances_are_written_as_documents(app: Engine) -> None:
    note = (await app.run_mutation("typed:create", {"draft": {"title": "a"}})).value
    reaction = await app.run_mutation("typed:react", {"reaction": {"noteId": note,
                                                                   "emoji": "+1"}})
    assert reaction.value["noteId"] == note and reaction.value["emoji"] == "+1"
    assert set(reaction.value) == {"_id", "_creationTime", "noteId", "emoji"}


async def test_generated_references_name_functions_on_the_server(app: Engine) -> None:
    from reactive_store.client import QueryReference

    await app.run_mutation("typed:later", {"title": "soon"})
    assert (await app.run_query(QueryReference("typed:via_reference"), {})).value == 1.0
    jobs = await app.read(lambda db: db.system.query("_scheduled_functions").collect())
    assert [(j["name"], j["args"]) for j in jobs] == [("typed:create",
                                                      {"draft": {"title": "soon"}})]


async def test_doc_results_are_checked_against_the_table(app: Engine) -> None:
    await app.run_mutation("typed:create", {"draft": {"title": "a"}})
    with pytest.raises(ValidationError, match=re.escape(
            "typed:forged: return value.stars: expected float64, got string 'five'")):
        await app.run_query("typed:forged", {})


async def test_the_models_own_checks_fail_like_bad_arguments(app: Engine) -> None:
    with pytest.raises(ValidationError) as info:
        await app.run_mutation("typed:create", {"draft": {"title": ""}})
    assert info.value.message == "args.draft.title: String should have at least 1 character"
    assert (await app.run_query("typed:count", {})).value == 0.0  # nothing written


@pytest.mark.parametrize(
    ("path", "args"),
    [
        ("create", {"draft": {"title": 5}}),
        ("create", {"draft": {}}),
        ("create", {"draft": {"title": "a", "color": "red"}}),
        ("create", {"draft": {"title": "a"}, "tags": ["a", 1]}),
        ("create", {"draft": {"title": "a", "stars": "many"}}),
        ("create", {"draft": "a"}),
        ("create", {}),
        ("create", {"draft": {"title": "a"}, "extra": True}),
        ("create", []),
        ("list", {"order": "sideways"}),
        ("count", {"x": 1}),
    ],
)
async def test_bad_arguments_fail_alike_in_both_forms(app: Engine, path: str,
                                                      args: Any) -> None:
    messages = []
    for module in ("typed", "plain"):
        run = app.run_mutation if path == "create" else app.run_query
        with pytest.raises(ValidationError) as info:
            await run(f"{module}:{path}", args)
        messages.append(info.value.message)
    assert messages[0] == messages[1]


def test_both_forms_describe_the_same_functions(app: Engine) -> None:
    for name in ("create", "list", "count"):
        typed = app.app.functions.resolve(f"typed:{name}").describe()
        plain = app.app.functions.resolve(f"plain:{name}").describe()
        assert (typed["args"], typed["returns"]) == (plain["args"], plain["returns"]), name
