"""File storage over HTTP on a real server: the upload URL flow, downloads with Range, ETag
and conditional requests, and every way an upload can be refused, each leaving nothing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from reactive_store.engine.engine import EngineConfig
from reactive_store.engine.file_tokens import UploadGrant, sign_upload
from reactive_store.limits import FileLimits, ServerLimits

APP = {
    "schema/__init__.py": "from reactive_store import define_schema\n"
                          "schema = define_schema({})\n",
    "functions/files.py": """
        from reactive_store import mutation, query, v

        @mutation(args={"options": v.optional(v.any())})
        async def upload_url(ctx, options=None):
            return await ctx.storage.generate_upload_url(**(options or {}))

        @query(args={"id": v.id("_storage")})
        async def url(ctx, id):
            return await ctx.storage.get_url(id)

        @mutation(args={"id": v.id("_storage")})
        async def delete(ctx, id):
            await ctx.storage.delete(id)

        @query(args={})
        async def count(ctx):
            return float(len(await ctx.db.system.query("_storage").collect()))
    """,
}
DATA = bytes(range(256)) * 4096 + b"end"  # 1 MiB and 3 bytes: two chunks


class Files:
    """A running server with the files app, and shortcuts for its functions."""

    def __init__(self, http: httpx.AsyncClient, deployment: Any) -> None:
        self.http = http
        self.deployment = deployment

    async def call(self, kind: str, path: str, args: dict[str, Any] | None = None) -> Any:
        response = await self.http.post(f"/api/{kind}", json={"path": path, "args": args or {}})
        body = response.json()
        assert body["status"] == "success", body
        return body["value"]

    async def upload_url(self, **options: Any) -> str:
        url: str = await self.call("mutation", "files:upload_url", {"options": options})
        return url

    async def upload(self, data: bytes = DATA, content_type: str | None = "application/x-test",
                     url: str | None = None, **headers: str) -> httpx.Response:
        target = url or await self.upload_url()
        sent = dict(headers)
        if content_type is not None:
            sent["Content-Type"] = content_type
        return await self.http.post(target, content=data, headers=sent)

    async def stored_nothing(self) -> bool:
        return (await self.call("query", "files:count") == 0
                and await self.deployment.engine.files.blobs.chunk_rows() == 0)


async def start(serve: Any, make_app: Any, limits: FileLimits | None = None) -> Files:
    url, deployment = await serve(make_app(APP), config=EngineConfig(files=limits or FileLimits()))
    return Files(httpx.AsyncClient(base_url=url, timeout=30), deployment)


@pytest.fixture
async def files(serve: Any, make_app: Any) -> AsyncIterator[Files]:
    started = await start(serve, make_app)
    yield started
    await started.http.aclose()


async def test_upload_then_download_with_every_header(files: Files) -> None:
    upload_url = await files.upload_url()
    assert upload_url.startswith(f"{files.http.base_url}".rstrip("/") + "/api/storage/upload?")
    response = await files.upload(url=upload_url)
    assert response.status_code == 200
    storage_id = response.json()["storageId"]
    assert list(response.json()) == ["storageId"]
    url = await files.call("query", "files:url", {"id": storage_id})
    got = await files.http.get(url)
    sha = base64.b64encode(hashlib.sha256(DATA).digest()).decode()
    assert got.status_code == 200 and got.content == DATA
    assert got.headers["content-type"] == "application/x-test"
    assert got.headers["content-length"] == str(len(DATA))
    assert got.headers["etag"] == f'"{sha}"' and got.headers["digest"] == f"sha-256={sha}"
    assert got.headers["accept-ranges"] == "bytes"
    assert got.headers["cache-control"] == "private, max-age=2592000, immutable"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "sandbox"
    head = await files.http.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(DATA))


@pytest.mark.parametrize(("range_header", "status", "start", "end"), [
    ("bytes=0-9", 206, 0, 10),
    ("bytes=1048570-1048577", 206, 1048570, 1048578),  # across the chunk boundary
    ("bytes=1048576-", 206, 1048576, 1048579),
    ("bytes=-5", 206, 1048574, 1048579),
    ("bytes=5-5", 206, 5, 6),
    ("bytes=10-99999999", 206, 10, 1048579),
    ("bytes=0-1,5-6", 200, 0, 1048579),  # several ranges: the whole file
    ("bytes=x-y", 200, 0, 1048579),  # malformed: ignored
    ("items=0-5", 200, 0, 1048579),
])
async def test_range_requests(files: Files, range_header: str, status: int, start: int,
                              end: int) -> None:
    storage_id = (await files.upload()).json()["storageId"]
    url = await files.call("query", "files:url", {"id": storage_id})
    got = await files.http.get(url, headers={"Range": range_header})
    assert got.status_code == status
    assert got.content == DATA[start:end]
    assert got.headers["content-length"] == str(end - start)
    if status == 206:
        assert got.headers["content-range"] == f"bytes {start}-{end - 1}/{len(DATA)}"


@pytest.mark.parametrize("range_header", ["bytes=1048579-", "bytes=2000000-2000001",
                                          "bytes=-0", "bytes=9-3"])
async def test_unsatisfiable_ranges_are_416(files: Files, range_header: str) -> None:
    storage_id = (await files.upload()).json()["storageId"]
    url = await files.call("query", "files:url", {"id": storage_id})
    got = await files.http.get(url, headers={"Range": range_header})
    assert got.status_code == 416 and got.headers["content-range"] == f"bytes */{len(DATA)}"


async def test_conditional_requests(files: Files) -> None:
    storage_id = (await files.upload()).json()["storageId"]
    url = await files.call("query", "files:url", {"id": storage_id})
    etag = (await files.http.head(url)).headers["etag"]
    cached = await files.http.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["etag"] == etag
    assert (await files.http.get(url, headers={"If-None-Match": '"other"'})).status_code == 200
    same = await files.http.get(url, headers={"Range": "bytes=0-3", "If-Range": etag})
    assert same.status_code == 206 and same.content == DATA[:4]
    changed = await files.http.get(url, headers={"Range": "bytes=0-3", "If-Range": '"old"'})
    assert changed.status_code == 200 and changed.content == DATA


async def test_downloads_need_the_signed_url(files: Files) -> None:
    first = (await files.upload(b"first")).json()["storageId"]
    second = (await files.upload(b"second")).json()["storageId"]
    url = await files.call("query", "files:url", {"id": first})
    signature = url.rsplit("/", 1)[1]
    for bad in (f"/api/storage/{first}/{'A' * 22}", f"/api/storage/{second}/{signature}",
                f"/api/storage/not-an-id/{signature}", f"/api/storage/{first}/"):
        response = await files.http.get(bad)
        assert response.status_code == 404, bad
    await files.call("mutation", "files:delete", {"id": first})
    assert (await files.http.get(url)).status_code == 404
    assert await files.call("query", "files:url", {"id": first}) is None


async def test_an_upload_url_is_single_use(files: Files) -> None:
    url = await files.upload_url()
    assert (await files.upload(b"once", url=url)).status_code == 200
    again = await files.upload(b"twice", url=url)
    assert again.status_code == 409 and again.json()["code"] == "UploadUrlUsed"
    assert await files.call("query", "files:count") == 1


@pytest.mark.parametrize(("mangle", "status", "code"), [
    (lambda url: url.split("?")[0], 400, "InvalidUploadUrl"),
    (lambda url: url + "x", 400, "InvalidUploadUrl"),
    (lambda url: url.replace("token=", "token=a"), 400, "InvalidUploadUrl"),
    (lambda url: url.split("=")[0] + "=no-dot-here", 400, "InvalidUploadUrl"),
])
async def test_a_tampered_upload_url_is_refused(files: Files, mangle: Any, status: int,
                                                code: str) -> None:
    response = await files.upload(url=mangle(await files.upload_url()))
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert await files.stored_nothing()


async def test_an_expired_upload_url_is_refused(files: Files) -> None:
    secret = files.deployment.engine.files.secret
    token = sign_upload(secret, UploadGrant.new(time.time() * 1000 - 1))
    response = await files.upload(url=f"/api/storage/upload?token={token}")
    assert response.status_code == 403 and response.json()["code"] == "UploadUrlExpired"
    assert "generate a new one" in response.json()["message"]
    assert await files.stored_nothing()


async def test_size_limits_by_header_and_while_streaming(serve: Any, make_app: Any) -> None:
    files = await start(serve, make_app, FileLimits(max_upload_bytes=100))
    too_big = await files.upload(b"x" * 101)
    assert too_big.status_code == 413 and "limit of 100 bytes" in too_big.json()["message"]

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b"y" * 80
        yield b"y" * 80

    streamed = await files.http.post(await files.upload_url(), content=chunked())
    assert streamed.status_code == 413
    narrowed = await files.upload(b"z" * 20, url=await files.upload_url(max_size=10))
    assert narrowed.status_code == 413 and "limit of 10 bytes" in narrowed.json()["message"]
    assert await files.stored_nothing()
    assert (await files.upload(b"x" * 100)).status_code == 200
    await files.http.aclose()


async def test_content_types(serve: Any, make_app: Any) -> None:
    files = await start(serve, make_app, FileLimits(content_types=("image/*", "text/plain")))
    for content_type, status in (("image/png", 200), ("IMAGE/JPEG", 200),
                                 ("text/plain; charset=utf-8", 200), ("text/html", 415),
                                 (None, 415), ("not a type", 415), ("a/" + "b" * 300, 415)):
        response = await files.upload(b"bytes", content_type=content_type)
        assert response.status_code == status, (content_type, response.text)
        if status == 415:
            assert response.json()["code"] == "UnsupportedContentType"
    only_png = await files.upload_url(content_types=["image/png"])
    refused = await files.upload(b"gif", content_type="image/gif", url=only_png)
    assert refused.status_code == 415 and "allowed: image/png" in refused.json()["message"]
    assert (await files.upload(b"png", content_type="image/png", url=only_png)).status_code == 200
    assert await files.call("query", "files:count") == 4
    await files.http.aclose()


async def test_an_upload_without_content_type_is_stored_without_one(files: Files) -> None:
    storage_id = (await files.upload(b"raw", content_type=None)).json()["storageId"]
    url = await files.call("query", "files:url", {"id": storage_id})
    assert (await files.http.get(url)).headers["content-type"] == "application/octet-stream"


async def test_a_digest_header_is_checked(files: Files) -> None:
    good = base64.b64encode(hashlib.sha256(DATA).digest()).decode()
    ok = await files.upload(Digest=f"sha-256={good}")
    assert ok.status_code == 200
    bad = await files.upload(Digest="sha-256=" + base64.b64encode(b"\0" * 32).decode())
    assert bad.status_code == 400 and bad.json()["code"] == "DigestMismatch"
    malformed = await files.upload(Digest="sha-256=nope")
    assert malformed.status_code == 400 and malformed.json()["code"] == "DigestMismatch"
    assert (await files.upload(Digest="md5=whatever")).status_code == 200, "others ignored"
    assert await files.call("query", "files:count") == 2


async def raw_upload(base: str, path: str, head: bytes) -> tuple[asyncio.StreamReader,
                                                                 asyncio.StreamWriter]:
    parts = urlsplit(base)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                 "Content-Length: 1000000\r\n\r\n".encode() + head)
    await writer.drain()
    return reader, writer


async def test_a_stalled_upload_is_dropped(serve: Any, make_app: Any) -> None:
    files = await start(serve, make_app, FileLimits(upload_idle_seconds=0.3))
    url = await files.upload_url()
    path = "/" + url.split("/", 3)[3]
    reader, writer = await raw_upload(str(files.http.base_url), path, b"x" * 1000)
    status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    assert b" 408 " in status_line
    writer.close()
    assert await files.stored_nothing()
    assert (await files.upload(url=url)).status_code == 200, "the URL was not spent"
    await files.http.aclose()


async def test_a_client_that_disconnects_mid_upload_leaves_nothing(files: Files) -> None:
    url = await files.upload_url()
    path = "/" + url.split("/", 3)[3]
    _, writer = await raw_upload(str(files.http.base_url), path, b"x" * 300_000)
    await asyncio.sleep(0.2)
    writer.close()
    await asyncio.sleep(0.3)
    assert await files.stored_nothing()
    assert (await files.upload(url=url)).status_code == 200, "the URL was not spent"
    assert await files.call("query", "files:count") == 1


async def test_uploads_have_their_own_limit_not_the_request_body_limit(
        make_app: Any, deploy: Any) -> None:
    from reactive_store.server import create_app

    engine = await deploy(make_app(APP))
    engine.deployment.settings.limits = ServerLimits(request_body_bytes=1000)
    app = create_app(engine.deployment, manage_lifespan=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as http:
        files = Files(http, engine.deployment)
        uploaded = await files.upload(b"x" * 5000)
        assert uploaded.status_code == 200, "a file may be larger than a request body"
        refused = await http.post("/api/mutation", content=b"{" + b" " * 2000 + b"}")
        assert refused.status_code == 413 and refused.json()["code"] == "PayloadTooLarge"
