"""Deployment environment variables: `ctx.env`, the per-process cache, and their rules.

Variables are documents of the internal system table `_environment_variables` (`name`,
`value`, index `by_name`), so a change is an ordinary commit: every server process hears it
on its commit stream and refreshes its cache, and a live query that read a variable holds a
read on that variable's `by_name` range, so the change re-runs exactly the queries that read
it. `ctx.env` is a plain (synchronous) mapping, answered from the cache; after a query or
mutation returns, the engine checks each value it handed out against the function's own
transaction (`Environment.verify`, one indexed read per name, recorded in the read set). A
value the cache had wrong (a change the stream has not delivered yet) raises
`StaleEnvironment` and the function runs again with the transaction's values, so what a
function saw is always what its snapshot holds. Actions read the cache as it is.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

from reactive_store.engine.db import DatabaseReader, SystemReader, SystemTableWriter
from reactive_store.engine.system_tables import ENVIRONMENT_VARIABLES
from reactive_store.errors import LimitExceeded, ReactiveStoreError, ValidationError
from reactive_store.storage import TransientConflict

log = logging.getLogger(__name__)

T = TypeVar("T")
Reader = Callable[[Callable[[DatabaseReader], Awaitable[T]]], Awaitable[T]]

# Convex's rules: a letter, then letters, digits and underscores, at most 40 characters;
# values up to 8 KiB; at most 100 variables per deployment.
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
MAX_NAME_CHARS = 40
MAX_VALUE_BYTES = 8 * 1024
MAX_VARIABLES = 100

Changes = list[tuple[str, str | None]]  # (name, value); None removes the variable


def check_name(name: Any) -> str:
    """`name` when it is a valid variable name, else a ValidationError saying why."""
    if not isinstance(name, str):
        raise ValidationError(f"environment variable name must be a string, got {name!r}")
    if not NAME.fullmatch(name):
        shown = name if len(name) <= 60 else name[:60] + "..."
        why = (f"is longer than {MAX_NAME_CHARS} characters" if len(name) > MAX_NAME_CHARS
               else "must start with a letter and hold only letters, digits and underscores")
        raise ValidationError(f"invalid environment variable name {shown!r}: it {why}")
    return name


def check_value(name: str, value: Any) -> str:
    """`value` when it may be stored; the error names the variable, never the value."""
    if not isinstance(value, str):
        raise ValidationError(
            f"environment variable {name}: the value must be a string, got "
            f"{type(value).__name__}")
    size = len(value.encode("utf-8", errors="surrogatepass"))
    if size > MAX_VALUE_BYTES:
        raise ValidationError(f"environment variable {name}: the value is {size} bytes, "
                              f"above the limit of {MAX_VALUE_BYTES} bytes")
    return value


class MissingVariable(ReactiveStoreError, KeyError):
    """`ctx.env["NAME"]` for a variable that is not set (a KeyError, as for a dict)."""

    code = "MissingEnvironmentVariable"

    def __init__(self, name: str) -> None:
        super().__init__(f"environment variable {name!r} is not set; set it with "
                         f"`reactive-store env set {name} VALUE`")
        self.name = name

    def __str__(self) -> str:
        return self.message


class StaleEnvironment(TransientConflict):
    """A function saw a cached value its transaction disagrees with: run it again with
    `values` (the transaction's, None for unset)."""

    def __init__(self, values: dict[str, str | None]) -> None:
        super().__init__("environment variables changed under the function")
        self.values = values


class Environment(Mapping[str, str]):
    """`ctx.env`: the deployment's variables, `ctx.env["NAME"]` or `ctx.env.get("NAME")`.

    `seen` holds every name looked up and the value handed out (None when unset), so the
    engine can check them against the function's transaction; iterating reads them all.
    """

    def __init__(self, values: Mapping[str, str],
                 overrides: Mapping[str, str | None] | None = None) -> None:
        self._values = values  # the cache's dict at the start of the call, never mutated
        self._overrides = dict(overrides or {})
        self.seen: dict[str, str | None] = {}
        self.seen_all = False

    def _lookup(self, name: str) -> str | None:
        if not isinstance(name, str):
            raise TypeError(f"environment variable names are strings, got {name!r}")
        value = self._overrides[name] if name in self._overrides else self._values.get(name)
        self.seen.setdefault(name, value)
        return value

    def __getitem__(self, name: str) -> str:
        value = self._lookup(name)
        if value is None:
            raise MissingVariable(name)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        value = self._lookup(name)
        return default if value is None else value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._lookup(name) is not None

    def _all(self) -> dict[str, str]:
        self.seen_all = True
        merged: dict[str, str | None] = {**self._values, **self._overrides}
        return {k: v for k, v in sorted(merged.items()) if v is not None}

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return f"<ctx.env: {len(self._values)} variables>"  # never the values

    async def verify(self, system: SystemReader) -> None:
        """Read every value handed out in the function's own transaction (recording the
        read); raise StaleEnvironment with the true values when one differs."""
        if self.seen_all:
            actual: dict[str, str | None] = dict(await read_all(system))
            handed_out: dict[str, str | None] = dict(self._all())
            if actual != handed_out:
                raise StaleEnvironment({**{k: None for k in handed_out}, **actual})
            return
        wrong: dict[str, str | None] = {}
        for name, value in self.seen.items():
            doc = await find(system, name)
            now = None if doc is None else doc["value"]
            if now != value:
                wrong[name] = now
        if wrong:
            raise StaleEnvironment(wrong)


async def find(system: SystemReader | SystemTableWriter, name: str) -> dict[str, Any] | None:
    """The variable's document (a read of its `by_name` range), or None."""
    doc: dict[str, Any] | None = await system.query(ENVIRONMENT_VARIABLES).with_index(
        "by_name", lambda q: q.eq("name", name)).unique()
    return doc


async def read_all(system: SystemReader | SystemTableWriter) -> dict[str, str]:
    """Every variable, by name (a scan of the whole `by_name` index)."""
    docs = await system.query(ENVIRONMENT_VARIABLES).with_index("by_name").collect()
    return {doc["name"]: doc["value"] for doc in docs}


async def apply_changes(writer: SystemTableWriter, changes: Changes) -> None:
    """Set and remove variables, all or nothing (they run in one transaction)."""
    seen: set[str] = set()
    for name, value in changes:
        check_name(name)
        if value is not None:
            check_value(name, value)
        if name in seen:
            raise ValidationError(f"environment variable {name} is changed twice in one update")
        seen.add(name)
    added = False
    for name, value in changes:
        doc = await find(writer, name)
        if value is None:
            if doc is not None:
                await writer.delete(doc["_id"])
        elif doc is None:
            await writer.insert(ENVIRONMENT_VARIABLES, {"name": name, "value": value})
            added = True
        elif doc["value"] != value:
            await writer.patch(doc["_id"], {"value": value}, current=doc)
    if added:
        count = len(await read_all(writer))
        if count > MAX_VARIABLES:
            raise LimitExceeded(f"a deployment holds at most {MAX_VARIABLES} environment "
                                f"variables; this update would make {count}")


class EnvironmentCache:
    """This process's copy of the variables, refreshed after every commit that wrote them.

    `values` is replaced whole, never changed in place, so a function's `ctx.env` keeps one
    consistent view for its whole run. Refreshes run one at a time; a request made while
    one runs makes it run once more, so the last refresh starts after the last commit heard.
    """

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.refreshes = 0  # completed refreshes, for tests
        self._again = False
        self._task: asyncio.Task[None] | None = None
        self._reader: Reader[Any] | None = None

    def view(self, overrides: Mapping[str, str | None] | None = None) -> Environment:
        return Environment(self.values, overrides)

    async def load(self, read: Reader[Any]) -> None:
        """Read every variable now (at start); later commits call `refresh_soon`."""
        self._reader = read

        async def body(db: DatabaseReader) -> dict[str, str]:
            return await read_all(SystemReader(db.reads, internal=True))

        self.values = await read(body)
        self.refreshes += 1

    def refresh_soon(self) -> None:
        """A commit wrote variables: read them again (coalesced, in the background)."""
        if self._reader is None:
            return
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.create_task(self._refresh())

    async def _refresh(self) -> None:
        assert self._reader is not None
        delay = 0.05
        self._again = True
        while self._again:
            self._again = False
            try:
                await self.load(self._reader)
                delay = 0.05
            except Exception:
                log.exception("reading environment variables failed; retrying")
                self._again = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def settled(self) -> None:
        """Wait for a refresh in flight (tests)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
