"""The official Convex WebSocket clients against real `reactive-store serve` processes.

- npm `ConvexClient` (convex 1.48.0, `convex/browser` under Node, which bundles its own
  WebSocket), driven through tests/js/sync_client.mjs: one Node process per client, commands on
  stdin, one JSON line per event on stdout (protocol.md §4.3 and §6);
- PyPI `convex` `ConvexClient`, driven through pypi_sync_client.py in a subprocess, because its
  blocking `next()` holds the GIL (protocol.md §4.4);
- our own asyncio client `reactive_store.client` as a third client where convenient.

Writes from "another client" go over HTTP (`/api/mutation`) from the pytest process. The
restart tests SIGKILL a server and start a new one on the same port and Postgres schema; the
clients must reconnect by themselves, resume their subscriptions and apply every mutation
exactly once. Values in events are Convex-encoded JSON (`convexToJson` / `convex_to_json`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from reactive_store.client import connect
from tests.e2e.clients import (
    RECONNECT_WAIT,
    WAIT,
    TcpProxy,
    http_call,
    i64,
    is_event,
    node_client,
    notes,
    pypi_client,
    unique,
)
from tests.e2e.servers import ServeApp
from tests.support import write_app

pytestmark = pytest.mark.e2e

SYNC_APP = {
    "schema/__init__.py": """
        from reactive_store import define_schema, define_table, v

        schema = define_schema({
            "notes": define_table({"list": v.string(), "body": v.string()})
                .index("by_list", ["list"]),
        })
    """,
    "functions/notes.py": """
        from reactive_store import ConvexError, action, mutation, query, v

        async def _notes(ctx, list):
            return await ctx.db.query("notes").with_index(
                "by_list", lambda q: q.eq("list", list)).collect()

        @query(args={"list": v.string()})
        async def list(ctx, list):
            return [note["body"] for note in await _notes(ctx, list)]

        @query(args={"list": v.string()})
        async def docs(ctx, list):
            return [{"id": note["_id"], "body": note["body"]} for note in await _notes(ctx, list)]

        @query(args={"list": v.string()})
        async def count(ctx, list):
            return float(len(await _notes(ctx, list)))

        @query(args={"list": v.string()})
        async def strict(ctx, list):
            bodies = [note["body"] for note in await _notes(ctx, list)]
            for body in bodies:
                if body.startswith("bad"):
                    raise ConvexError({"bad": body})
            return bodies

        @mutation(args={"list": v.string(), "body": v.string()})
        async def add(ctx, list, body):
            return await ctx.db.insert("notes", {"list": list, "body": body})

        @mutation(args={"list": v.string(), "body": v.string()})
        async def remove(ctx, list, body):
            for note in await _notes(ctx, list):
                if note["body"] == body:
                    await ctx.db.delete(note["_id"])

        @mutation(args={"code": v.string()})
        async def fail(ctx, code):
            raise ConvexError({"code": code})

        @action(args={"value": v.any()})
        async def echo(ctx, value):
            return value
    """,
}



# --- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sync_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_app(tmp_path_factory.mktemp("sync-app"), SYNC_APP)


@pytest.fixture(scope="module")
async def sync_url(module_serve_app: ServeApp, sync_app: Path) -> str:
    """One server shared by the tests that do not restart it (each uses its own list)."""
    return await module_serve_app(sync_app)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path


# --- npm ConvexClient --------------------------------------------------------------------------

async def test_npm_subscription_sees_other_writers_and_its_own(
    sync_url: str, js_client_dir: Path, log_dir: Path,
) -> None:
    name = unique("npm")
    async with node_client(sync_url, js_client_dir, log_dir) as node:
        await node.subscribe("s", "notes:list", {"list": name})
        seen = await node.update("s", [])

        # A commit by another client (HTTP) is pushed to the subscription.
        await http_call(sync_url, "mutation", "notes:add", {"list": name, "body": "http"})
        seen = await node.update("s", ["http"], after=seen)

        # Read-your-writes: by the time a mutation's promise resolves, the subscription
        # has already been called with a result that includes the write.
        expected = ["http"]
        for i in range(4):
            expected.append(f"own{i}")
            index, result = await node.call("mutation", f"m{i}", "notes:add",
                                            {"list": name, "body": f"own{i}"})
            assert result["ok"] and isinstance(result["value"], str), result
            assert node.last_update("s", index) == expected, node.describe()
            assert result["current"]["s"] == expected, result

        # A ConvexError thrown by a mutation reaches the caller with its data.
        _, failed = await node.call("mutation", "bad", "notes:fail", {"code": "nope"})
        assert not failed["ok"] and failed["name"] == "ConvexError", failed
        assert failed["data"] == {"code": "nope"}, failed

        # Actions and one-shot queries over the socket; int64 keeps its type.
        value = {"n": i64(-5), "s": "x", "l": [1.5, None, True]}
        _, echoed = await node.call("action", "act", "notes:echo", {"value": value})
        assert echoed["ok"] and echoed["value"] == value, echoed
        _, queried = await node.call("query", "q", "notes:list", {"list": name})
        assert queried["ok"] and queried["value"] == expected, queried

        # A concurrent writer's commits keep arriving after all that.
        await http_call(sync_url, "mutation", "notes:add", {"list": name, "body": "last"})
        await node.update("s", [*expected, "last"], after=index)
        await node.close()
    stamps = node.timestamps()
    assert stamps == sorted(stamps), f"timestamps went backwards: {stamps}"


async def test_npm_pipelined_mutations_with_concurrent_writers(
    sync_url: str, js_client_dir: Path, log_dir: Path,
) -> None:
    """Many mutations in flight at once, on two lists, while HTTP writes to both lists too."""
    lists = [unique("burst"), unique("burst")]
    async with node_client(sync_url, js_client_dir, log_dir) as node:
        for i, name in enumerate(lists):
            await node.subscribe(f"s{i}", "notes:list", {"list": name})
            await node.update(f"s{i}", [])
        for n in range(12):
            await node.send(op="mutation", id=f"m{n}", path="notes:add",
                            args={"list": lists[n % 2], "body": f"m{n}"})
        await asyncio.gather(*(
            http_call(sync_url, "mutation", "notes:add", {"list": lists[n % 2], "body": f"h{n}"})
            for n in range(6)))
        for n in range(12):
            index, result = await node.result(f"m{n}")
            assert result["ok"], result
            # Read-your-writes for each of them, in whatever Transition it landed.
            assert f"m{n}" in result["current"][f"s{n % 2}"], result
            assert f"m{n}" in node.last_update(f"s{n % 2}", index), node.describe()
        # The client's mutations ran one at a time, in the order it sent them.
        for i, name in enumerate(lists):
            final = await notes(sync_url, name)
            own = [body for body in final if body.startswith("m")]
            assert own == [f"m{n}" for n in range(i, 12, 2)], final
            assert sorted(final) == sorted([*own, *(f"h{n}" for n in range(i, 6, 2))]), final
            await node.wait(is_event("update", id=f"s{i}", value=final))
        await node.close()
    stamps = node.timestamps()
    assert stamps == sorted(stamps), f"timestamps went backwards: {stamps}"


async def test_npm_query_errors_reach_the_error_callback(
    sync_url: str, js_client_dir: Path, log_dir: Path,
) -> None:
    name = unique("errors")
    async with node_client(sync_url, js_client_dir, log_dir) as node:
        await node.subscribe("missing", "notes:nope", {})
        await node.subscribe("strict", "notes:strict", {"list": name})
        await node.subscribe("list", "notes:list", {"list": name})

        _, missing = await node.error("missing")
        assert "Could not find public function for 'notes:nope'" in missing["message"], missing
        assert "data" not in missing, missing
        await node.update("strict", [])
        mark = await node.update("list", [])

        # The strict query now throws a ConvexError; the other subscription keeps updating.
        await http_call(sync_url, "mutation", "notes:add", {"list": name, "body": "bad1"})
        _, failed = await node.error("strict", after=mark)
        assert failed["name"] == "ConvexError" and failed["data"] == {"bad": "bad1"}, failed
        mark = await node.update("list", ["bad1"], after=mark)
        await http_call(sync_url, "mutation", "notes:add", {"list": name, "body": "good"})
        mark = await node.update("list", ["bad1", "good"], after=mark)

        # Once the bad note is gone, the strict query has a value again.
        await http_call(sync_url, "mutation", "notes:remove", {"list": name, "body": "bad1"})
        await node.update("strict", ["good"], after=mark)
        await node.update("list", ["good"], after=mark)

        # Calling a function that does not exist fails the call, not the client.
        _, result = await node.call("mutation", "nope", "notes:nope", {})
        assert not result["ok"] and result["name"] == "Error", result
        assert "Could not find public function for 'notes:nope'" in result["message"], result
        assert result["current"]["list"] == ["good"], result
        await node.close()


async def test_npm_client_reconnects_after_server_restart(
    serve_app: ServeApp, sync_app: Path, js_client_dir: Path, log_dir: Path,
) -> None:
    """SIGKILL the server under a subscribed client, start a new one on the same port and schema.

    The npm client resumes its subscription by itself and its mutations (one racing the kill,
    one sent while the server is down) are applied exactly once; the PyPI client, subscribed
    through the same restart, comes back too (it re-adds its query under the `.js` path).
    """
    url = await serve_app(sync_app)
    server = serve_app.server(url)
    name = unique("restart")
    plan = [{"op": "subscribe", "path": "notes:count", "args": {"list": name}, "until": 4}]
    async with node_client(url, js_client_dir, log_dir) as node, \
            pypi_client(url, plan, log_dir) as pypi:
        await node.subscribe("s", "notes:list", {"list": name})
        await node.update("s", [])
        mark, result = await node.call("mutation", "before", "notes:add",
                                       {"list": name, "body": "before"})
        assert result["ok"], result
        await pypi.wait(is_event("update", value=1))

        # A mutation racing the kill: it may or may not have committed before the server died.
        await node.send(op="mutation", id="race", path="notes:add",
                        args={"list": name, "body": "race"})
        await server.kill()
        down, _ = await node.wait(is_event("connection", connected=False), after=mark)
        await node.send(op="mutation", id="during", path="notes:add",
                        args={"list": name, "body": "during"})
        await asyncio.sleep(0.3)  # let the client fail a reconnect attempt or two
        await server.start(port=server.port)

        for call_id in ("race", "during"):
            _, result = await node.result(call_id, timeout=RECONNECT_WAIT)
            assert result["ok"], result
            assert call_id in result["current"]["s"], result  # read-your-writes
        _, reconnected = await node.wait(is_event("connection", connected=True), after=down)
        assert reconnected["connectionCount"] >= 2, reconnected
        expected = sorted(["before", "race", "during"])
        assert sorted(await notes(url, name)) == expected

        # The resumed subscription is live: a commit by another client is pushed to it.
        await http_call(url, "mutation", "notes:add", {"list": name, "body": "after"})
        await node.wait(lambda e: is_event("update", id="s")(e)
                        and sorted(e["value"]) == sorted([*expected, "after"]))
        await pypi.wait(is_event("update", value=4), timeout=RECONNECT_WAIT)
        await pypi.finish()
        await node.close()
    stamps = node.timestamps()
    assert stamps == sorted(stamps), f"timestamps went backwards across the restart: {stamps}"
    counts = pypi.updates(0)
    assert counts == sorted(counts) and counts[-1] == 4, pypi.describe()


async def test_npm_mutation_replayed_after_lost_reply_runs_once(
    serve_app: ServeApp, sync_app: Path, js_client_dir: Path, log_dir: Path,
) -> None:
    """The server commits a mutation, its reply is lost, the server dies and comes back.

    The client re-sends the mutation on its new connection (same session id and request id);
    the new server process must answer with the recorded result instead of running it again.
    """
    url = await serve_app(sync_app)
    server = serve_app.server(url)
    proxy = TcpProxy(server.port)
    await proxy.start()
    name = unique("replay")
    try:
        async with node_client(proxy.url, js_client_dir, log_dir) as node:
            await node.subscribe("s", "notes:docs", {"list": name})
            await node.update("s", [])
            proxy.hold_replies()
            await node.send(op="mutation", id="once", path="notes:add",
                            args={"list": name, "body": "once"})
            deadline = time.monotonic() + WAIT
            while await notes(url, name) != ["once"]:  # committed; the client heard nothing
                assert time.monotonic() < deadline, "the mutation never committed"
                await asyncio.sleep(0.05)
            assert not any(is_event("result", id="once")(e) for e in node.events)

            await server.restart()
            _, result = await node.result("once", timeout=RECONNECT_WAIT)
            docs = await http_call(url, "query", "notes:docs", {"list": name})
            assert [d["body"] for d in docs] == ["once"], f"the mutation ran twice: {docs}"
            assert result["ok"] and result["value"] == docs[0]["id"], (result, docs)
            assert result["current"]["s"] == docs, result
            await node.close()
    finally:
        await proxy.close()
    stamps = node.timestamps()
    assert stamps == sorted(stamps), f"timestamps went backwards across the restart: {stamps}"


# --- PyPI ConvexClient -------------------------------------------------------------------------

async def test_pypi_client_subscribes_and_calls_over_the_socket(
    sync_url: str, log_dir: Path,
) -> None:
    name = unique("pypi")
    final = ["a", "b", "c"]
    plan: list[dict[str, Any]] = [
        {"op": "mutation", "path": "notes:add", "args": {"list": name, "body": "a"}},
        {"op": "query", "path": "notes:list", "args": {"list": name}},
        {"op": "mutation", "path": "notes:fail", "args": {"code": "py"}},
        {"op": "action", "path": "notes:echo", "args": {"value": {"n": i64(7)}}},
        {"op": "query", "path": "notes:nope", "args": {}},
        {"op": "subscribe", "path": "notes:list", "args": {"list": name}, "until": final},
        {"op": "query", "path": "notes:list", "args": {"list": name}},
        {"op": "mutation", "path": "notes:add", "args": {"list": name, "body": "bad!"}},
        {"op": "subscribe", "path": "notes:strict", "args": {"list": name}, "max": 1},
    ]
    async with pypi_client(sync_url, plan, log_dir) as pypi:
        _, added = await pypi.wait(is_event("result", step=0))
        assert added["ok"] and isinstance(added["value"], str), added
        _, listed = await pypi.wait(is_event("result", step=1))
        assert listed == {"event": "result", "step": 1, "ok": True, "value": ["a"]}
        _, failed = await pypi.wait(is_event("result", step=2))
        assert not failed["ok"] and failed["name"] == "ConvexError", failed
        assert failed["data"] == {"code": "py"}, failed
        _, echoed = await pypi.wait(is_event("result", step=3))
        assert echoed["ok"] and echoed["value"] == {"n": i64(7)}, echoed
        _, missing = await pypi.wait(is_event("result", step=4))
        assert not missing["ok"], missing
        assert "Could not find public function for 'notes:nope'" in missing["message"], missing

        # Writes by another client while the PyPI client blocks in next().
        index, _ = await pypi.wait(is_event("update", step=5, value=["a"]))
        await http_call(sync_url, "mutation", "notes:add", {"list": name, "body": "b"})
        index, _ = await pypi.wait(is_event("update", step=5, value=["a", "b"]), after=index)
        await http_call(sync_url, "mutation", "notes:add", {"list": name, "body": "c"})
        await pypi.wait(is_event("update", step=5, value=final), after=index)
        _, again = await pypi.wait(is_event("result", step=6))
        assert again["ok"] and again["value"] == final, again
        # A query's ConvexError reaches the subscription iterator, data included.
        _, thrown = await pypi.wait(is_event("error", step=8))
        assert thrown["name"] == "ConvexError" and thrown["data"] == {"bad": "bad!"}, thrown
        await pypi.finish()
    # It yields on every Transition, so values may repeat, but they only move forward.
    seen = pypi.updates(5)
    assert [v for i, v in enumerate(seen) if i == 0 or seen[i - 1] != v] == [
        ["a"], ["a", "b"], final], seen


# --- two server processes, one deployment ------------------------------------------------------

async def test_two_server_processes_on_one_schema(
    serve_app: ServeApp, sync_app: Path, js_client_dir: Path, log_dir: Path,
) -> None:
    url_a = await serve_app(sync_app)
    url_b = await serve_app(sync_app, namespace=serve_app.server(url_a).namespace)
    name = unique("two")
    async with node_client(url_a, js_client_dir, log_dir) as node, connect(url_b) as ours:
        seen_b: list[Any] = []

        async def watch_b() -> None:
            async for value in ours.subscribe("notes:list", {"list": name}):
                seen_b.append(value)

        watcher = asyncio.create_task(watch_b())
        try:
            await node.subscribe("s", "notes:list", {"list": name})
            mark = await node.update("s", [])

            # A commit through process B is pushed to a subscriber on process A.
            await http_call(url_b, "mutation", "notes:add", {"list": name, "body": "via-b"})
            mark = await node.update("s", ["via-b"], after=mark)

            # Read-your-writes on A: the mutation resolves after A's subscription shows it.
            index, result = await node.call("mutation", "a1", "notes:add",
                                            {"list": name, "body": "via-a"})
            assert result["ok"], result
            assert node.last_update("s", index) == ["via-b", "via-a"], node.describe()

            # A's commit is pushed to our own client's subscription on B.
            deadline = time.monotonic() + WAIT
            while ["via-b", "via-a"] not in seen_b:
                assert time.monotonic() < deadline, f"B never pushed A's commit: {seen_b}"
                await asyncio.sleep(0.02)

            # Read-your-writes on B, for our own client.
            await ours.mutation("notes:add", {"list": name, "body": "ours"})
            await asyncio.sleep(0)
            assert seen_b[-1] == ["via-b", "via-a", "ours"], seen_b
            await node.update("s", ["via-b", "via-a", "ours"], after=index)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await node.close()
    assert await notes(url_a, name) == await notes(url_b, name) == ["via-b", "via-a", "ours"]
