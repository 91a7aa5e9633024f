"""Snapshots end to end: `reactive-store export/import` and the official `npx convex export
/ import`, against real server processes on the test database."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from reactive_store.client import connect
from tests.e2e.clients import http_call, i64
from tests.e2e.servers import ServeApp, drop_namespace
from tests.snapshot.library_app import FILES
from tests.support import new_namespace, write_app

pytestmark = pytest.mark.e2e

ADMIN_KEY = "e2e-snapshot-admin-key"
TIMEOUT = 120.0


@pytest.fixture(autouse=True)
def admin_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REACTIVE_STORE_ADMIN_KEY", ADMIN_KEY)  # the servers inherit it


async def run(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
              ) -> tuple[int, str]:
    """Run a command to its end (stdin closed, TIMEOUT at most); exit code and output."""
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env={**os.environ, **(env or {})})
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def ours(app: Path, database_url: str, namespace: str, *args: str) -> tuple[int, str]:
    """`reactive-store <args>` on a deployment's database."""
    return await run([sys.executable, "-m", "reactive_store", *args, "--app", str(app),
                      "--database-url", database_url, "--db-schema", namespace])


async def npx(js_dir: Path, url: str, *args: str, key: str = ADMIN_KEY) -> tuple[int, str]:
    """`npx convex <args>` against our server, as a self-hosted deployment."""
    npx_bin = shutil.which("npx")
    assert npx_bin is not None
    env = {"CONVEX_SELF_HOSTED_URL": url, "CONVEX_SELF_HOSTED_ADMIN_KEY": key,
           "CONVEX_DEPLOYMENT": "", "CI": "1"}
    return await run([npx_bin, "convex", *args], cwd=js_dir, env=env)


async def fill(url: str) -> dict[str, str]:
    ada = await http_call(url, "mutation", "library:add_author", {"name": "Ada"})
    book = await http_call(url, "mutation", "library:add_book",
                           {"title": "Notes", "author": ada, "copies": i64(3)})
    stored = await http_call(url, "action", "library:store_text", {"text": "hello file"})
    return {"ada": ada, "book": book, "file": stored}


def documents(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if n.endswith("documents.jsonl")}


async def test_official_cli_round_trip_into_a_fresh_deployment(
        serve_app: ServeApp, js_client_dir: Path, tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", FILES)
    first = await serve_app(app)
    made = await fill(first)
    code, out = await npx(js_client_dir, first, "export", "--path", str(tmp_path / "a.zip"),
                          "--include-file-storage")
    assert code == 0, out
    assert "Downloaded snapshot export" in out
    second = await serve_app(app)
    code, out = await npx(js_client_dir, second, "import", str(tmp_path / "a.zip"))
    assert code == 0, out
    assert "Added 3 documents" in out  # authors, books and the file
    book = (await http_call(second, "query", "library:books", {}))[0]
    assert book["_id"] == made["book"] and book["author"] == made["ada"]
    url = await http_call(second, "query", "library:file_url", {"id": made["file"]})
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(url)).content == b"hello file"
    code, out = await npx(js_client_dir, second, "export", "--path", str(tmp_path / "b.zip"),
                          "--include-file-storage")
    assert code == 0, out
    assert documents(tmp_path / "a.zip") == documents(tmp_path / "b.zip")


async def test_official_cli_refuses_a_non_empty_table_and_a_violation(
        serve_app: ServeApp, js_client_dir: Path, tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", FILES)
    url = await serve_app(app)
    made = await fill(url)
    code, out = await npx(js_client_dir, url, "export", "--path", str(tmp_path / "a.zip"))
    assert code == 0, out
    code, out = await npx(js_client_dir, url, "import", str(tmp_path / "a.zip"))
    assert code == 1 and "Table authors already exists" in out, out
    bad = tmp_path / "bad.jsonl"
    bad.write_text(f'{{"title": "T", "author": "{made["ada"]}", "copies": 1.5}}\n')
    code, out = await npx(js_client_dir, url, "import", "--replace", "-y", "--table", "books",
                          str(bad))
    assert code == 1, out
    assert "table 'books', a document without _id (the uploaded file line 1)" in out
    assert "books.copies: expected int64, got float64 1.5" in out
    assert len(await http_call(url, "query", "library:books", {})) == 1  # nothing replaced


async def test_official_cli_with_a_wrong_admin_key_is_refused(
        serve_app: ServeApp, js_client_dir: Path, tmp_path: Path) -> None:
    url = await serve_app(write_app(tmp_path / "app", FILES))
    code, out = await npx(js_client_dir, url, "export", "--path", str(tmp_path / "a.zip"),
                          key="wrong-key")
    assert code != 0 and not (tmp_path / "a.zip").exists(), out
    async with httpx.AsyncClient(timeout=10) as http:
        for path in ("/api/export/request/zip", "/api/import/start_upload",
                     "/api/perform_import"):
            response = await http.post(url + path, headers={"Authorization": "Convex nope"})
            assert response.status_code == 401, (path, response.text)
        response = await http.get(url + "/api/export/zip/1")
        assert response.status_code == 401


async def test_our_cli_round_trip_and_a_live_subscriber_sees_the_import(
        serve_app: ServeApp, database_url: str, tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", FILES)
    url = await serve_app(app)
    namespace = serve_app.server(url).namespace
    made = await fill(url)
    snapshot = tmp_path / "ours.zip"
    code, out = await ours(app, database_url, namespace, "export", "--path", str(snapshot),
                           "--include-file-storage")
    assert code == 0, out
    assert "Exported 2 documents in 2 tables and 1 files" in out
    fresh = new_namespace()
    try:
        code, out = await ours(app, database_url, fresh, "import", str(snapshot))
        assert code == 0, out
        again = tmp_path / "again.zip"
        code, out = await ours(app, database_url, fresh, "export", "--path", str(again),
                               "--include-file-storage")
        assert code == 0, out
        assert documents(snapshot) == documents(again)
    finally:
        await drop_namespace(database_url, fresh)
    more = tmp_path / "more.jsonl"
    more.write_text(f'{{"title": "A", "author": "{made["ada"]}", "copies": 1}}\n'
                    f'{{"title": "B", "author": "{made["ada"]}", "copies": 2}}\n')
    async with connect(url) as client:
        counts = client.subscribe("library:count", {})
        assert await anext(counts) == 1.0
        code, out = await ours(app, database_url, namespace, "import", "--append", "--table",
                               "books", str(more))
        assert code == 0 and "Added 2 documents from more.jsonl" in out, out
        assert await asyncio.wait_for(anext(counts), timeout=10) == 3.0


@pytest.mark.parametrize(("name", "content", "extra", "message"), [
    ("broken.zip", b"PK\x03\x04 not a zip at all", [],
     "error: broken.zip is not a valid ZIP file"),
    ("ghosts.jsonl", b'{"boo": 1}\n', ["--table", "ghosts"],
     "error: table 'ghosts' is in ghosts.jsonl but not in the app's schema"),
    ("authors.jsonl", b'{"name": "Ada"}\n{"name": \n', ["--table", "authors"],
     "error: authors.jsonl: line 2 is not valid JSON"),
    ("books.csv", b"title,author,copies\nA,x,many\n", ["--table", "books"],
     "error: books.csv: line 2, column 'copies': 'many' is not an integer (int64)"),
])
async def test_our_cli_names_what_is_wrong_and_writes_nothing(
        database_url: str, tmp_path: Path, name: str, content: bytes, extra: list[str],
        message: str) -> None:
    app = write_app(tmp_path / "app", FILES)
    path = tmp_path / name
    path.write_bytes(content)
    namespace = new_namespace()
    try:
        code, out = await ours(app, database_url, namespace, "import", str(path), *extra)
        assert code == 1 and message in out, out
        code, out = await ours(app, database_url, namespace, "export", "--path",
                               str(tmp_path / "after.zip"))
        assert code == 0 and "Exported 0 documents" in out, out
    finally:
        await drop_namespace(database_url, namespace)
