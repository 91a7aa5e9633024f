"""Python for `reactive_store.client`: `api.py`, typed references to every function.

    from functions._generated.api import api
    messages = await client.query(api.chatMessages.list_by_session, {"sessionId": sid})

`api.module.function` (function names in snake_case) is a `QueryReference[Args, Result]`
(or Mutation-, ActionReference) whose `Args` is a TypedDict of the arguments and `Result`
the result type, so mypy checks each call's arguments and infers what it returns. Objects
become TypedDicts named after where they appear (`ChatMessagesAppendArgs`), identical ones
share one; documents are `<Table>Doc`, ids `Id[Literal["table"]]`.
"""

from __future__ import annotations

import json
import keyword
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

_REFERENCE = {"query": "QueryReference", "mutation": "MutationReference",
              "action": "ActionReference"}


def pascal(text: str) -> str:
    """`chat_sessions` / `chatMessages` / `list-all` -> `ChatSessions` / `ChatMessages` /
    `ListAll`."""
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[^A-Za-z0-9]+", text) if w)


def identifier(text: str) -> str:
    """A usable attribute name: invalid characters become `_`, keywords get a `_` after."""
    name = re.sub(r"\W", "_", text)
    name = f"_{name}" if name[:1].isdigit() else name
    return f"{name}_" if keyword.iskeyword(name) else name


def snake(name: str) -> str:
    """`listBySession` -> `list_by_session`, `getHTTPStatus` -> `get_http_status`."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return identifier(spaced.lower())


class TypeWriter:
    """Catalog JSON validators -> Python types; objects become TypedDict definitions."""

    def __init__(self, tables: set[str]) -> None:
        self.tables = tables
        self.definitions: list[str] = []
        self._by_body: dict[str, str] = {}
        self._names: set[str] = set()

    def type(self, spec: dict[str, Any] | None, hint: str) -> str:
        if spec is None:
            return "Any"
        kind = spec["type"]
        simple = {"string": "str", "number": "float", "bigint": "int", "boolean": "bool",
                  "null": "None", "bytes": "bytes", "any": "Any"}
        if kind in simple:
            return simple[kind]
        if kind == "id":
            return f"Id[Literal[{json.dumps(spec['tableName'])}]]"
        if kind == "doc":
            table = spec["tableName"]
            return f"{pascal(table)}Doc" if table in self.tables else "dict[str, Any]"
        if kind == "literal":
            return literal(spec["value"])
        if kind == "array":
            return f"list[{self.type(spec['value'], hint + 'Item')}]"
        if kind == "record":
            return (f"dict[{self.type(spec['keys'], hint + 'Key')}, "
                    f"{self.type(spec['values'], hint + 'Value')}]")
        if kind == "union":
            return self.union(spec["value"], hint)
        if kind == "object":
            return self.typed_dict(hint, spec["value"])
        raise ValueError(f"no Python type for validator {spec!r}")

    def union(self, members: list[dict[str, Any]], hint: str) -> str:
        """`X | Y`, with the literals among the members merged into one `Literal[...]`."""
        literals = [_literal_value(m["value"]) for m in members if m["type"] == "literal"
                    and not isinstance(decode(m["value"]), float)]
        types: list[str] = []
        for i, member in enumerate(members):
            if member["type"] == "literal" and literals and not isinstance(
                    decode(member["value"]), float):
                types.append(f"Literal[{', '.join(literals)}]")
            else:
                types.append(self.type(member, f"{hint}{i}"))
        return " | ".join(dict.fromkeys(types))

    def alias(self, name: str, target: str) -> str:
        """A module-level `name: TypeAlias = target`; returns the name."""
        while name in self._names:
            name += "_"
        self._names.add(name)
        self.definitions.append(f"{name}: TypeAlias = {target}")
        return name

    def typed_dict(self, name: str, fields: dict[str, Any],
                   extra: tuple[tuple[str, str], ...] = ()) -> str:
        """The TypedDict for these fields: an existing identical one, or a new `name`."""
        if not fields and not extra:
            name = "NoArgs"
        items = list(extra)
        for field, spec in fields.items():
            inner = self.type(spec["fieldType"], name + pascal(field))
            items.append((field, f"NotRequired[{inner}]" if spec["optional"] else inner))
        body = repr(items)
        if body in self._by_body:
            return self._by_body[body]
        while name in self._names:
            name += "_"
        self._names.add(name)
        self._by_body[body] = name
        self.definitions.append(typed_dict_source(name, items))
        return name


# Names the generated annotations use: a class-syntax TypedDict with a key of one of these
# names would shadow it for the annotations after it.
_USED_NAMES = frozenset({"list", "dict", "str", "int", "float", "bool", "bytes", "None", "Any",
                         "Literal", "NotRequired", "Id", "TypedDict", "TypeAlias"})


def typed_dict_source(name: str, items: list[tuple[str, str]]) -> str:
    """A class-syntax TypedDict, or the functional form when a key is not an identifier (or
    would shadow a name the annotations use)."""
    if all(k.isidentifier() and not keyword.iskeyword(k) and not k.startswith("__")
           and k not in _USED_NAMES for k, _ in items):
        body = [f"    {k}: {t}" for k, t in items] or ["    pass"]
        return "\n".join([f"class {name}(TypedDict):", *body])
    pairs = [f"    {json.dumps(k)}: {t}," for k, t in items]
    return "\n".join([f'{name} = TypedDict("{name}", {{', *pairs, "})"])


def _literal_value(encoded: Any) -> str:
    value = decode(encoded)
    return repr(value) if isinstance(value, bool | int) else json.dumps(value)


def literal(encoded: Any) -> str:
    """`Literal["low"]`, `Literal[5]`, `Literal[True]`; a float literal is just `float`."""
    return "float" if isinstance(decode(encoded), float) else f"Literal[{_literal_value(encoded)}]"


def _document(table: TableEntry, types: TypeWriter) -> str:
    name = f"{pascal(table.name)}Doc"
    system = (("_id", f"Id[Literal[{json.dumps(table.name)}]]"), ("_creationTime", "float"))
    document = table.document
    members = document["value"] if document["type"] == "union" else [document]
    if len(members) == 1 and members[0]["type"] == "object":
        types.typed_dict(name, members[0]["value"], extra=system)
        return name
    names = [types.typed_dict(f"{name}{i}", m["value"], extra=system)
             for i, m in enumerate(members) if m["type"] == "object"]
    return types.alias(name, " | ".join(names) or "dict[str, Any]")


def _namespace(node: Namespace, types: TypeWriter, prefix: str, classes: list[str]) -> str:
    """Define the class of one namespace (children first); return its name."""
    attributes = []
    for name in sorted(node.children):
        child = _namespace(node.children[name], types, prefix + pascal(name), classes)
        attributes.append(f"    {identifier(name)} = {child}()")
    taken = {identifier(n) for n in node.children}
    for name in sorted(node.functions):
        entry = node.functions[name]
        attribute = snake(name) if snake(name) not in taken else identifier(name)
        taken.add(attribute)
        attributes += _reference(entry, attribute, types)
    classes.append("\n".join([f"class {prefix}:", *(attributes or ["    pass"])]))
    return prefix


def _reference(entry: FunctionEntry, attribute: str, types: TypeWriter) -> list[str]:
    # The reference's type is a module-level alias: inside the namespace class an attribute
    # such as `list` would shadow the builtin for the annotations after it.
    base = pascal("_".join([*entry.module, entry.name]))
    args = "dict[str, Any]" if entry.args is None else types.type(entry.args, base + "Args")
    result = types.type(entry.returns, base + "Result")
    reference = _REFERENCE[entry.kind]
    alias = types.alias(base + "Ref", f"{reference}[[{args}], {result}]")
    lines = [f"    {attribute}: {alias} = {reference}({json.dumps(entry.path)})"]
    if entry.doc:
        text = entry.doc.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').splitlines()
        indented = [text[0], *(f"    {line}" if line else "" for line in text[1:])]
        lines.append('    """' + "\n".join(indented) + '"""')
    return lines


def python_files(model: AppModel) -> dict[str, str]:
    """`api.py` for `model`."""
    types = TypeWriter({t.name for t in (*model.tables, *model.system_tables)})
    for table in (*model.tables, *model.system_tables):
        _document(table, types)
    classes: list[str] = []
    _namespace(model.namespace(PUBLIC), types, "_Api", classes)
    _namespace(model.namespace(INTERNAL), types, "_Internal", classes)
    body = "\n\n\n".join([*types.definitions, *classes])
    tail = ["api = _Api()", '"""The public functions: `api.module.function`."""', "",
            "internal = _Internal()",
            '"""The internal functions (callable with the admin key and from functions)."""']
    return {"api.py": "\n".join([*_head(body), "", "", body, "", "", *tail]) + "\n"}


def _head(body: str) -> list[str]:
    typing_names = [n for n in ("Any", "Literal", "NotRequired", "TypeAlias", "TypedDict")
                    if re.search(rf"\b{n}\b", body)]
    references = [n for n in ("ActionReference", "MutationReference", "QueryReference")
                  if n in body]
    imports = [*([f"from typing import {', '.join(typing_names)}", ""] if typing_names else []),
               *(["from reactive_store import Id"] if "Id[" in body else []),
               *([f"from reactive_store.client import {', '.join(references)}"]
                 if references else [])]
    return ['"""Typed references to the functions of the app, for `reactive_store.client`:',
            "", "    messages = await client.query(api.chatMessages.list_by_session, {...})",
            "", f"{NOTICE}", '"""', "", "# ruff: noqa", "", "from __future__ import annotations",
            "", *imports]
