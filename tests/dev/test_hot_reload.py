"""`reactive-store dev` hot reload on a real server with real files in a temp app folder."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from reactive_store.client import connect
from tests.support import until, write_app

SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "notes": define_table({"text": v.string(), "n": v.float64()}),
})
"""
NOTES = """
from reactive_store import mutation, query, v
from ._lib import LABEL

@query(args={})
async def count(ctx):
    return {"label": LABEL, "n": len(await ctx.db.query("notes").collect())}

@mutation(args={"text": v.string(), "n": v.float64()})
async def add(ctx, text, n):
    return await ctx.db.insert("notes", {"text": text, "n": n})
"""
OTHER = """
from reactive_store import query

LOADS = globals().get("LOADS", 0) + 1

@query(args={})
async def loads(ctx):
    return LOADS
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return write_app(tmp_path / "app", {"schema/__init__.py": SCHEMA,
                                        "functions/notes.py": NOTES,
                                        "functions/_lib.py": 'LABEL = "v1"\n',
                                        "functions/other.py": OTHER})




async def call(http: httpx.AsyncClient, kind: str, path: str, args: Any = None) -> Any:
    """Call over HTTP; values come back in the clean `json` format (int64 as strings)."""
    return (await http.post(f"/api/{kind}", json={"path": path, "args": args or {}})).json()


async def status(http: httpx.AsyncClient) -> Any:
    return (await http.get("/api/dev/status")).json()


async def test_editing_a_query_pushes_the_new_result_without_reconnecting(
    app: Path, serve: Any
) -> None:
    url, _ = await serve(app, dev=True)
    async with connect(url) as client, httpx.AsyncClient(base_url=url) as http:
        updates = client.subscribe("notes:count", {})
        assert await anext(updates) == {"label": "v1", "n": 0}
        (app / "functions" / "_lib.py").write_text('LABEL = "v2"\n')
        assert await asyncio.wait_for(anext(updates), 10) == {"label": "v2", "n": 0}
        assert client._connections == 1, "the socket must stay open across a reload"

        async def reported() -> Any:
            # The new result can reach the socket while the reload still syncs the crons,
            # before the watcher records it in the status.
            return (await status(http))["last"]
        last = await until(reported)
        assert last["changed"] == ["functions/_lib.py"]
        assert sorted(last["reimported"]) == ["functions._lib", "functions.notes"]
        # other.py imports nothing that changed: it was not executed again.
        assert (await call(http, "query", "other:loads"))["value"] == "1"
        await updates.aclose()


async def test_added_and_deleted_function_files(app: Path, serve: Any) -> None:
    url, _ = await serve(app, dev=True)
    async with httpx.AsyncClient(base_url=url) as http:
        (app / "functions" / "extra.py").write_text(
            "from reactive_store import query\n\n@query\nasync def hello(ctx):\n"
            "    return 'hi'\n")

        async def hello() -> Any:
            body = await call(http, "query", "extra:hello")
            return body if body["status"] == "success" else None

        assert (await until(hello))["value"] == "hi"
        assert (await status(http))["last"]["added"] == ["extra:hello"]
        (app / "functions" / "extra.py").unlink()

        async def gone() -> Any:
            body = await call(http, "query", "extra:hello")
            return body if body["status"] == "error" else None

        body = await until(gone)
        assert body["errorMessage"] == "Could not find public function for 'extra:hello'."


async def test_a_broken_edit_keeps_the_last_good_version_until_fixed(
    app: Path, serve: Any
) -> None:
    url, _ = await serve(app, dev=True)
    async with httpx.AsyncClient(base_url=url) as http:
        broken = NOTES + "\ndef broken(:\n"
        (app / "functions" / "notes.py").write_text(broken)

        async def failed() -> Any:
            current = await status(http)
            return current if not current["ok"] else None

        error = (await until(failed))["error"]
        assert error["file"] == "functions/notes.py"
        assert error["line"] == broken.splitlines().index("def broken(:") + 1
        assert "syntax error" in error["message"]
        assert (await call(http, "query", "notes:count"))["value"]["label"] == "v1"
        (app / "functions" / "notes.py").write_text(NOTES.replace("len(", "1 + len("))

        async def fixed() -> Any:
            body = await call(http, "query", "notes:count")
            return body if body["value"]["n"] == "1" else None

        await until(fixed)
        assert (await status(http))["ok"] is True


async def test_schema_changes_index_added_and_refused_push(app: Path, serve: Any) -> None:
    url, _ = await serve(app, dev=True)
    async with httpx.AsyncClient(base_url=url) as http:
        ids = [(await call(http, "mutation", "notes:add", {"text": t, "n": n}))["value"]
               for t, n in [("b", 2.0), ("a", 1.0)]]
        write_app(app, {
            "schema/__init__.py": SCHEMA.replace(
                '"n": v.float64()})', '"n": v.float64()}).index("by_n", ["n"])'),
            "functions/sorted.py": """
                from reactive_store import query

                @query
                async def texts(ctx):
                    return [d["text"] for d in
                            await ctx.db.query("notes").with_index("by_n").collect()]
            """})

        async def indexed() -> Any:
            body = await call(http, "query", "sorted:texts")
            return body if body["status"] == "success" else None

        assert (await until(indexed))["value"] == ["a", "b"]
        (app / "schema" / "__init__.py").write_text(
            SCHEMA.replace('"text": v.string()', '"text": v.literal("a")'))

        async def refused() -> Any:
            current = await status(http)
            return current if not current["ok"] else None

        error = (await until(refused))["error"]
        assert error["kind"] == "SchemaError" and ids[0] in error["message"]
        assert ids[1] not in error["message"]
        # The old schema is still in force and nothing was lost.
        added = await call(http, "mutation", "notes:add", {"text": "c", "n": 3.0})
        assert added["status"] == "success"
        assert (await call(http, "query", "notes:count"))["value"]["n"] == "3"


async def test_in_flight_requests_finish_on_the_code_they_started_with(
    app: Path, serve: Any
) -> None:
    slow = """
        import asyncio
        from reactive_store import query

        @query
        async def version(ctx):
            await asyncio.sleep(0.4)
            return "old"
    """
    write_app(app, {"functions/slow.py": slow})
    url, _ = await serve(app, dev=True)
    async with httpx.AsyncClient(base_url=url) as http:
        pending = asyncio.create_task(call(http, "query", "slow:version"))
        await asyncio.sleep(0.1)
        write_app(app, {"functions/slow.py": slow.replace('"old"', '"new"')})
        assert (await pending)["value"] == "old"

        async def new() -> Any:
            body = await call(http, "query", "slow:version")
            return body if body["value"] == "new" else None

        await until(new)


async def test_a_slow_import_does_not_stall_the_server(app: Path, serve: Any) -> None:
    """Reading, hashing and importing run off the event loop: other requests are served."""
    url, deployment = await serve(app, dev=True)
    deployment.dev.stop()  # reload by hand, once, while measuring the loop
    gaps: list[float] = []

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(0.005)
            now = loop.time()
            gaps.append(now - last)
            last = now

    (app / "functions" / "slow.py").write_text(
        "import time\ntime.sleep(0.8)\nfrom reactive_store import query\n\n"
        "@query(args={})\nasync def ready(ctx):\n    return 'ready'\n")
    task = asyncio.create_task(probe())
    async with httpx.AsyncClient(base_url=url) as http:
        reload = asyncio.create_task(deployment.reload())
        await asyncio.sleep(0.2)
        assert not reload.done(), "the import sleeps 0.8 s: the reload is still running"
        assert (await call(http, "query", "notes:count"))["value"]["label"] == "v1"
        await reload
        assert (await call(http, "query", "slow:ready"))["value"] == "ready"
    task.cancel()
    assert max(gaps) < 0.3, f"the event loop stalled for {max(gaps):.2f} s during a reload"


def test_a_load_error_carries_file_line_and_message(tmp_path: Path) -> None:
    from reactive_store.app.loader import AppLoadError, load_app

    root = write_app(tmp_path / "broken", {"functions/bad.py": "x = 1\n\ndef f(:\n    pass\n",
                                           "functions/raises.py": "x = 1\nraise KeyError('k')\n"})
    with pytest.raises(AppLoadError) as info:
        load_app(root)
    assert info.value.file is not None and info.value.file.endswith("functions/bad.py")
    assert info.value.line == 3 and info.value.message.startswith("syntax error")
    assert str(info.value) == f"{info.value.file}:3: {info.value.message}"
    (root / "functions" / "bad.py").unlink()
    with pytest.raises(AppLoadError) as info:
        load_app(root)
    assert info.value.file is not None and info.value.file.endswith("functions/raises.py")
    assert (info.value.line, info.value.message) == (2, "KeyError: 'k'")


async def test_dev_keeps_the_generated_client_code_in_step(app: Path, serve: Any) -> None:
    url, _ = await serve(app, dev=True)
    generated = app / "functions" / "_generated"

    async def written() -> bool:
        return all((generated / name).is_file()
                   for name in ("api.d.ts", "api.js", "dataModel.d.ts", "api.py"))

    await until(written)
    assert "hello" not in (generated / "api.d.ts").read_text()
    (app / "functions" / "extra.py").write_text(
        "from reactive_store import query\n\n@query\nasync def hello(ctx) -> str:\n"
        "    return 'hi'\n")
    async with httpx.AsyncClient(base_url=url) as http:
        async def reloaded() -> Any:
            return (await status(http))["reloads"] >= 1
        await until(reloaded)
        last = (await status(http))["last"]
    assert last["changed"] == ["functions/extra.py"]  # the generated api.py is not a change
    assert last["generated"] == ["api.d.ts", "api.py"]
    assert ('hello: FunctionReference<"query", "public", Record<string, never>, string>;'
            in (generated / "api.d.ts").read_text())
    assert 'hello: ExtraHelloRef = QueryReference("extra:hello")' in (
        generated / "api.py").read_text()


async def test_app_modules_importing_the_generated_api_see_new_functions(
        app: Path, serve: Any) -> None:
    from reactive_store.cli import main

    (app / "functions" / "caller.py").write_text(
        "from reactive_store import action\nfrom ._generated import api as generated\n\n"
        "@action\nasync def call(ctx) -> int:\n"
        "    return await ctx.run_query(generated.api.other.loads, {})\n")
    assert main(["codegen", "--app", str(app), "--python"]) == 0
    url, _ = await serve(app, dev=True)
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await call(http, "action", "caller:call"))["value"] == "1"
        # One save adds a function and a caller of it through the generated references.
        (app / "functions" / "extra.py").write_text(
            "from reactive_store import query\n\n@query\nasync def hello(ctx) -> str:\n"
            "    return 'hi'\n")
        (app / "functions" / "caller.py").write_text(
            "from reactive_store import action\nfrom ._generated import api as generated\n\n"
            "@action\nasync def call(ctx) -> str:\n"
            "    return await ctx.run_query(generated.api.extra.hello, {})\n")

        async def answered() -> Any:
            return (await call(http, "action", "caller:call")).get("value") == "hi"
        # The first reload imports caller.py with the old api.py; once regenerated, the
        # generated module and its importers are reloaded again.
        await until(answered)

        async def reloaded_twice() -> bool:
            # The answer can come before the second reload is recorded in the status.
            return bool((await status(http))["reloads"] >= 2)
        await until(reloaded_twice)


def test_codegen_can_be_turned_off(app: Path) -> None:
    from reactive_store.deployment import Deployment, Settings
    from reactive_store.dev import DevReloader

    deployment = Deployment(Settings(app_dir=app))
    assert DevReloader(deployment, codegen=False).generate() == []
    assert not (app / "functions" / "_generated").exists()
    assert sorted(DevReloader(deployment).generate()) == [
        "api.d.ts", "api.js", "api.py", "dataModel.d.ts"]


async def test_from_package_import_module_sees_the_reloaded_module(app: Path, serve: Any
                                                                   ) -> None:
    (app / "functions" / "labels.py").write_text(
        "from reactive_store import query\nfrom . import _lib\n\n"
        "@query\nasync def label(ctx) -> str:\n    return _lib.LABEL\n")
    url, _ = await serve(app, dev=True)
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await call(http, "query", "labels:label"))["value"] == "v1"
        (app / "functions" / "_lib.py").write_text('LABEL = "v2"\n')

        async def relabelled() -> Any:
            return (await call(http, "query", "labels:label"))["value"] == "v2"
        # `from . import _lib` reads the package's attribute: the reload must replace it.
        await until(relabelled)
