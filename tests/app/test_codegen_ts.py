"""codegen_ts.py: the generated `api` and data model, and client code that `tsc` accepts with
them (and the wrong calls it must refuse)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reactive_store.app.codegen import GENERATED_DIR, generate, write_files
from reactive_store.app.codegen_model import AppModel, CodegenError, FunctionEntry, app_model
from reactive_store.app.codegen_ts import field_paths, literal
from reactive_store.app.loader import load_app, unload_app
from reactive_store.engine.system_tables import readable_system_tables
from reactive_store.validators import v
from reactive_store.values import encode
from tests.app.codegen_app import CODEGEN_APP
from tests.support import write_app
from tests.typecheck import tsc


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The codegen test app's TypeScript, in a folder client code can sit next to."""
    root = write_app(tmp_path_factory.mktemp("codegen") / "app", CODEGEN_APP)
    app = load_app(root)
    try:
        model = app_model(app.functions, app.schema, readable_system_tables())
        files = generate(model, python=False)
    finally:
        unload_app(app)
    out = root / GENERATED_DIR
    assert sorted(write_files(out, files)) == ["api.d.ts", "api.js", "dataModel.d.ts"]
    return out


def test_api_types(generated: Path) -> None:
    api = (generated / "api.d.ts").read_text()
    assert 'import type { FunctionReference } from "convex/server";' in api
    assert 'import type { Doc, Id } from "./dataModel.js";' in api
    for line in [
        'get: FunctionReference<"query", "public", { id: Id<"notes"> }, Doc<"notes"> | null>;',
        'list: FunctionReference<"query", "public", { kind?: "a" | "b" | null }, '
        'Array<Doc<"notes">>>;',  # exported with name="list"
        'count: FunctionReference<"query", "public", Record<string, never>, number>;',
        'raw: FunctionReference<"query", "public", any, any>;',
        'ping: FunctionReference<"action", "public", { times?: bigint }, "pong">;',
        'import: FunctionReference<"action", "public", { data: ArrayBuffer }, null>;',
        'secret: FunctionReference<"query", "internal", Record<string, never>, string>;',
        '{ note: { title: string; views: bigint; kind: "a" | 5n | true | 1.5; nested: '
        '{ x: number; "my-key": string } } },',
    ]:
        assert line in api, line
    assert "Returns its id; *\\/ closes no comment." in api  # a docstring cannot end the JSDoc
    # internal functions only in `internal`
    assert api.index("secret") > api.index("export declare const internal") > api.index(
        "export declare const api")
    assert re.search(r"dir: \{\n    sub: \{\n", api)


def test_api_js_is_convex_any_api(generated: Path) -> None:
    js = (generated / "api.js").read_text()
    assert 'import { anyApi } from "convex/server";' in js
    assert "export const api = anyApi;" in js and "export const internal = anyApi;" in js


def test_data_model(generated: Path) -> None:
    model = (generated / "dataModel.d.ts").read_text()
    assert 'export type TableNames = "notes" | "events";' in model
    assert ('export type SystemTableNames = "_scheduled_functions" | "_cron_jobs" | "_storage";'
            in model), "internal tables (environment variables) are not part of the model"
    assert "export type Id<TableName extends TableNames | SystemTableNames> = " \
           "GenericId<TableName>;" in model
    assert ('document: { _id: Id<"notes">; _creationTime: number; title: string; views: '
            'bigint; data?: ArrayBuffer; meta?: any; kind: "a" | 5n | true | 1.5; nested: '
            '{ x: number; "my-key": string }; scores?: Record<string, number> };') in model
    assert ('document: { _id: Id<"events">; _creationTime: number } & ({ type: "click"; '
            'x: number } | { type: "key"; key: string });') in model
    assert ('by_title: ["title", "_creationTime"];') in model
    assert 'by_creation_time: ["_creationTime"];' in model and 'by_id: ["_id"];' in model


def test_field_paths() -> None:
    spec = v.object({"a": v.string(), "meta": v.any(), "o": v.object({"b": v.int64()}),
                     "r": v.optional(v.record(v.string(), v.any()))}).to_json()
    assert field_paths(spec) == ['"a"', '"meta"', "`meta.${string}`", '"o"', '"o.b"', '"r"',
                                 "`r.${string}`"]


@pytest.mark.parametrize(("value", "expected"),
                         [("low", '"low"'), (5, "5n"), (1.5, "1.5"), (True, "true"),
                          (False, "false"), ('say "hi"', '"say \\"hi\\""')])
def test_literals(value: str | int | float | bool, expected: str) -> None:
    assert literal(encode(value)) == expected


def test_a_function_named_like_a_module_cannot_be_generated() -> None:
    entries = [FunctionEntry("a:b", "query", "public", None, None, ""),
               FunctionEntry("a/b:c", "query", "public", None, None, "")]
    with pytest.raises(CodegenError, match=r"`api.a.b` would be both a function and a module"):
        AppModel(entries, []).namespace("public")


CLIENT = """
import { ConvexHttpClient } from "convex/browser";
import { useAction, useMutation, useQuery } from "convex/react";
import type { FunctionArgs, FunctionReturnType } from "convex/server";
import { api, internal } from "./_generated/api.js";
import type { Doc, Id, TableNames } from "./_generated/dataModel.js";

const client = new ConvexHttpClient("http://127.0.0.1:3210");

export async function calls(): Promise<string> {
  const id: Id<"notes"> = await client.mutation(api.notes.add, {
    note: { title: "t", views: 1n, kind: 5n, nested: { x: 1, "my-key": "k" } },
  });
  const note: Doc<"notes"> | null = await client.query(api.notes.get, { id });
  const views: bigint | undefined = note?.views;
  const key: string | undefined = note?.nested["my-key"];
  const all: Doc<"notes">[] = await client.query(api.notes.list, {});
  const some = await client.query(api.notes.list, { kind: "b" });
  const count: number = await client.query(api.notes.count);
  const stats: Record<string, bigint> = await client.query(api.notes.stats, { ids: [id] });
  const pong: "pong" = await client.action(api.dir.sub.ping, { times: 2n });
  const events = await client.query(api.notes.events, {});
  const firstEvent = events[0];
  const where = firstEvent?.type === "click" ? firstEvent.x : firstEvent?.key;
  const raw: unknown = await client.query(api.notes.raw, { anything: [1, 2] });
  const table: TableNames = "events";
  return [views, key, all.length, some.length, count, stats, pong, where, raw, table].join();
}

export function useNote(id: Id<"notes">): string | undefined {
  const note = useQuery(api.notes.get, { id });
  const add = useMutation(api.notes.add);
  const ping = useAction(api.dir.sub.ping);
  void add; void ping;
  return note === undefined ? "loading" : note?.title;
}

type GetArgs = FunctionArgs<typeof api.notes.get>;
type ListResult = FunctionReturnType<typeof api.notes.list>;
export const argsOk: GetArgs = { id: "x" as Id<"notes"> };
export const resultOk: ListResult = [];

export async function refused(id: Id<"notes">, eventId: Id<"events">): Promise<void> {
  // @ts-expect-error an id of another table
  await client.query(api.notes.get, { id: eventId });
  // @ts-expect-error a plain string is not an Id<"notes">
  await client.query(api.notes.get, { id: "not an id" });
  // @ts-expect-error a missing argument
  await client.query(api.notes.get, {});
  // @ts-expect-error an argument the function does not take
  await client.query(api.notes.get, { id, extra: 1 });
  // @ts-expect-error an int64 needs a bigint
  await client.action(api.dir.sub.ping, { times: 2 });
  // @ts-expect-error a literal outside the union
  await client.query(api.notes.list, { kind: "c" });
  // @ts-expect-error a mutation is not a query
  await client.query(api.notes.add, { note: { title: "t" } });
  // @ts-expect-error internal functions are not callable from a client
  await client.query(internal.notes.secret, {});
  // @ts-expect-error no such function
  await client.query(api.notes.nope, {});
  // @ts-expect-error the result is a number, not a string
  const count: string = await client.query(api.notes.count, {});
  void count;
}
"""

WRONG = """
import { useQuery } from "convex/react";
import { api } from "./_generated/api.js";

export function useNote() {
  return useQuery(api.notes.get, { id: 42 });
}
"""


def test_client_code_type_checks(generated: Path) -> None:
    folder = generated.parent.parent / "client_ok"
    folder.mkdir()
    (folder / "_generated").symlink_to(generated, target_is_directory=True)
    (folder / "app.ts").write_text(CLIENT)
    result = tsc(folder)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_argument_type_fails_tsc(generated: Path) -> None:
    folder = generated.parent.parent / "client_wrong"
    folder.mkdir()
    (folder / "_generated").symlink_to(generated, target_is_directory=True)
    (folder / "app.ts").write_text(WRONG)
    result = tsc(folder)
    assert result.returncode != 0
    assert "app.ts(6," in result.stdout, result.stdout
    assert "error TS2322: Type 'number' is not assignable to type " in result.stdout
    assert "Id<\"notes\">" in result.stdout or "GenericId<\"notes\">" in result.stdout
