"""`reactive-store env`: the deployment's environment variables, on the database or a server."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from typing import Any

from reactive_store.cli.serve import settings_from
from reactive_store.deployment import Deployment

Variables = dict[str, str]


def _env_change(ns: argparse.Namespace) -> tuple[str, str | None] | None:
    """What `env` was asked to change, after checking its arguments (None: a read)."""
    from reactive_store.engine.environment import check_name, check_value

    if ns.action == "list":
        if ns.name is not None:
            raise SystemExit("error: `env list` takes no name")
        return None
    if ns.name is None:
        raise SystemExit(f"error: `env {ns.action}` needs a variable NAME")
    name = check_name(ns.name)
    if ns.action == "set":
        value = ns.value
        if value is None or value == "-":
            value = sys.stdin.read().removesuffix("\n")
        return name, check_value(name, value)
    if ns.value is not None:
        raise SystemExit(f"error: `env {ns.action}` takes only a NAME")
    return (name, None) if ns.action == "remove" else None


async def _env_direct(ns: argparse.Namespace, change: tuple[str, str | None] | None
                      ) -> tuple[Variables, Variables]:
    """Apply `change` on the database itself; the variables before and after it."""
    deployment = Deployment(dataclasses.replace(settings_from(ns), run_jobs=False))
    await deployment.start()
    try:
        before = await deployment.environment()
        if change is None:
            return before, before
        await deployment.update_environment([change])
        return before, await deployment.environment()
    finally:
        await deployment.stop()


def _env_http(ns: argparse.Namespace, change: tuple[str, str | None] | None
              ) -> tuple[Variables, Variables]:
    """The same through a running server's admin endpoints."""
    import httpx

    if not ns.admin_key:
        raise SystemExit("error: `env --url` needs the admin key (--admin-key or "
                         "$REACTIVE_STORE_ADMIN_KEY)")
    headers = {"Authorization": f"Convex {ns.admin_key}"}

    def listed(http: httpx.Client) -> Variables:
        body = _checked(http.get("/api/environment_variables"))
        return {v["name"]: v["value"] for v in body["environmentVariables"]}

    with httpx.Client(base_url=ns.url.rstrip("/"), headers=headers, timeout=30) as http:
        before = listed(http)
        if change is None:
            return before, before
        body = {"changes": [{"name": change[0], "value": change[1]}]}
        _checked(http.post("/api/update_environment_variables", json=body))
        return before, listed(http)


def _checked(response: Any) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        raise SystemExit(f"error: the server answered {response.status_code}: "
                         f"{body.get('message', response.text[:200])}")
    return body


def run_env(ns: argparse.Namespace) -> int:
    """`env set|get|list|remove`; values go to stdout only for `get` and `list`."""
    change = _env_change(ns)
    if ns.url:
        before, after = _env_http(ns, change)
    else:
        before, after = asyncio.run(_env_direct(ns, change))
    if ns.action == "list":
        sys.stdout.write("".join(f"{k}={v}\n" for k, v in sorted(after.items())))
    elif ns.action == "get":
        if ns.name not in after:
            print(f"error: environment variable {ns.name} is not set", file=sys.stderr)
            return 1
        sys.stdout.write(after[ns.name] + "\n")
    elif ns.action == "set":
        print(f"set {ns.name}")
    else:
        print(f"removed {ns.name}" if ns.name in before else f"{ns.name} was not set")
    return 0
