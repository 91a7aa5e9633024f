"""File bytes in Postgres: chunked writes and ranged reads, all-or-nothing uploads (every way
an upload can fail leaves no row), single-use claims, and the cleanup of unreferenced bytes."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from reactive_store.engine.db import SystemTableWriter
from reactive_store.engine.engine import Engine
from reactive_store.engine.system_tables import STORAGE
from reactive_store.errors import DigestMismatch, FileTooLarge, UploadUrlUsed
from reactive_store.ids import new_id
from reactive_store.storage import StorageError
from reactive_store.storage.files import Blob, BlobStore, Claim

APP = {"schema/__init__.py": "from reactive_store import define_schema\n"
                             "schema = define_schema({})\n"}
DATA = bytes(range(256)) * 3 + b"tail"  # 772 bytes: 77 full chunks of 10 and one of 2


@pytest.fixture
async def engine(deploy: Any, make_app: Callable[[dict[str, str]], Path]) -> Engine:
    started: Engine = await deploy(make_app(APP))
    return started


@pytest.fixture
async def blobs(engine: Engine, database_url: str) -> AsyncIterator[BlobStore]:
    store = BlobStore(engine.store.names, STORAGE, chunk_size=10)
    await store.connect(database_url)
    yield store
    await store.close()


async def pieces(data: bytes, size: int = 7, fail_after: int | None = None
                 ) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        if fail_after is not None and offset >= fail_after:
            raise ConnectionResetError("the client went away")
        yield data[offset:offset + size]


def storage_id(engine: Engine) -> str:
    return new_id(engine.store.table_numbers[STORAGE])


async def publish(engine: Engine, blob: Blob) -> None:
    async def insert(writer: SystemTableWriter) -> str:
        return await writer.insert(STORAGE, {"sha256": "x", "size": float(blob.size)},
                                   doc_id=blob.storage_id)

    await engine.write_system("test", insert)


async def read_all(blobs: BlobStore, blob: Blob, start: int = 0, end: int | None = None
                   ) -> bytes:
    return b"".join([piece async for piece in blobs.read(blob, start, end)])


async def nothing_stored(blobs: BlobStore, sid: str) -> bool:
    return await blobs.chunk_rows(sid) == 0 and await blobs.delete_unreferenced([sid]) == 0


async def test_write_then_read_whole_and_every_kind_of_range(engine: Engine,
                                                             blobs: BlobStore) -> None:
    sid = storage_id(engine)
    blob = await blobs.write(sid, pieces(DATA), content_type="application/x-test",
                             max_bytes=10_000)
    assert (blob.size, blob.sha256, blob.chunk_size) == (772, hashlib.sha256(DATA).digest(), 10)
    assert await blobs.chunk_rows(sid) == 78
    assert await blobs.stat(sid) is None, "bytes without a _storage document are no file"
    await publish(engine, blob)
    stat = await blobs.stat(sid)
    assert stat == blob
    assert await read_all(blobs, blob) == DATA
    for start, end in [(0, 1), (0, 10), (9, 11), (10, 20), (5, 772), (771, 772), (3, 3),
                       (700, 10_000), (123, 456)]:
        assert await read_all(blobs, blob, start, end) == DATA[start:end], (start, end)


async def test_an_empty_file(engine: Engine, blobs: BlobStore) -> None:
    blob = await blobs.write(storage_id(engine), pieces(b""), content_type=None, max_bytes=0)
    assert (blob.size, blob.sha256) == (0, hashlib.sha256(b"").digest())
    await publish(engine, blob)
    assert await read_all(blobs, blob) == b""


@pytest.mark.parametrize("failure", ["source", "too_large", "digest"])
async def test_a_failed_upload_leaves_nothing(engine: Engine, blobs: BlobStore,
                                              failure: str) -> None:
    sid = storage_id(engine)
    source = pieces(DATA, fail_after=300 if failure == "source" else None)
    expected: type[BaseException] = {"source": ConnectionResetError, "too_large": FileTooLarge,
                                     "digest": DigestMismatch}[failure]
    with pytest.raises(expected):
        await blobs.write(sid, source, content_type=None,
                          max_bytes=500 if failure == "too_large" else 10_000,
                          sha256=hashlib.sha256(b"other").digest()
                          if failure == "digest" else None,
                          claim=Claim("nonce-" + sid, time.time() * 1000 + 60_000))
    assert await nothing_stored(blobs, sid)
    # The claim rolled back with the rest: the same token can still be used.
    again = await blobs.write(sid, pieces(DATA), content_type=None, max_bytes=10_000,
                              claim=Claim("nonce-" + sid, time.time() * 1000 + 60_000))
    assert again.size == len(DATA)


async def test_a_claim_is_spent_once_and_a_concurrent_use_fails_fast(
        engine: Engine, blobs: BlobStore) -> None:
    claim = Claim("the-nonce", time.time() * 1000 + 60_000)
    await blobs.write(storage_id(engine), pieces(b"first"), content_type=None, max_bytes=100,
                      claim=claim)
    second = storage_id(engine)
    with pytest.raises(UploadUrlUsed, match="already used"):
        await blobs.write(second, pieces(b"second"), content_type=None, max_bytes=100,
                          claim=claim)
    assert await nothing_stored(blobs, second)

    release = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"slow"
        await release.wait()
        yield b"er"

    other = Claim("another-nonce", time.time() * 1000 + 60_000)
    holder = asyncio.create_task(blobs.write(storage_id(engine), slow(), content_type=None,
                                             max_bytes=100, claim=other))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    with pytest.raises(UploadUrlUsed, match="in progress"):
        await blobs.write(storage_id(engine), pieces(b"racer"), content_type=None,
                          max_bytes=100, claim=other)
    assert time.monotonic() - started < 2.0
    release.set()
    assert (await holder).size == 6


async def test_deleting_unreferenced_bytes_spares_published_files(
        engine: Engine, blobs: BlobStore) -> None:
    kept = await blobs.write(storage_id(engine), pieces(DATA), content_type=None,
                             max_bytes=10_000)
    await publish(engine, kept)
    gone = await blobs.write(storage_id(engine), pieces(DATA), content_type=None,
                             max_bytes=10_000)
    assert await blobs.delete_unreferenced([kept.storage_id, gone.storage_id]) == 1
    assert await blobs.chunk_rows(gone.storage_id) == 0, "chunks go with their file"
    assert await blobs.chunk_rows(kept.storage_id) == 78


async def test_the_sweep_removes_only_old_orphans_and_expired_claims(
        engine: Engine, blobs: BlobStore) -> None:
    orphan = await blobs.write(storage_id(engine), pieces(b"orphan"), content_type=None,
                               max_bytes=100,
                               claim=Claim("expired", time.time() * 1000 - 1_000))
    published = await blobs.write(storage_id(engine), pieces(b"file"), content_type=None,
                                  max_bytes=100)
    await publish(engine, published)
    assert await blobs.sweep(grace_seconds=3600) == 0, "a young orphan may still be published"
    await asyncio.sleep(0.05)
    assert await blobs.sweep(grace_seconds=0.01) == 1
    assert await blobs.chunk_rows(orphan.storage_id) == 0
    assert await blobs.stat(published.storage_id) is not None
    # The expired claim is gone, so its nonce could be claimed again (it never will be:
    # the token itself has expired and is refused before storage is reached).
    await blobs.write(storage_id(engine), pieces(b"x"), content_type=None, max_bytes=10,
                      claim=Claim("expired", time.time() * 1000 + 1_000))


async def test_reading_a_file_deleted_meanwhile_fails_instead_of_truncating(
        engine: Engine, blobs: BlobStore) -> None:
    blob = await blobs.write(storage_id(engine), pieces(DATA), content_type=None,
                             max_bytes=10_000)
    await publish(engine, blob)
    stream = blobs.read(blob)
    assert await anext(stream) == DATA[:10]

    async def delete(writer: SystemTableWriter) -> None:
        await writer.delete(blob.storage_id)

    await engine.write_system("test", delete)
    await blobs.delete_unreferenced([blob.storage_id])  # (the deployment may have already)
    assert await blobs.chunk_rows(blob.storage_id) == 0
    with pytest.raises(StorageError, match="deleted while being read"):
        async for _ in stream:
            pass


async def test_the_secret_is_made_once_and_shared(engine: Engine, blobs: BlobStore) -> None:
    assert await blobs.secret() == await engine.files.blobs.secret() == engine.files.secret
    assert len(engine.files.secret) == 32
