"""File storage end to end: the official npm client's upload URL flow against a real server
(upload, `_storage` live, `get_url` with a Range request, single use, delete), and a 200 MB
upload and download through a server process whose memory stays flat."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.clients import http_call
from tests.e2e.servers import ServeApp
from tests.support import write_app

pytestmark = pytest.mark.e2e

APP = {
    "schema/__init__.py": """
        from reactive_store import define_schema
        schema = define_schema({})
    """,
    "functions/files.py": """
        from reactive_store import mutation, query, v

        @mutation(args={})
        async def generateUploadUrl(ctx):
            return await ctx.storage.generate_upload_url()

        @query(args={})
        async def list(ctx):
            return await ctx.db.system.query("_storage").collect()

        @query(args={"storageId": v.id("_storage")})
        async def url(ctx, storageId):
            return await ctx.storage.get_url(storageId)

        @mutation(args={"storageId": v.id("_storage")})
        async def remove(ctx, storageId):
            await ctx.storage.delete(storageId)
    """,
}
TEXT = "Hello, file storage! " * 50


async def run_node(js_dir: Path, script: str, url: str) -> list[dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        "node", script, url, cwd=js_dir, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, f"{script} failed:\n{err.decode()[-4000:]}\n{out.decode()}"
    return [json.loads(line) for line in out.decode().splitlines()]


async def test_the_upload_url_flow_with_the_official_client(
        serve_app: ServeApp, tmp_path: Path, js_client_dir: Path) -> None:
    url = await serve_app(write_app(tmp_path / "app", APP))
    steps = await run_node(js_client_dir, "files_client.mjs", url)
    by_step = {s["step"]: s for s in steps if s["step"] != "list"}
    uploaded = by_step["uploaded"]
    assert uploaded["status"] == 200
    storage_id = uploaded["body"]["storageId"]
    file = by_step["listed"]["file"]
    assert file == {"_id": storage_id, "_creationTime": file["_creationTime"],
                    "contentType": "text/plain", "size": len(TEXT),
                    "sha256": base64.b64encode(hashlib.sha256(TEXT.encode()).digest()).decode()}
    assert by_step["range"] == {"step": "range", "status": 206, "text": TEXT[7:19],
                                "contentRange": f"bytes 7-18/{len(TEXT)}",
                                "contentType": "text/plain"}
    assert by_step["whole"]["status"] == 200 and by_step["whole"]["text"] == "same"
    assert by_step["whole"]["etag"] == f'"{file["sha256"]}"'
    assert by_step["reused"]["status"] == 409
    assert by_step["reused"]["body"]["code"] == "UploadUrlUsed"
    assert by_step["removed"]["ids"] == []
    assert by_step["gone"]["status"] == 404
    lists = [s["ids"] for s in steps if s["step"] == "list"]
    assert lists[0] == [] and [storage_id] in lists and lists[-1] == [], "pushed live"
    assert steps[-1] == {"step": "done"}
    assert await http_call(url, "query", "files:list", {}) == []


SIZE = 200 * 1024 * 1024
BLOCK = os.urandom(1 << 20)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class RssWatch:
    """Samples a process's resident memory every 20 ms while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_bytes(self.pid))
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> RssWatch:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.peak = max(self.peak, rss_bytes(self.pid))


async def generated(total: int, digest: Any) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        block = BLOCK[: min(len(BLOCK), total - sent)]
        digest.update(block)
        sent += len(block)
        yield block


async def test_a_200_mb_file_goes_in_and_out_with_flat_server_memory(
        serve_app: ServeApp, tmp_path: Path) -> None:
    url = await serve_app(write_app(tmp_path / "app", APP))
    pid = serve_app.server(url).proc.pid  # type: ignore[union-attr]
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        # Warm every code path once, so the baseline holds the server's working set.
        small = await http.post(await http_call(url, "mutation", "files:generateUploadUrl", {}),
                                content=b"warm-up" * 1000)
        warm_id = small.json()["storageId"]
        warm_url = await http_call(url, "query", "files:url", {"storageId": warm_id})
        assert (await http.get(warm_url)).content == b"warm-up" * 1000
        baseline = rss_bytes(pid)

        upload_url = await http_call(url, "mutation", "files:generateUploadUrl", {})
        sent = hashlib.sha256()
        started = time.monotonic()
        async with RssWatch(pid) as upload_watch:
            response = await http.post(upload_url, content=generated(SIZE, sent),
                                       headers={"Content-Type": "application/octet-stream"})
        upload_s = time.monotonic() - started
        assert response.status_code == 200, response.text
        storage_id = response.json()["storageId"]

        file_url = await http_call(url, "query", "files:url", {"storageId": storage_id})
        received, length = hashlib.sha256(), 0
        started = time.monotonic()
        async with RssWatch(pid) as download_watch, http.stream("GET", file_url) as got:
            assert got.headers["content-length"] == str(SIZE)
            async for piece in got.aiter_bytes():
                received.update(piece)
                length += len(piece)
        download_s = time.monotonic() - started
    assert length == SIZE and received.digest() == sent.digest()
    growth = max(upload_watch.peak, download_watch.peak) - baseline
    print(f"\n200 MB: upload {upload_s:.1f} s, download {download_s:.1f} s; server RSS "
          f"{baseline / 2**20:.0f} MiB before, +{growth / 2**20:.1f} MiB at peak")
    assert growth < 48 * 2**20, f"server memory grew by {growth / 2**20:.0f} MiB"
