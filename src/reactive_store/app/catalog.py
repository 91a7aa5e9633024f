"""The app's function catalog: every public function with its args, returns and docstring,
as JSON (served at /api/functions) and as Markdown (docs/functions.md)."""

from __future__ import annotations

import json
from typing import Any

from reactive_store.app.registry import Registry, Visibility
from reactive_store.schema import Schema


def catalog(functions: Registry, schema: Schema) -> dict[str, Any]:
    """JSON-ready description of the public functions and the schema."""
    public = sorted((f for f in functions if f.visibility is Visibility.PUBLIC),
                    key=lambda f: f.path or "")
    return {"functions": [f.describe() for f in public], "schema": schema.to_json()}


def type_text(validator: dict[str, Any] | None) -> str:
    """A validator as a short TypeScript-like type: `{owner: string, n?: int64}[]`."""
    if validator is None:
        return "any"
    kind = validator.get("type")
    if kind == "object":
        fields = validator["value"]
        inner = ", ".join(f"{name}{'?' if spec['optional'] else ''}: {type_text(spec['fieldType'])}"
                          for name, spec in fields.items())
        return "{" + inner + "}"
    if kind == "array":
        return f"{type_text(validator['value'])}[]"
    if kind == "union":
        return " | ".join(type_text(member) for member in validator["value"])
    if kind == "literal":
        return json.dumps(validator["value"])
    if kind == "id":
        return f"Id<{validator['tableName']}>"
    if kind == "doc":
        return f"Doc<{validator['tableName']}>"
    if kind == "record":
        return f"Record<{type_text(validator['keys'])}, {type_text(validator['values'])}>"
    return str(kind)


def markdown(functions: Registry, schema: Schema, title: str = "Functions") -> str:
    """The catalog as a Markdown page, one section per module."""
    lines = [f"# {title}", "",
             "Generated from the function registry by `reactive-store docs`; the same "
             "description is served as JSON at `GET /api/functions`.", ""]
    current = None
    for entry in catalog(functions, schema)["functions"]:
        module = entry["path"].split(":")[0]
        if module != current:
            lines += [f"## `{module}`", ""]
            current = module
        lines += [f"### `{entry['path']}` ({entry['kind']})", ""]
        lines += [f"- args: `{type_text(entry['args'])}`",
                  f"- returns: `{type_text(entry['returns'])}`", ""]
        if entry["doc"]:
            lines += [entry["doc"], ""]
    return "\n".join(lines).rstrip() + "\n"
