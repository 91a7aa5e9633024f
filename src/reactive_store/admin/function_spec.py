"""The function catalog as `npx convex function-spec` reads it: `_system/cli/modules:apiSpec`
(every function and HTTP route) and `_system/cli/convexUrl:cloudUrl` (the deployment's URL).

An entry is Convex's: `identifier` is `<module>.js:<name>` (Convex names modules by their
bundled file; the CLI strips `.js` when it shows them), `functionType` is `Query`,
`Mutation` or `Action`, `visibility` `{kind: public|internal}`, and `args` / `returns` are
validator JSON given as a value (`{"type": "any"}` when a function declares none). HTTP
routes are `{functionType: "HttpAction", method, path}`.
"""

from __future__ import annotations

from typing import Any

from reactive_store import values
from reactive_store.app.registry import FunctionSpec, Kind, internal_query
from reactive_store.deployment import Deployment
from reactive_store.validators import v

ANY = {"type": "any"}
FUNCTION_TYPES = {Kind.QUERY: "Query", Kind.MUTATION: "Mutation", Kind.ACTION: "Action"}


def identifier(path: str) -> str:
    """`dir/mod:name` -> `dir/mod.js:name`, the module named as Convex names it."""
    module, _, name = path.partition(":")
    return f"{module}.js:{name}"


def entry(path: str, spec: FunctionSpec) -> dict[str, Any]:
    """The function at `path` as Convex describes it. The validators' JSON is decoded to a value (a
    literal int64 is `{"$integer": ...}` in JSON), so it goes out as the same JSON."""
    described = spec.describe()
    return {"identifier": identifier(path),
            "functionType": FUNCTION_TYPES[spec.kind],
            "visibility": {"kind": spec.visibility.value},
            "args": values.decode(described["args"] or ANY),
            "returns": values.decode(described["returns"] or ANY)}


def api_spec(deployment: Deployment) -> list[dict[str, Any]]:
    """Every function of the app by path, then every HTTP route in declared order."""
    app = deployment.engine.app
    out = [entry(path, spec) for path, spec in sorted(app.functions.items(),
                                                      key=lambda item: item[0])]
    for route in app.http.routes if app.http is not None else []:
        out.append({"functionType": "HttpAction", "method": route.method, "path": route.path})
    return out


def functions(deployment: Deployment) -> dict[str, FunctionSpec]:
    @internal_query(args={"componentId": v.optional(v.union(v.string(), v.null()))})
    async def modules(ctx: Any, componentId: str | None = None) -> list[dict[str, Any]]:
        """The functions and HTTP routes of the app (components: only the root exists)."""
        return api_spec(deployment)

    @internal_query(args={})
    async def cloud_url(ctx: Any) -> str | None:
        """The URL clients reach this deployment at (`--public-url`, or the address it
        listens on), null when it listens on every interface and was told no URL."""
        return deployment.engine.config.public_url

    return {"_system/cli/modules:apiSpec": modules,
            "_system/cli/convexUrl:cloudUrl": cloud_url}
