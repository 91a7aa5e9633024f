"""The snapshot endpoints in-process: the import state machine the official CLI follows,
and every refusal (admin key, tokens, formats, modes, unknown imports and exports)."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from reactive_store.client import connect
from tests.snapshot.library_app import FILES

KEY = "snapshot-api-admin-key"
ADMIN = {"Authorization": f"Convex {KEY}"}


async def started(make_app: Callable[..., Path], serve: Callable[..., Any]) -> str:
    url, _ = await serve(make_app(FILES), admin_key=KEY)
    return str(url)


async def upload(http: httpx.AsyncClient, data: bytes, args: dict[str, Any]) -> str:
    token = (await http.post("/api/import/start_upload", headers=ADMIN)).json()["uploadToken"]
    parts = []
    for number, start in enumerate(range(0, len(data), 10), 1):
        response = await http.post(f"/api/import/upload_part?uploadToken={token}"
                                   f"&partNumber={number}", content=data[start:start + 10],
                                   headers=ADMIN)
        parts.append(response.json())
    response = await http.post("/api/import/finish_upload", headers=ADMIN, json={
        "import": args, "uploadToken": token, "partTokens": parts})
    assert response.status_code == 200, response.text
    import_id: str = response.json()["importId"]
    return import_id


async def test_an_import_goes_through_convex_states_and_subscribers_follow(
        make_app: Callable[..., Path], serve: Callable[..., Any]) -> None:
    url = await started(make_app, serve)
    data = b'{"name": "Ada"}\n{"name": "Grace"}\n'
    async with httpx.AsyncClient(base_url=url, timeout=10) as http, \
            connect(url, admin_key=KEY) as client:
        import_id = await upload(http, data, {"tableName": "authors", "mode": "requireEmpty",
                                              "format": "jsonLines"})
        states = client.subscribe("_system/cli/queryImport", {"importId": import_id})
        state = (await anext(states))["state"]
        while state["state"] == "uploaded":
            state = (await asyncio.wait_for(anext(states), 10))["state"]
        assert state["state"] == "waiting_for_confirmation"
        assert "authors: add 2, delete 0 (of 0)" in state["message_to_confirm"]
        assert state["require_manual_confirmation"] is False
        listed = await client.query("_system/cli/queryImport:list", {})
        assert [i["_id"] for i in listed] == [import_id]
        response = await http.post("/api/perform_import", headers=ADMIN,
                                   json={"importId": import_id})
        assert response.status_code == 200
        while state["state"] not in ("completed", "failed"):
            state = (await asyncio.wait_for(anext(states), 10))["state"]
        assert state == {"state": "completed", "num_rows_written": 2}
        again = await http.post("/api/perform_import", headers=ADMIN,
                                json={"importId": import_id})
        assert again.status_code == 400 and again.json()["code"] == "ImportNotWaiting"


async def test_an_export_is_requested_followed_and_downloaded(
        make_app: Callable[..., Path], serve: Callable[..., Any]) -> None:
    url = await started(make_app, serve)
    async with httpx.AsyncClient(base_url=url, timeout=10) as http, \
            connect(url, admin_key=KEY) as client:
        await client.mutation("library:add_author", {"name": "Ada"})
        response = await http.post("/api/export/request/zip?includeStorage=false",
                                   headers=ADMIN)
        assert response.status_code == 200
        latest = client.subscribe("_system/cli/exports:getLatest", {})
        export = await anext(latest)
        while export["state"] != "completed":
            export = await asyncio.wait_for(anext(latest), 10)
        ts = export["start_ts"]
        assert isinstance(ts, int)
        download = await http.get(f"/api/export/zip/{ts}", headers=ADMIN)
        assert download.headers["content-disposition"] == f"attachment; filename=snapshot_{ts}.zip"
        names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
        assert "authors/documents.jsonl" in names
        missing = await http.get(f"/api/export/zip/{ts + 1}", headers=ADMIN)
        assert missing.status_code == 404 and missing.json()["code"] == "ExportNotFound"


async def test_every_refusal_names_what_was_wrong(make_app: Callable[..., Path],
                                                  serve: Callable[..., Any]) -> None:
    url = await started(make_app, serve)
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        checks = [
            (await http.post("/api/import/start_upload"), 401, "Unauthenticated"),
            (await http.post("/api/import/upload_part?uploadToken=nope&partNumber=1",
                             headers=ADMIN, content=b"x"), 400, "InvalidUploadToken"),
            (await http.post("/api/import/finish_upload", headers=ADMIN,
                             json={"import": {}, "uploadToken": "nope"}), 400,
             "InvalidUploadToken"),
            (await http.post("/api/import/finish_upload", headers=ADMIN, json={}), 400,
             "InvalidImport"),
            (await http.post("/api/perform_import", headers=ADMIN, json={"importId": "x"}),
             400, "ImportNotFound"),
            (await http.post("/api/export/request/csv", headers=ADMIN), 400,
             "InvalidExportFormat"),
            (await http.get("/api/export/zip/abc", headers=ADMIN), 400,
             "InvalidExportTimestamp"),
        ]
        token = (await http.post("/api/import/start_upload", headers=ADMIN)).json()
        bad_mode = await http.post("/api/import/finish_upload", headers=ADMIN, json={
            "import": {"format": "zip", "mode": "replaceAll"}, "uploadToken": token[
                "uploadToken"]})
        checks.append((bad_mode, 400, "InvalidImportMode"))
    for response, status, code in checks:
        assert (response.status_code, response.json().get("code")) == (status, code), \
            response.text


async def test_a_failed_check_is_a_failed_import_with_its_message(
        make_app: Callable[..., Path], serve: Callable[..., Any]) -> None:
    url = await started(make_app, serve)
    async with httpx.AsyncClient(base_url=url, timeout=10) as http, \
            connect(url, admin_key=KEY) as client:
        import_id = await upload(http, b'{"name": 1}\n', {"tableName": "ghosts",
                                                         "format": "jsonLines"})
        states = client.subscribe("_system/cli/queryImport", {"importId": import_id})
        state = (await anext(states))["state"]
        while state["state"] == "uploaded":
            state = (await asyncio.wait_for(anext(states), 10))["state"]
        assert state == {"state": "failed", "error_message": (
            "table 'ghosts' is in the uploaded file but not in the app's schema: add it to "
            "schema/ (or leave it out of the import)")}
