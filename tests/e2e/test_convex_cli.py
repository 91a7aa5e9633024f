"""The official Convex CLI (`npx convex`, npm `convex` in tests/js) against a real
`reactive-store serve` (and `dev`) process on real Postgres, pointed at it the self-hosted
way: CONVEX_SELF_HOSTED_URL and CONVEX_SELF_HOSTED_ADMIN_KEY.

`run`, `data`, `env`, `logs` and `function-spec` work and print what they print for Convex;
`deploy`, `dev` and `run --inline-query` fail at once with our message; a wrong or missing
admin key ends in the CLI's own auth error. Every CLI process has a timeout and is killed
by its PID. CI=1 keeps the CLI from reporting errors to its telemetry service.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reactive_store.server.unsupported import INLINE_QUERY, PUSH
from tests.e2e.clients import http_call
from tests.e2e.servers import ServeApp
from tests.support import write_app

pytestmark = pytest.mark.e2e

ADMIN_KEY = "e2e-convex-cli-admin-key"
CLI_TIMEOUT = 60.0
APP = {
    "schema/__init__.py": """
        from reactive_store import define_schema, define_table, v
        schema = define_schema({
            "notes": define_table({"body": v.string(), "rank": v.int64()}),
            "tags": define_table({"name": v.string()}),
        })
    """,
    "functions/notes.py": """
        from reactive_store import mutation, query, v

        @mutation(args={"body": v.string(), "rank": v.number()})  # the CLI sends numbers
        async def add(ctx, body, rank):
            print("adding", body)
            return await ctx.db.insert("notes", {"body": body, "rank": int(rank)})

        @query(args={})
        async def bodies(ctx):
            return [n["body"] for n in await ctx.db.query("notes").collect()]

        @query(args={"name": v.string()})
        async def env(ctx, name):
            return ctx.env.get(name)
    """,
}


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    """`npx convex` in a project folder of its own, aimed at one server."""

    project: Path
    url: str
    key: str | None = ADMIN_KEY

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("CONVEX_") and k not in ("AI_AGENT", "CLAUDECODE")}
        env.update(CI="1", CONVEX_SELF_HOSTED_URL=self.url, NO_COLOR="1")
        if self.key is not None:
            env["CONVEX_SELF_HOSTED_ADMIN_KEY"] = self.key
        return env

    async def spawn(self, *args: str) -> asyncio.subprocess.Process:
        # What `npx convex` runs, started directly so that its PID is the CLI's own (npx
        # would sit in between, and killing it would leave the CLI running).
        return await asyncio.create_subprocess_exec(
            self.project / "node_modules" / ".bin" / "convex", *args, cwd=self.project,
            env=self.env(),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)

    async def __call__(self, *args: str, timeout: float = CLI_TIMEOUT) -> Result:
        proc = await self.spawn(*args)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
            pytest.fail(f"`npx convex {' '.join(args)}` ran past {timeout:g} s:\n"
                        f"{out.decode()}\n{err.decode()}", pytrace=False)
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())


def project_dir(root: Path, js_dir: Path) -> Path:
    """A folder the CLI can run in: a package.json naming `convex`, tests/js's node_modules."""
    root.mkdir(parents=True, exist_ok=True)
    pinned = json.loads((js_dir / "package.json").read_text())["dependencies"]["convex"]
    (root / "package.json").write_text(json.dumps(
        {"name": "cli-e2e", "private": True, "dependencies": {"convex": pinned}}))
    (root / "node_modules").symlink_to(js_dir / "node_modules")
    return root


@pytest.fixture(scope="module")
async def server(module_serve_app: ServeApp, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REACTIVE_STORE_ADMIN_KEY", ADMIN_KEY)  # the server inherits it
        url = await module_serve_app(write_app(tmp_path_factory.mktemp("app"), APP))
    yield url


@pytest.fixture
def cli(server: str, js_client_dir: Path, tmp_path: Path) -> Cli:
    return Cli(project_dir(tmp_path / "project", js_client_dir), server)


async def add(url: str, body: str, rank: int) -> str:
    doc_id: str = await http_call(url, "mutation", "notes:add",
                                  {"body": body, "rank": float(rank)})
    return doc_id


async def test_run_calls_a_function_prints_its_result_and_logs(cli: Cli) -> None:
    added = await cli("run", "notes:add", '{"body": "from the cli", "rank": 7}')
    assert added.code == 0, added.err
    doc_id = json.loads(added.out)
    assert isinstance(doc_id, str)
    assert "[CONVEX ?(notes:add)] [LOG] adding from the cli" in added.err  # `?`: /api/function
    listed = await cli("run", "notes:bodies")
    assert listed.code == 0 and "from the cli" in json.loads(listed.out)


async def read_until(stream: asyncio.StreamReader, text: str, timeout: float) -> str:
    """What `stream` prints until a line holding `text` (failing after `timeout`)."""
    seen = ""
    async with asyncio.timeout(timeout):
        while text not in seen:
            line = (await stream.readline()).decode()
            assert line, f"the CLI ended before printing {text!r}:\n{seen}"
            seen += line
    return seen


async def test_run_watch_prints_the_query_again_after_a_change(cli: Cli, server: str
                                                               ) -> None:
    proc = await cli.spawn("run", "notes:bodies", "--watch")
    assert proc.stdout is not None and proc.stderr is not None
    try:
        await read_until(proc.stderr, "Watching query notes:bodies", 30)
        await read_until(proc.stdout, "]", 30)  # the first result, printed whole
        marker = uuid.uuid4().hex[:8]
        await add(server, marker, 3)
        await read_until(proc.stdout, marker, 30)
    finally:
        proc.kill()  # by its PID
        await proc.wait()


async def test_run_of_a_missing_function_lists_the_functions_there_are(cli: Cli) -> None:
    result = await cli("run", "notes:nope")
    assert result.code == 1
    assert "Could not find function for 'notes:nope'." in result.err
    assert "Available functions:" in result.err
    assert all(f"notes:{name}" in result.err for name in ("add", "bodies", "env"))


async def test_run_with_bad_arguments_says_which(cli: Cli) -> None:
    result = await cli("run", "notes:add", '{"body": "x", "rank": "seven"}')
    assert result.code == 1 and "args.rank: expected float64, got string" in result.err


async def test_data_lists_the_tables(cli: Cli) -> None:
    result = await cli("data")
    assert result.code == 0, result.err
    assert result.out.split() == ["notes", "tags"]


async def test_data_of_a_table_with_limit_and_order(cli: Cli, server: str) -> None:
    marker = uuid.uuid4().hex[:8]
    for rank in range(3):
        await add(server, f"{marker}-{rank}", rank)
    newest = await cli("data", "notes", "--limit", "2")
    assert newest.code == 0, newest.err
    header, rule, *rows = newest.out.splitlines()
    assert [c.strip() for c in header.split("|")] == ["_id", "_creationTime", "body", "rank"]
    assert set(rule) <= {"-", "|"}
    assert [row.split("|")[2].strip() for row in rows] == [f'"{marker}-2"', f'"{marker}-1"']
    assert rows[0].split("|")[3].strip() == "2n"  # an int64 stays an int64
    assert "Showing the 2 most recently created documents" in newest.err
    oldest = await cli("data", "notes", "--order", "asc", "--limit", "100", "--format", "jsonl")
    assert oldest.code == 0, oldest.err
    mine = [line for line in oldest.out.splitlines() if marker in line]
    assert [re.search(r'"body": "([^"]+)"', line)[1] for line in mine] == [  # type: ignore[index]
        f"{marker}-0", f"{marker}-1", f"{marker}-2"]
    assert '"rank": 0n' in mine[0]  # the CLI's own notation for an int64


async def test_data_of_an_empty_table(cli: Cli) -> None:
    result = await cli("data", "tags")
    assert result.code == 0 and "There are no documents in this table." in result.err


async def test_data_of_an_unknown_table_names_the_tables(cli: Cli) -> None:
    result = await cli("data", "nope")
    assert result.code == 1
    assert "there is no table 'nope' in this deployment (its tables: notes, tags)" in \
        result.err


async def test_env_set_get_list_and_remove(cli: Cli, server: str) -> None:
    name = f"CLI_{uuid.uuid4().hex[:6].upper()}"
    assert "Successfully set" in (await cli("env", "set", name, "first value")).err
    assert await http_call(server, "query", "notes:env", {"name": name}) == "first value"
    async with httpx.AsyncClient(base_url=server) as http:
        stored = await http.get(f"/api/environment_variables/{name}",
                                headers={"Authorization": f"Convex {ADMIN_KEY}"})
    assert stored.json() == {"name": name, "value": "first value"}
    got = await cli("env", "get", name)
    assert got.code == 0 and got.out == "first value\n"
    listed = await cli("env", "list", "--include-values")
    assert f"{name}='first value'" in listed.out.splitlines() or \
        f"{name}=first value" in listed.out.splitlines()
    removed = await cli("env", "remove", name)
    assert removed.code == 0 and "Successfully unset" in removed.err
    assert await http_call(server, "query", "notes:env", {"name": name}) is None
    missing = await cli("env", "get", name)
    assert f'Environment variable "{name}" not found' in missing.err
    assert name not in (await cli("env", "list", "--include-values")).out


async def test_env_set_with_a_bad_name_says_what_is_wrong(cli: Cli) -> None:
    result = await cli("env", "set", "1BAD", "x")
    assert result.code == 1 and "400 Bad Request" in result.err
    assert "1BAD" in result.err


async def test_logs_streams_function_logs(cli: Cli, server: str) -> None:
    proc = await cli.spawn("logs")
    assert proc.stdout is not None
    try:
        # The CLI drops what its first poll returns (history), so call until a line shows.
        deadline = time.monotonic() + 30
        seen = ""
        while time.monotonic() < deadline:
            marker = uuid.uuid4().hex[:8]
            await add(server, marker, 1)
            try:
                while True:
                    line = (await asyncio.wait_for(proc.stdout.readline(), 1.0)).decode()
                    assert line, "`npx convex logs` ended"
                    seen += line
                    if marker in line:
                        break
            except TimeoutError:
                continue
            break
        assert re.search(rf"\[CONVEX M\(notes:add\)\] \[LOG\] adding {marker}$", seen, re.M), seen
    finally:
        proc.kill()  # by its PID
        await proc.wait()


async def test_function_spec_lists_the_functions_with_their_args(cli: Cli, server: str
                                                                 ) -> None:
    result = await cli("function-spec")
    assert result.code == 0, result.err
    spec = json.loads(result.out)
    assert spec["url"] == server
    by_id = {f["identifier"]: f for f in spec["functions"]}
    assert sorted(by_id) == ["notes.js:add", "notes.js:bodies", "notes.js:env"]
    add_spec = by_id["notes.js:add"]
    assert add_spec["functionType"] == "Mutation" and add_spec["visibility"] == {
        "kind": "public"}
    assert add_spec["args"]["value"]["rank"] == {"fieldType": {"type": "number"},
                                                 "optional": False}


@pytest.mark.parametrize("args", [("deploy", "-y"), ("dev", "--once")],
                         ids=["deploy", "dev"])
async def test_pushing_javascript_fails_at_once_saying_why(cli: Cli, args: tuple[str, ...]
                                                           ) -> None:
    started = time.monotonic()
    result = await cli(*args, timeout=30)
    assert " ".join(PUSH.split()) in " ".join(result.err.split())
    assert time.monotonic() - started < 15, "no retry loop"
    if args[0] == "deploy":
        assert result.code == 1  # `convex dev` exits 0 after a fatal push error


async def test_an_inline_query_is_refused_saying_why(cli: Cli) -> None:
    result = await cli("run", "--inline-query", "await ctx.db.query('notes').take(1)")
    assert result.code == 1
    assert " ".join(INLINE_QUERY.split()) in " ".join(result.err.split())


@pytest.mark.parametrize("args", [("data",), ("env", "list"), ("function-spec",)])
async def test_a_wrong_admin_key_ends_in_a_permission_error(cli: Cli, args: tuple[str, ...]
                                                            ) -> None:
    cli.key = "not-the-key"
    result = await cli(*args, timeout=30)
    assert result.code == 1
    assert "You do not have permission to perform this operation" in result.err
    assert "needs the admin key" in result.err


@pytest.mark.parametrize(("args", "message"), [
    (("env", "set", "A", "b"), "401 Unauthorized: Unauthenticated: the admin key is not valid"),
    (("logs",), "the admin key is not valid"),
    (("run", "notes:bodies"), "the admin key is not valid"),
])
async def test_a_wrong_admin_key_over_http_is_refused(cli: Cli, args: tuple[str, ...],
                                                      message: str) -> None:
    cli.key = "not-the-key"
    result = await cli(*args, timeout=30)
    assert result.code == 1 and message in result.err


async def test_without_an_admin_key_the_cli_stops_before_asking(cli: Cli) -> None:
    cli.key = None
    result = await cli("data", timeout=30)
    assert result.code == 1 and "CONVEX_DEPLOYMENT" in result.err


async def test_the_cli_works_against_reactive_store_dev(
        serve_app: ServeApp, js_client_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REACTIVE_STORE_ADMIN_KEY", ADMIN_KEY)
    url = await serve_app(write_app(tmp_path / "app", APP), command="dev")
    cli = Cli(project_dir(tmp_path / "project", js_client_dir), url)
    assert (await cli("run", "notes:add", '{"body": "dev", "rank": 1}')).code == 0
    data = await cli("data", "notes", "--format", "jsonl")
    assert data.code == 0 and '"body": "dev"' in data.out and '"rank": 1n' in data.out
