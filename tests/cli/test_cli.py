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
