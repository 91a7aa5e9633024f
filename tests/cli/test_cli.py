"""The command line: admin key sources, argument errors, and one-shot `run` calls."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest

from reactive_store.cli import admin_key_from_env, build_parser, main, settings_from
from reactive_store.deployment import Deployment, Settings
from tests.support import new_namespace, write_app


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"CONVEX_DEPLOY_KEY": "deploy"}, "deploy"),
        ({"CONVEX_DEPLOY_KEY": "deploy", "CONVEX_ADMIN_KEY": "admin"}, "admin"),
        ({"CONVEX_ADMIN_KEY": "admin", "REACTIVE_STORE_ADMIN_KEY": "ours"}, "ours"),
    ],
)
def test_admin_key_from_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                            expected: str | None) -> None:
    for name in ("REACTIVE_STORE_ADMIN_KEY", "CONVEX_ADMIN_KEY", "CONVEX_DEPLOY_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert admin_key_from_env() == expected


def test_dev_generates_an_admin_key_and_serve_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REACTIVE_STORE_ADMIN_KEY", "CONVEX_ADMIN_KEY", "CONVEX_DEPLOY_KEY"):
        monkeypatch.delenv(name, raising=False)
    dev = settings_from(build_parser().parse_args(["dev"]))
    serve = settings_from(build_parser().parse_args(["serve"]))
    assert dev.admin_key and dev.admin_key.startswith("dev-") and len(dev.admin_key) > 40
    assert serve.admin_key is None
    explicit = settings_from(build_parser().parse_args(["serve", "--admin-key", "k"]))
    assert explicit.admin_key == "k"


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["launch"])
    assert "invalid choice" in capsys.readouterr().err


JOBS_APP = {
    "schema/__init__.py": "from reactive_store import define_schema\nschema = define_schema({})\n",
    "functions/jobs.py": """
from reactive_store import internal_mutation, mutation, query

@internal_mutation(args={})
async def work(ctx):
    return "ran"

@mutation(args={})
async def schedule(ctx):
    return await ctx.scheduler.run_after(0, "jobs:work", {})

@query(args={})
async def states(ctx):
    jobs = await ctx.db.system.query("_scheduled_functions").collect()
    return [j["state"]["kind"] for j in jobs]
""",
}


async def test_run_calls_one_function_and_never_claims_due_jobs(
        tmp_path: Path, database_url: str) -> None:
    app = write_app(tmp_path / "app", JOBS_APP)
    namespace = new_namespace()
    base = ["--app", str(app), "--database-url", database_url, "--db-schema", namespace]
    assert await asyncio.to_thread(main, ["run", "jobs:schedule", "{}", *base]) == 0
    # The job is due now; each `run` is a whole deployment start, yet none of them runs it.
    for _ in range(3):
        assert await asyncio.to_thread(main, ["run", "jobs:states", "{}", *base]) == 0
    deployment = Deployment(Settings(app_dir=app, database_url=database_url,
                                     namespace=namespace, run_jobs=False))
    engine = await deployment.start()
    try:
        assert (await engine.run_query("jobs:states", {})).value == ["pending"]
    finally:
        await deployment.store.drop()
        await deployment.stop()


def test_run_reports_a_broken_app_with_its_location(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    app = write_app(tmp_path / "app", {"functions/bad.py": "def f(:\n"})
    assert main(["run", "bad:f", "--app", str(app), "--database-url", "postgresql://x"]) == 1
    err = capsys.readouterr().err
    assert "functions/bad.py:1: syntax error" in err


async def test_env_on_the_database_set_get_list_remove(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REACTIVE_STORE_URL", "CONVEX_SELF_HOSTED_URL"):
        monkeypatch.delenv(name, raising=False)
    app = write_app(tmp_path / "app", JOBS_APP)
    namespace = new_namespace()
    base = ["--app", str(app), "--database-url", database_url, "--db-schema", namespace]

    async def env(*args: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, ["env", *args, *base])
        out = capsys.readouterr()
        return code, out.out, out.err

    try:
        assert await env("set", "API_KEY", "v=1 with spaces") == (0, "set API_KEY\n", "")
        monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin\n"))
        assert await env("set", "FROM_STDIN") == (0, "set FROM_STDIN\n", "")
        assert await env("get", "API_KEY") == (0, "v=1 with spaces\n", "")
        assert await env("list") == (0, "API_KEY=v=1 with spaces\nFROM_STDIN=from-stdin\n", "")
        assert await env("remove", "API_KEY") == (0, "removed API_KEY\n", "")
        assert await env("remove", "API_KEY") == (0, "API_KEY was not set\n", "")
        code, out, err = await env("get", "API_KEY")
        assert (code, out) == (1, "") and "environment variable API_KEY is not set" in err
        code, _, err = await env("set", "BAD-NAME", "v")
        assert code == 1 and "invalid environment variable name 'BAD-NAME'" in err
        with pytest.raises(SystemExit, match="needs a variable NAME"):
            await asyncio.to_thread(main, ["env", "get", *base])
        with pytest.raises(SystemExit, match="takes only a NAME"):
            await asyncio.to_thread(main, ["env", "remove", "A", "B", *base])
    finally:
        deployment = Deployment(Settings(app_dir=app, database_url=database_url,
                                         namespace=namespace, run_jobs=False))
        await deployment.start()
        await deployment.store.drop()
        await deployment.stop()


async def test_env_through_a_server_needs_the_admin_key(
        serve: Any, make_app: Any, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REACTIVE_STORE_ADMIN_KEY", "CONVEX_ADMIN_KEY", "CONVEX_DEPLOY_KEY"):
        monkeypatch.delenv(name, raising=False)
    url, deployment = await serve(make_app(JOBS_APP), admin_key="the-key")
    monkeypatch.setenv("REACTIVE_STORE_URL", url)

    async def env(*args: str) -> tuple[int, str]:
        code = await asyncio.to_thread(main, ["env", *args])
        return code, capsys.readouterr().out

    assert await env("set", "TOKEN", "t-1", "--admin-key", "the-key") == (0, "set TOKEN\n")
    assert deployment.engine.env.values == {"TOKEN": "t-1"}
    assert await env("list", "--url", url, "--admin-key", "the-key") == (0, "TOKEN=t-1\n")
    with pytest.raises(SystemExit, match="needs the admin key"):
        await asyncio.to_thread(main, ["env", "list"])
    with pytest.raises(SystemExit, match="answered 401"):
        await asyncio.to_thread(main, ["env", "list", "--admin-key", "wrong"])
    # Checked before anything is sent (the server checks again: tests/server).
    code = await asyncio.to_thread(main, ["env", "set", "X" * 41, "v", "--admin-key", "the-key"])
    assert code == 1 and "longer than 40 characters" in capsys.readouterr().err
    assert await deployment.environment() == {"TOKEN": "t-1"}


NOTES_SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({"notes": define_table({"body": v.string()})INDEX})
"""
NOTES_FUNCTIONS = """
from reactive_store import mutation, query, v

@mutation(args={"n": v.float64()})
async def fill(ctx, n):
    for i in range(int(n)):
        await ctx.db.insert("notes", {"body": f"note {i}"})

@query(args={})
async def count(ctx):
    return len(await ctx.db.query("notes").collect())
"""


async def test_a_long_backfill_prints_progress(tmp_path: Path, database_url: str,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from reactive_store.storage import search_ddl

    monkeypatch.setattr(search_ddl, "PROGRESS_EVERY", 50)
    monkeypatch.setattr(search_ddl, "BACKFILL_BATCH", 50)
    app = write_app(tmp_path / "app", {"schema/__init__.py": NOTES_SCHEMA.replace("INDEX", ""),
                                       "functions/notes.py": NOTES_FUNCTIONS})
    base = ["--app", str(app), "--database-url", database_url, "--db-schema", new_namespace()]
    assert await asyncio.to_thread(main, ["run", "notes:fill", '{"n": 120}', *base]) == 0
    write_app(app, {"schema/__init__.py": NOTES_SCHEMA.replace(
        "INDEX", '.search_index("s", search_field="body")')})
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["run", "notes:count", "{}", *base]) == 0
    out = capsys.readouterr()
    assert out.err.splitlines() == ["backfilling search index notes.s: 50/120 documents",
                                    "backfilling search index notes.s: 100/120 documents",
                                    "backfilled search index notes.s: 120 documents"]
    assert out.out.strip() == '"120"'  # an int64 prints as a string


CODEGEN_APP = {
    "schema/__init__.py": "from reactive_store import define_schema, define_table, v\n"
                          "schema = define_schema({'notes': define_table({'text': v.string()})})\n",
    "functions/notes.py": "from reactive_store import query\n\n"
                          "@query\nasync def count(ctx) -> float:\n    return 0\n",
}


def test_codegen_writes_typescript_then_python(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    app = write_app(tmp_path / "app", CODEGEN_APP)
    out = app / "functions" / "_generated"
    assert main(["codegen", "--app", str(app)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["api.d.ts", "api.js", "dataModel.d.ts"]
    assert "wrote" in capsys.readouterr().out
    assert main(["codegen", "--app", str(app)]) == 0
    assert capsys.readouterr().out.strip() == f"{out}: up to date"
    assert main(["codegen", "--app", str(app), "--python"]) == 0
    assert (out / "api.py").is_file()
    elsewhere = tmp_path / "web" / "generated"
    assert main(["codegen", "--app", str(app), "--out", str(elsewhere)]) == 0
    assert (elsewhere / "api.d.ts").read_text() == (out / "api.d.ts").read_text()


def test_codegen_check_fails_on_stale_files(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    app = write_app(tmp_path / "app", CODEGEN_APP)
    assert main(["codegen", "--app", str(app), "--check"]) == 1
    err = capsys.readouterr().err
    assert "api.d.ts is missing or out of date" in err
    assert f"run: reactive-store codegen --app {app}" in err
    for flags in ([], ["--python"]):
        assert main(["codegen", "--app", str(app), *flags]) == 0
        assert main(["codegen", "--app", str(app), "--check", *flags]) == 0
    (app / "functions" / "notes.py").write_text(
        CODEGEN_APP["functions/notes.py"] + "\n@query\nasync def more(ctx) -> str:\n"
                                            "    return ''\n")
    capsys.readouterr()
    assert main(["codegen", "--app", str(app), "--check", "--python"]) == 1
    assert "api.py is missing or out of date" in capsys.readouterr().err
    assert "more" not in (app / "functions" / "_generated" / "api.py").read_text()  # unwritten


def test_codegen_bootstraps_an_app_that_imports_its_generated_api(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {
        **CODEGEN_APP,
        "functions/crons.py": "from reactive_store import Crons\n"
                              "from ._generated.api import internal\n"
                              "crons = Crons()\n"
                              "crons.interval('tidy', minutes=5, fn=internal.jobs.tidy.path)\n",
        "functions/jobs.py": "from reactive_store import internal_mutation\n\n"
                             "@internal_mutation\nasync def tidy(ctx) -> None:\n    pass\n",
    })
    assert main(["codegen", "--app", str(app), "--python"]) == 0
    generated = (app / "functions" / "_generated" / "api.py").read_text()
    assert 'tidy: JobsTidyRef = MutationReference("jobs:tidy")' in generated


def test_dev_takes_no_codegen() -> None:
    assert build_parser().parse_args(["dev", "--no-codegen"]).no_codegen
    assert not build_parser().parse_args(["dev"]).no_codegen


LOG_APP = {
    "schema/__init__.py": """
from reactive_store import define_schema, define_table, v
schema = define_schema({"notes": define_table({"body": v.string()})})
""",
    "functions/notes.py": """
from reactive_store import mutation, query, v

@mutation(args={"body": v.string()})
async def add(ctx, body):
    print("adding", body)
    await ctx.db.insert("notes", {"body": body})

@query(args={})
async def boom(ctx):
    print("before the boom")
    raise RuntimeError("boom")
""",
}
ADMIN_KEY = "cli-test-key"


async def http_call(url: str, kind: str, path: str, args: dict[str, object]) -> None:
    import httpx

    async with httpx.AsyncClient() as http:
        await http.post(f"{url}/api/{kind}", json={"path": path, "args": args})


class Tail:
    """`reactive-store logs ...` in a subprocess; `line(pattern)` waits for a stdout line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.seen: list[str] = []

    async def line(self, contains: str, timeout: float = 10.0) -> str:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise AssertionError(f"logs exited; printed {self.seen}")
                text = raw.decode().rstrip("\n")
                self.seen.append(text)
                if contains in text:
                    return text

    async def watching(self, timeout: float = 20.0) -> None:
        """Wait until it made its first request (it says so on stderr)."""
        assert self.proc.stderr is not None
        async with asyncio.timeout(timeout):
            line = await self.proc.stderr.readline()
        assert line.startswith(b"Watching logs of "), line

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def start_tail(*args: str) -> Tail:
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reactive_store", "logs", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    return Tail(proc)


async def test_logs_prints_history_then_tails_live(tmp_path: Path, serve: object) -> None:
    url, _ = await serve(write_app(tmp_path / "app", LOG_APP),  # type: ignore[operator]
                         admin_key=ADMIN_KEY)
    await http_call(url, "mutation", "notes:add", {"body": "early"})
    tail = await start_tail("--url", url, "--admin-key", ADMIN_KEY, "--history", "5")
    try:
        line = await tail.line("adding early")
        assert line.endswith("[CONVEX M(notes:add)] [LOG] adding early")
        assert "/" in line.split(" [CONVEX")[0]  # led by the local date and time
        await http_call(url, "query", "notes:boom", {})
        assert (await tail.line("before the boom")).endswith(
            "[CONVEX Q(notes:boom)] [LOG] before the boom")
        assert (await tail.line("Uncaught")).endswith(
            "[CONVEX Q(notes:boom)] Uncaught RuntimeError: boom")
        assert "boom.py" not in " ".join(tail.seen) and "notes.py" in (
            await tail.line("notes.py"))  # the app's own frame of the traceback
    finally:
        await tail.stop()


async def test_logs_filters_by_outcome_and_function(tmp_path: Path, serve: object) -> None:
    url, _ = await serve(write_app(tmp_path / "app", LOG_APP),  # type: ignore[operator]
                         admin_key=ADMIN_KEY)
    successes = await start_tail("--url", url, "--admin-key", ADMIN_KEY, "--success")
    failures = await start_tail("--url", url, "--admin-key", ADMIN_KEY, "--failure",
                                "--function", "notes:boom")
    try:
        await successes.watching()
        await failures.watching()
        await http_call(url, "query", "notes:boom", {})
        await http_call(url, "mutation", "notes:add", {"body": "x"})
        done = await successes.line("Function executed in")
        assert "[CONVEX M(notes:add)] Function executed in " in done and done.endswith(" ms")
        assert not any("boom" in line for line in successes.seen)
        await failures.line("Uncaught RuntimeError: boom")
        await http_call(url, "query", "notes:boom", {})
        await failures.line("Uncaught RuntimeError: boom")
        assert not any("adding" in line for line in failures.seen)
    finally:
        await successes.stop()
        await failures.stop()


async def test_logs_refuses_a_wrong_or_missing_admin_key(tmp_path: Path, serve: object,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    url, _ = await serve(write_app(tmp_path / "app", LOG_APP),  # type: ignore[operator]
                         admin_key=ADMIN_KEY)
    wrong = await start_tail("--url", url, "--admin-key", "nope")
    _, err = await asyncio.wait_for(wrong.proc.communicate(), 20)
    assert wrong.proc.returncode == 1 and "answered 403" in err.decode()
    assert "the admin key is not valid" in err.decode()
    for name in ("REACTIVE_STORE_ADMIN_KEY", "CONVEX_ADMIN_KEY", "CONVEX_DEPLOY_KEY"):
        monkeypatch.delenv(name, raising=False)
    missing = await start_tail("--url", url)
    _, err = await asyncio.wait_for(missing.proc.communicate(), 20)
    assert missing.proc.returncode == 1 and "need the admin key" in err.decode()


async def test_dev_prints_every_execution_as_convex_dev_does(
        tmp_path: Path, database_url: str) -> None:
    from tests.e2e.servers import server_pool
    from tests.support import until

    app = write_app(tmp_path / "app", LOG_APP)
    async with server_pool(database_url, tmp_path) as pool:
        url = await pool(app, command="dev")
        await http_call(url, "mutation", "notes:add", {"body": "hello"})
        await http_call(url, "query", "notes:boom", {})
        server = pool.server(url)

        async def printed() -> bool:
            return "Uncaught RuntimeError: boom" in server.log()

        await until(printed)
        lines = [line for line in server.log().splitlines() if "[CONVEX " in line]
    assert lines[0].endswith("[CONVEX M(notes:add)] [LOG] adding hello")
    assert lines[1].endswith("[CONVEX Q(notes:boom)] [LOG] before the boom")
    assert lines[2].endswith("[CONVEX Q(notes:boom)] Uncaught RuntimeError: boom")
    assert "\033[" not in server.log()  # no colors when stdout is not a terminal


async def test_serve_exports_metrics_on_a_separate_port(tmp_path: Path,
                                                        database_url: str) -> None:
    import sys

    import httpx

    from tests.e2e.servers import drop_namespace
    from tests.support import free_port

    app = write_app(tmp_path / "app", LOG_APP)
    port, metrics_port, namespace = free_port(), free_port(), new_namespace()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reactive_store", "serve", "--app", str(app), "--database-url",
        database_url, "--db-schema", namespace, "--port", str(port), "--admin-key", ADMIN_KEY,
        "--metrics-port", str(metrics_port), "--log-level", "warning",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as http:
            async with asyncio.timeout(20):
                while True:
                    try:
                        if (await http.get(f"{url}/version")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
            await http_call(url, "mutation", "notes:add", {"body": "m"})
            scraped = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
            guarded = await http.get(f"{url}/metrics")
        assert scraped.status_code == 200
        assert ('reactive_store_function_calls_total{function="notes:add",kind="mutation",'
                'outcome="success"} 1.0') in scraped.text
        assert guarded.status_code == 403  # the main port still wants the admin key
    finally:
        proc.terminate()
        banner, _ = await proc.communicate()
        await drop_namespace(database_url, namespace)
    assert f"metrics   http://127.0.0.1:{metrics_port}/metrics" in banner.decode()
    assert "/_dashboard" in banner.decode()


def test_serving_freezes_what_startup_made_and_collects_less_often() -> None:
    import gc
    import importlib

    serve_module = importlib.import_module("reactive_store.cli.serve")

    before = gc.get_threshold()
    try:
        serve_module._tune_gc()
        assert gc.get_threshold()[0] == serve_module.GC_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
