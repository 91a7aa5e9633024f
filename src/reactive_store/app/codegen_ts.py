"""TypeScript for the official `convex` npm client, as `npx convex codegen` writes it for a
Convex app: `api.d.ts` (the `api` and `internal` objects, each function a
`FunctionReference<kind, visibility, Args, Result>`), `api.js` (both are Convex's `anyApi`
at runtime, which builds the function path from the property names) and `dataModel.d.ts`
(`DataModel`, `Doc<"table">`, `Id<"table">`, `TableNames`).

So `useQuery(api.chatMessages.listBySession, { sessionId })` from `convex/react` type-checks
its arguments and infers its result, exactly as against a Convex deployment.
"""

from __future__ import annotations

import json
import re
from typing import Any

from reactive_store.app.codegen_model import (
    INTERNAL,
    NOTICE,
    PUBLIC,
    AppModel,
    FunctionEntry,
    Namespace,
    TableEntry,
)
from reactive_store.values import decode

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_WIDTH = 100

API_JS = f"""/* eslint-disable */
/**
 * The app's `api` and `internal` objects: `api.module.function` is a reference to the
 * function `module:function` (Convex's `anyApi` builds it from the property names).
 *
 * {NOTICE}
 */

import {{ anyApi }} from "convex/server";

export const api = anyApi;
export const internal = anyApi;
"""


def typescript_files(model: AppModel) -> dict[str, str]:
    """`api.d.ts`, `api.js` and `dataModel.d.ts` for `model`."""
    return {"api.d.ts": _api(model), "api.js": API_JS, "dataModel.d.ts": _data_model(model)}


def key(name: str) -> str:
    """An object type's key: bare when it is an identifier, else quoted."""
    return name if _IDENTIFIER.match(name) else json.dumps(name)


class TypeWriter:
    """Catalog JSON validators -> TypeScript types; remembers whether it used Id and Doc."""

    def __init__(self, tables: set[str]) -> None:
        self.tables = tables
        self.used: set[str] = set()

    def type(self, spec: dict[str, Any] | None) -> str:
        if spec is None:
            return "any"
        kind = spec["type"]
        simple = {"string": "string", "number": "number", "bigint": "bigint",
                  "boolean": "boolean", "null": "null", "bytes": "ArrayBuffer", "any": "any"}
        if kind in simple:
            return simple[kind]
        if kind == "id":
            self.used.add("Id")
            return f"Id<{json.dumps(spec['tableName'])}>"
        if kind == "doc":
            if spec["tableName"] not in self.tables:
                return "any"
            self.used.add("Doc")
            return f"Doc<{json.dumps(spec['tableName'])}>"
        if kind == "literal":
            return literal(spec["value"])
        if kind == "array":
            return f"Array<{self.type(spec['value'])}>"
        if kind == "record":
            return f"Record<{self.type(spec['keys'])}, {self.type(spec['values'])}>"
        if kind == "union":
            return " | ".join(self.type(member) for member in spec["value"])
        if kind == "object":
            return self.object(spec["value"])
        raise ValueError(f"no TypeScript type for validator {spec!r}")

    def object(self, fields: dict[str, Any], extra: str = "") -> str:
        if not fields and not extra:
            return "Record<string, never>"
        parts = [f"{key(name)}{'?' if field['optional'] else ''}: {self.type(field['fieldType'])}"
                 for name, field in fields.items()]
        return "{ " + "; ".join([*([extra] if extra else []), *parts]) + " }"


def literal(encoded: Any) -> str:
    """A literal's TypeScript type: `"low"`, `1.5`, `true`, or `5n` for an int64."""
    value = decode(encoded)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}n"
    return json.dumps(value)


def jsdoc(doc: str, indent: str) -> list[str]:
    if not doc:
        return []
    lines = doc.replace("*/", "*\\/").splitlines()
    return [f"{indent}/**", *(f"{indent} *{' ' + line if line else ''}" for line in lines),
            f"{indent} */"]


def _reference(entry: FunctionEntry, types: TypeWriter, indent: str) -> list[str]:
    parts = [json.dumps(entry.kind), json.dumps(entry.visibility),
             "any" if entry.args is None else types.type(entry.args), types.type(entry.returns)]
    one_line = f"{indent}{key(entry.name)}: FunctionReference<{', '.join(parts)}>;"
    if len(one_line) <= _WIDTH:
        return [one_line]
    inner = indent + "  "
    return [f"{indent}{key(entry.name)}: FunctionReference<",
            *(f"{inner}{part}," for part in parts[:-1]), f"{inner}{parts[-1]}", f"{indent}>;"]


def _namespace(node: Namespace, types: TypeWriter, indent: str) -> list[str]:
    lines: list[str] = []
    for name in sorted(node.children):
        lines += [f"{indent}{key(name)}: {{",
                  *_namespace(node.children[name], types, indent + "  "), f"{indent}}};"]
    for name in sorted(node.functions):
        entry = node.functions[name]
        lines += [*jsdoc(entry.doc, indent), *_reference(entry, types, indent)]
    return lines


def _api(model: AppModel) -> str:
    types = TypeWriter({t.name for t in (*model.tables, *model.system_tables)})
    body: list[str] = []
    for name, visibility in (("api", PUBLIC), ("internal", INTERNAL)):
        lines = _namespace(model.namespace(visibility), types, "  ")
        body += ([f"export declare const {name}: {{", *lines, "};", ""] if lines
                 else [f"export declare const {name}: {{}};", ""])
    imported = sorted(types.used)
    head = ["/* eslint-disable */", "/**",
            " * The app's `api` (public functions) and `internal` objects: a FunctionReference",
            " * for every function, with its argument and return types.", " *",
            f" * {NOTICE}", " */", "",
            'import type { FunctionReference } from "convex/server";']
    if imported:
        head.append(f'import type {{ {", ".join(imported)} }} from "./dataModel.js";')
    return "\n".join([*head, "", *body]).rstrip() + "\n"


def field_paths(spec: dict[str, Any], prefix: str = "") -> list[str]:
    """Every path into a document's fields, as Convex's `fieldPaths` lists them."""
    out: list[str] = []
    if spec["type"] == "union":
        for member in spec["value"]:
            out += [p for p in field_paths(member, prefix) if p not in out]
        return out
    if spec["type"] != "object":
        return out
    for name, field in spec["value"].items():
        path = prefix + name
        out.append(json.dumps(path))
        inner = field["fieldType"]
        if inner["type"] in ("any", "record"):
            out.append(f"`{path}.${{string}}`")
        out += field_paths(inner, path + ".")
    return out


def _table(table: TableEntry, types: TypeWriter) -> list[str]:
    system = f"_id: Id<{json.dumps(table.name)}>; _creationTime: number"
    document = table.document
    if document["type"] == "object":
        doc_type = types.object(document["value"], extra=system)
    else:
        doc_type = "{ " + system + " } & (" + types.type(document) + ")"
    paths = ['"_id"', '"_creationTime"', *field_paths(document)]
    indexes = [f"      {key(name)}: [{', '.join(json.dumps(f) for f in fields)}];"
               for name, fields in table.indexes.items()]
    return [f"  {key(table.name)}: {{", f"    document: {doc_type};",
            f"    fieldPaths: {' | '.join(paths)};", "    indexes: {", *indexes, "    };",
            "    searchIndexes: {};", "    vectorIndexes: {};", "  };"]


def _tables(name: str, tables: list[TableEntry], types: TypeWriter, doc: str) -> list[str]:
    lines = [line for table in tables for line in _table(table, types)]
    return [f"/** {doc} */", f"export type {name} = {{", *lines, "};", ""] if lines else [
        f"/** {doc} */", f"export type {name} = {{}};", ""]


def _names(tables: list[TableEntry]) -> str:
    return " | ".join(json.dumps(t.name) for t in tables) or "never"


def _data_model(model: AppModel) -> str:
    types = TypeWriter(set())
    return "\n".join([
        "/* eslint-disable */", "/**", " * The app's data model: every table's documents, "
        "field paths and indexes.", " *", f" * {NOTICE}", " */", "",
        'import type { GenericId } from "convex/values";', "",
        "/** The names of the app's tables. */",
        f"export type TableNames = {_names(model.tables)};", "",
        "/** The names of the system tables (`ctx.db.system`). */",
        f"export type SystemTableNames = {_names(model.system_tables)};", "",
        "/** A document of a table, with its `_id` and `_creationTime`. */",
        "export type Doc<TableName extends TableNames | SystemTableNames> =",
        '  (DataModel & SystemDataModel)[TableName]["document"];', "",
        "/** An id of a document of a table: a string that only that table's ids match. */",
        "export type Id<TableName extends TableNames | SystemTableNames> = "
        "GenericId<TableName>;", "",
        *_tables("DataModel", model.tables, types, "The app's tables."),
        *_tables("SystemDataModel", model.system_tables, types, "The system tables."),
    ]).rstrip() + "\n"
