"""File bytes in Postgres: fixed-size chunks streamed in and out in constant memory.

A file is one `_file_blobs` row (size, SHA-256, content type, chunk size) and its bytes in
`_file_chunks` rows of `chunk_size` bytes. An upload is one transaction: the blob row, every
chunk and the single-use claim of its upload token commit together or not at all, so an
upload that fails half-way (a dropped client, a size limit, a bad digest, a crash) leaves
nothing behind. The `_storage` document that makes a file visible is committed after, by the
engine, under the same id; bytes whose document never committed (a crash in between) or
was deleted are removed by `delete_unreferenced` and `sweep`. Blob I/O has its own small
pool, so long uploads never hold the connections functions run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import os
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from reactive_store.errors import DigestMismatch, FileTooLarge, UploadUrlUsed
from reactive_store.storage.names import Names
from reactive_store.storage.store import StorageError

CHUNK_SIZE = 1 << 20  # 1 MiB: few rows per file, and a bounded buffer per transfer
PREFETCH = 2  # chunks fetched ahead of the one being sent
CLAIM_WAIT = "200ms"  # a second upload on a token in use fails fast instead of queueing


@dataclass(frozen=True)
class Blob:
    """A stored file's bytes as storage knows them."""

    storage_id: str
    size: int
    sha256: bytes
    content_type: str | None
    chunk_size: int


@dataclass(frozen=True)
class Claim:
    """The single-use token an upload spends: `nonce`, valid until `expires_ms`."""

    nonce: str
    expires_ms: float


class BlobStore:
    """The bytes of a deployment's files; `documents` names its `_storage` table."""

    def __init__(self, names: Names, documents: str, chunk_size: int = CHUNK_SIZE) -> None:
        self._n = names
        self._blobs = names.system("file_blobs")
        self._chunks = names.system("file_chunks")
        self._claims = names.system("upload_claims")
        self._documents = names.table(documents)
        self.chunk_size = chunk_size
        self._connected: asyncpg.Pool | None = None

    async def connect(self, url: str, max_size: int = 4) -> None:
        try:
            self._connected = await asyncpg.create_pool(url, min_size=1, max_size=max_size)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StorageError(f"cannot connect to the database: {exc}") from exc

    @property
    def _pool(self) -> asyncpg.Pool:
        if self._connected is None:
            raise StorageError("file storage is not connected")
        return self._connected

    async def close(self) -> None:
        if self._connected is not None:
            await self._connected.close()
            self._connected = None

    async def secret(self) -> bytes:
        """The deployment's URL-signing secret, made once by whichever process comes first."""
        table = self._n.system("file_secret")
        await self._pool.execute(f"INSERT INTO {table} (id, secret) VALUES (1, $1) "
                                 "ON CONFLICT (id) DO NOTHING", os.urandom(32))
        secret: bytes = await self._pool.fetchval(f"SELECT secret FROM {table} WHERE id = 1")
        return secret

    async def write(self, storage_id: str, chunks: AsyncIterable[bytes], *,
                    content_type: str | None, max_bytes: int, claim: Claim | None = None,
                    sha256: bytes | None = None) -> Blob:
        """Store the bytes `chunks` yields as `storage_id`, all or nothing.

        FileTooLarge past `max_bytes`, DigestMismatch when `sha256` is given and differs,
        UploadUrlUsed when `claim` was already spent; the source's own errors pass through.
        Nothing stays in any of these cases.
        """
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    if claim is not None:
                        await self._claim(conn, claim)
                    await conn.execute(
                        f"INSERT INTO {self._blobs} (storage_id, size, sha256, content_type, "
                        "chunk_size) VALUES ($1, 0, '', $2, $3)",
                        storage_id, content_type, self.chunk_size)
                    size, digest = await self._write_chunks(conn, storage_id, chunks, max_bytes)
                    if sha256 is not None and sha256 != digest:
                        raise DigestMismatch("the bytes received do not match the Digest "
                                             "header's sha-256: nothing was stored")
                    await conn.execute(
                        f"UPDATE {self._blobs} SET size = $2, sha256 = $3, "
                        "created_at = clock_timestamp() WHERE storage_id = $1",
                        storage_id, size, digest)
            except asyncpg.PostgresError as exc:
                raise StorageError(f"storing a file failed: {exc}") from exc
        return Blob(storage_id, size, digest, content_type, self.chunk_size)

    async def _claim(self, conn: asyncpg.Connection, claim: Claim) -> None:
        await conn.execute(f"SET LOCAL lock_timeout = '{CLAIM_WAIT}'")
        try:
            await conn.execute(
                f"INSERT INTO {self._claims} (nonce, expires_at) "
                "VALUES ($1, to_timestamp($2 / 1000.0))", claim.nonce, claim.expires_ms)
        except asyncpg.UniqueViolationError:
            raise UploadUrlUsed("this upload URL was already used; generate a new one for "
                                "each file") from None
        except asyncpg.LockNotAvailableError:
            raise UploadUrlUsed("another upload to this URL is in progress; an upload URL "
                                "takes one file") from None
        await conn.execute("SET LOCAL lock_timeout = 0")

    async def _write_chunks(self, conn: asyncpg.Connection, storage_id: str,
                            chunks: AsyncIterable[bytes], max_bytes: int) -> tuple[int, bytes]:
        """Insert the bytes as chunk rows; one insert is in flight while the next chunk is
        received, so the network and the database work at the same time."""
        sql = f"INSERT INTO {self._chunks} (storage_id, seq, data) VALUES ($1, $2, $3)"
        hasher, size, seq = hashlib.sha256(), 0, 0
        buffer = bytearray()
        pending: asyncio.Task[Any] | None = None
        try:
            async for piece in chunks:
                size += len(piece)
                if size > max_bytes:
                    raise FileTooLarge(f"the file is larger than the limit of {max_bytes} "
                                       "bytes: nothing was stored")
                hasher.update(piece)
                buffer += piece
                while len(buffer) >= self.chunk_size:
                    data = bytes(buffer[: self.chunk_size])
                    del buffer[: self.chunk_size]
                    if pending is not None:
                        await pending
                    pending = asyncio.create_task(conn.execute(sql, storage_id, seq, data))
                    seq += 1
            if pending is not None:
                await pending
                pending = None
            if buffer:
                await conn.execute(sql, storage_id, seq, bytes(buffer))
        finally:
            if pending is not None:  # the source failed: let the insert finish, then roll back
                with contextlib.suppress(Exception):
                    await pending
        return size, hasher.digest()

    async def stat(self, storage_id: str) -> Blob | None:
        """The file, if its bytes are stored and its `_storage` document is committed."""
        rec = await self._pool.fetchrow(
            f"SELECT b.size, b.sha256, b.content_type, b.chunk_size FROM {self._blobs} b "
            f"JOIN {self._documents} d ON d._id = b.storage_id WHERE b.storage_id = $1",
            storage_id)
        if rec is None:
            return None
        return Blob(storage_id, rec[0], rec[1], rec[2], rec[3])

    async def read(self, blob: Blob, start: int = 0, end: int | None = None
                   ) -> AsyncIterator[bytes]:
        """Bytes [start, end) of the file, chunk by chunk; the next chunks are fetched while
        the caller sends this one (at most PREFETCH + 1 chunks in memory). StorageError
        when the file is deleted while being read."""
        end = blob.size if end is None else min(end, blob.size)
        if start >= end:
            return
        size = blob.chunk_size
        seqs = iter(range(start // size, (end - 1) // size + 1))
        whole = f"SELECT data FROM {self._chunks} WHERE storage_id = $1 AND seq = $2"
        part = (f"SELECT substring(data FROM $3 FOR $4) FROM {self._chunks} "
                "WHERE storage_id = $1 AND seq = $2")

        def fetch(seq: int) -> asyncio.Task[Any]:
            lo = max(start, seq * size) - seq * size
            hi = min(end, (seq + 1) * size) - seq * size
            if lo == 0 and hi == size:
                query = self._pool.fetchval(whole, blob.storage_id, seq)
            else:  # only the slices of a partial chunk are read from the toast table
                query = self._pool.fetchval(part, blob.storage_id, seq, lo + 1, hi - lo)
            return asyncio.create_task(query)

        ahead = [fetch(seq) for seq in itertools.islice(seqs, PREFETCH + 1)]
        try:
            while ahead:
                data = await ahead.pop(0)
                if data is None:
                    raise StorageError(f"file {blob.storage_id} was deleted while being read")
                ahead.extend(fetch(seq) for seq in itertools.islice(seqs, 1))
                yield data
        finally:
            for task in ahead:  # the caller stopped early: let the fetches finish quietly
                with contextlib.suppress(Exception):
                    await task

    async def delete_unreferenced(self, storage_ids: list[str]) -> int:
        """Delete the bytes of these files whose `_storage` document does not exist (a
        committed delete); ids whose document exists are left alone. The count deleted."""
        status: str = await self._pool.execute(
            f"DELETE FROM {self._blobs} b WHERE b.storage_id = ANY($1::text[]) AND NOT EXISTS "
            f"(SELECT 1 FROM {self._documents} d WHERE d._id = b.storage_id)", storage_ids)
        return int(status.split()[-1])

    async def sweep(self, grace_seconds: float) -> int:
        """Delete bytes that no `_storage` document has referred to for `grace_seconds` (an
        upload whose document never committed), and spent claims past their expiry."""
        status: str = await self._pool.execute(
            f"DELETE FROM {self._blobs} b WHERE b.created_at < clock_timestamp() - "
            "make_interval(secs => $1) AND NOT EXISTS "
            f"(SELECT 1 FROM {self._documents} d WHERE d._id = b.storage_id)", grace_seconds)
        await self._pool.execute(f"DELETE FROM {self._claims} WHERE expires_at < now()")
        return int(status.split()[-1])

    async def chunk_rows(self, storage_id: str | None = None) -> int:
        """How many chunk rows there are (of one file, or of all): for tests and checks."""
        if storage_id is None:
            count: int = await self._pool.fetchval(f"SELECT count(*) FROM {self._chunks}")
        else:
            count = await self._pool.fetchval(
                f"SELECT count(*) FROM {self._chunks} WHERE storage_id = $1", storage_id)
        return count
