"""File storage over HTTP: `POST /api/storage/upload?token=...` (the upload URL flow of the
official Convex clients) and `GET|HEAD /api/storage/{id}/{signature}` (`get_url` URLs).

Both stream: an upload goes to the database chunk by chunk as it arrives, a download leaves
it chunk by chunk, so memory stays flat whatever the file's size. Downloads carry the
content type, `Content-Length`, `ETag` (the SHA-256), `Accept-Ranges` and serve single
byte ranges (206) and conditional requests (304). Files are served with
`Content-Security-Policy: sandbox` and `nosniff`: an uploaded HTML or SVG file cannot run
script on this origin.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from reactive_store.deployment import Deployment
from reactive_store.errors import FileError, UploadTimeout
from reactive_store.server.function_api import JSONResponse
from reactive_store.storage.files import Blob

log = logging.getLogger(__name__)

UPLOAD_PATH = "/api/storage/upload"  # its own size limit; the request body limit skips it
CACHE_CONTROL = "private, max-age=2592000, immutable"  # a URL's bytes never change
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The one byte range `[start, end)` a Range header asks for; None to send the whole
    file (no header, a malformed one, or several ranges, which RFC 9110 lets a server
    ignore); "unsatisfiable" for a range past the end."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or (match.group(1) == "" and match.group(2) == ""):
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # a suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - length), size
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if start >= size or (last != "" and int(last) < start):
        return "unsatisfiable"
    return start, end


def etag_of(blob: Blob) -> str:
    return '"' + base64.b64encode(blob.sha256).decode() + '"'


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


class FileEndpoints:
    """The upload and download routes of a deployment's file storage."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    async def _body(self, request: Request) -> AsyncIterator[bytes]:
        """The request body as it arrives; UploadTimeout when the client stalls."""
        idle = self.deployment.engine.files.limits.upload_idle_seconds
        stream = request.stream().__aiter__()
        while True:
            try:
                async with asyncio.timeout(idle):
                    piece = await stream.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise UploadTimeout(f"no bytes arrived for {idle:g} s: the upload was "
                                    "dropped and nothing was stored") from None
            if piece:
                yield piece

    async def upload(self, request: Request) -> Response:
        files = self.deployment.engine.files
        length = request.headers.get("content-length")
        try:
            storage_id = await files.upload(
                request.query_params.get("token"), self._body(request),
                content_type=request.headers.get("content-type"),
                content_length=int(length) if length and length.isdigit() else None,
                digest=request.headers.get("digest"))
        except FileError as exc:
            return JSONResponse({"code": exc.code, "message": exc.message},
                                status_code=exc.status)
        except ClientDisconnect:
            log.info("an upload was dropped by its client; nothing was stored")
            return Response(status_code=400)
        return JSONResponse({"storageId": storage_id})

    async def download(self, request: Request) -> Response:
        files = self.deployment.engine.files
        blob = await files.open(request.path_params["storage_id"],
                                request.path_params["signature"])
        if blob is None:
            return JSONResponse({"code": "NotFound", "message": "no such file"},
                                status_code=404)
        etag = etag_of(blob)
        headers = {
            "ETag": etag, "Cache-Control": CACHE_CONTROL, "Accept-Ranges": "bytes",
            "Digest": "sha-256=" + etag.strip('"'), "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "Content-Type": blob.content_type or "application/octet-stream",
        }
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers={k: headers[k] for k in (
                "ETag", "Cache-Control")})
        wanted = parse_range(request.headers.get("range"), blob.size)
        if_range = request.headers.get("if-range")
        if if_range is not None and if_range.strip() != etag:
            wanted = None  # the client's partial copy is of other bytes: send them all
        if wanted == "unsatisfiable":
            return Response(status_code=416, headers={"Content-Range": f"bytes */{blob.size}",
                                                      "Accept-Ranges": "bytes", "ETag": etag})
        status, start, end = 200, 0, blob.size
        if isinstance(wanted, tuple):
            status, (start, end) = 206, wanted
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
        headers["Content-Length"] = str(end - start)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        return StreamingResponse(files.read(blob, start, end), status_code=status,
                                 headers=headers)
