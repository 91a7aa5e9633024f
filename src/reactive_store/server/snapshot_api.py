"""Admin endpoints of `npx convex export` and `npx convex import` (snapshots in ZIPs).

Export: `POST /api/export/request/zip?includeStorage=` starts one, the CLI subscribes to
`_system/cli/exports:getLatest` until it completes, then downloads `GET
/api/export/zip/{snapshotExportTs}`. Import: `POST /api/import/start_upload`, the file in
parts (`/api/import/upload_part?uploadToken=&partNumber=`, streamed to disk),
`/api/import/finish_upload` (the import's arguments: format, table, mode) returns the
import id; the CLI follows `_system/cli/queryImport` and confirms with `POST
/api/perform_import`. Every endpoint requires the admin key.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from reactive_store.auth import AuthError
from reactive_store.deployment import Deployment
from reactive_store.errors import BadRequest
from reactive_store.server.function_api import JSONResponse, json_body
from reactive_store.snapshot.jobs import SnapshotJobs


class SnapshotEndpoints:
    def __init__(self, deployment: Deployment, jobs: SnapshotJobs) -> None:
        self.deployment = deployment
        self.jobs = jobs

    async def _require_admin(self, request: Request) -> None:
        caller = await self.deployment.auth.caller_from_header(
            request.headers.get("authorization"))
        if not caller.admin:
            raise AuthError("snapshot export and import require the admin key "
                            "(Authorization: Convex <admin key>)")

    async def request_export(self, request: Request) -> Response:
        await self._require_admin(request)
        if request.path_params["format"] != "zip":
            raise BadRequest("only zip exports exist", "InvalidExportFormat")
        self.jobs.request_export(
            request.query_params.get("includeStorage", "false").lower() == "true")
        return JSONResponse({})

    async def download_export(self, request: Request) -> Response:
        await self._require_admin(request)
        try:
            ts = int(request.path_params["ts"])
        except ValueError:
            raise BadRequest("the export timestamp must be an integer",
                             "InvalidExportTimestamp") from None
        path = self.jobs.export_file(ts)
        if path is None:
            return JSONResponse({"code": "ExportNotFound",
                                 "message": f"no completed export at timestamp {ts}"},
                                status_code=404)
        return FileResponse(path, media_type="application/zip",
                            headers={"Content-Disposition":
                                     f"attachment; filename=snapshot_{ts}.zip"})

    async def start_upload(self, request: Request) -> Response:
        await self._require_admin(request)
        return JSONResponse({"uploadToken": self.jobs.start_upload()})

    async def upload_part(self, request: Request) -> Response:
        await self._require_admin(request)
        try:
            number = int(request.query_params.get("partNumber", ""))
        except ValueError:
            raise BadRequest("partNumber must be an integer", "InvalidPart") from None
        path = self.jobs.part_path(request.query_params.get("uploadToken", ""), number)
        size = 0
        with path.open("wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
                size += len(chunk)
        return JSONResponse({"partNumber": number, "size": size})

    async def finish_upload(self, request: Request) -> Response:
        await self._require_admin(request)
        body: dict[str, Any] = await json_body(request)
        args = body.get("import")
        if not isinstance(args, dict) or not isinstance(body.get("uploadToken"), str):
            raise BadRequest("expected {'import': {...}, 'uploadToken': ..., 'partTokens': "
                             "[...]}", "InvalidImport")
        return JSONResponse({"importId": self.jobs.finish_upload(body["uploadToken"], args)})

    async def perform_import(self, request: Request) -> Response:
        await self._require_admin(request)
        body: dict[str, Any] = await json_body(request)
        import_id = body.get("importId")
        if not isinstance(import_id, str):
            raise BadRequest("expected {'importId': ...}", "InvalidImport")
        self.jobs.perform_import(import_id)
        return JSONResponse({})

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/export/request/{format}", self.request_export, methods=["POST"]),
            Route("/api/export/zip/{ts}", self.download_export, methods=["GET"]),
            Route("/api/import/start_upload", self.start_upload, methods=["POST"]),
            Route("/api/import/upload_part", self.upload_part, methods=["POST"]),
            Route("/api/import/finish_upload", self.finish_upload, methods=["POST"]),
            Route("/api/perform_import", self.perform_import, methods=["POST"]),
        ]
