"""File storage: uploads through signed URLs, `store` from actions, reads, and cleanup.

A file is its bytes (storage/files.py) plus a `_storage` system document with the same id
(`sha256`, `size`, `contentType`), so files are readable and live like any table. The bytes
are written first, in one transaction, under an id made beforehand; the document is
committed after, by the engine. Deleting a file is deleting its document (in the
mutation's transaction); every process's commit stream then hands the ids whose `_storage`
document a commit wrote to `on_commit`, which deletes the bytes of those that no longer have
one. A sweep removes bytes whose document never committed (a crash between the two steps).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

from reactive_store.engine.db import SystemTableWriter
from reactive_store.engine.file_tokens import (
    UploadGrant,
    check_content_type,
    check_file_signature,
    check_pattern,
    file_signature,
    open_upload,
    parse_digest,
    sign_upload,
)
from reactive_store.engine.readset import WriteSet
from reactive_store.engine.system_tables import STORAGE
from reactive_store.errors import FileTooLarge, InternalError, InvalidIdError, ValidationError
from reactive_store.ids import new_id, table_number_of
from reactive_store.limits import FileLimits
from reactive_store.schema import BY_ID, id_from_key
from reactive_store.storage import Store
from reactive_store.storage.files import Blob, BlobStore, Claim

log = logging.getLogger(__name__)

T = TypeVar("T")
SystemWrite = Callable[[str, Callable[[SystemTableWriter], Awaitable[T]]], Awaitable[T]]
FileData = bytes | bytearray | memoryview | AsyncIterable[bytes] | Iterable[bytes]


def now_ms() -> float:
    return time.time() * 1000.0


async def as_chunks(data: Any) -> AsyncIterator[bytes]:
    """Bytes, or a sync or async iterable of bytes, as an async stream of bytes."""
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data)
        return
    if isinstance(data, AsyncIterable):
        async for piece in data:
            yield _piece(piece)
        return
    if isinstance(data, Iterable) and not isinstance(data, str | dict):
        for piece in data:
            yield _piece(piece)
        return
    raise ValidationError(f"ctx.storage.store() takes bytes or an (async) iterable of bytes, "
                          f"got {type(data).__name__}")


def _piece(piece: Any) -> bytes:
    if not isinstance(piece, bytes | bytearray | memoryview):
        raise ValidationError(f"ctx.storage.store(): the data yielded "
                              f"{type(piece).__name__}, not bytes")
    return bytes(piece)


class FileService:
    """A deployment's files: signed URLs, the write paths, reads, and the cleanup tasks."""

    def __init__(self, store: Store, limits: FileLimits, public_url: str | None,
                 write_system: SystemWrite[Any]) -> None:
        self.blobs = BlobStore(store.names, STORAGE)
        self.limits = limits
        self.public_url = (public_url or "").rstrip("/")
        self._store = store
        self._write_system = write_system
        self._secret: bytes | None = None
        self._doomed: set[str] = set()  # ids whose document a commit wrote: check their bytes
        self._reaper: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, pool_size: int = 4) -> None:
        """Open the blob pool (after the schema push made the tables) and start sweeping."""
        await self.blobs.connect(self._store.url, pool_size)
        self._secret = await self.blobs.secret()
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        for task in (self._sweeper, self._reaper):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._sweeper = self._reaper = None
        await self.blobs.close()

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            raise InternalError("file storage is not started")
        return self._secret

    # -- ids and URLs -----------------------------------------------------------------------
    def check_id(self, storage_id: Any) -> str:
        """`storage_id` when it is an id of `_storage`, else InvalidIdError saying why."""
        try:
            number = table_number_of(storage_id)
        except ValueError as exc:
            raise InvalidIdError(f"ctx.storage: {exc}") from None
        if number != self._store.table_numbers.get(STORAGE):
            raise InvalidIdError(f"ctx.storage: {storage_id!r} is not a storage id (an id of "
                                 "table '_storage'); pass the storageId an upload returned")
        return str(storage_id)

    def url_for(self, storage_id: str) -> str:
        """The download URL of a file (stable; relative when no public URL is configured)."""
        return (f"{self.public_url}/api/storage/{storage_id}/"
                f"{file_signature(self.secret, storage_id)}")

    def upload_url(self, max_size: Any = None, content_types: Any = None) -> str:
        """A single-use upload URL, valid for the configured lifetime; `max_size` (bytes)
        and `content_types` (patterns like "image/*") narrow the deployment's limits."""
        if isinstance(max_size, float) and max_size.is_integer():
            max_size = int(max_size)  # a number from a JS client
        if max_size is not None and (not isinstance(max_size, int) or isinstance(max_size, bool)
                                     or max_size < 0):
            raise ValidationError(f"generate_upload_url: max_size must be a non-negative "
                                  f"integer number of bytes, got {max_size!r}")
        if content_types is None:
            patterns: tuple[str, ...] = ()
        elif isinstance(content_types, list | tuple) and content_types:
            patterns = tuple(check_pattern(p) for p in content_types)
        else:
            raise ValidationError("generate_upload_url: content_types must be a non-empty "
                                  f"list of patterns like 'image/*', got {content_types!r}")
        expires = now_ms() + self.limits.upload_url_seconds * 1000.0
        token = sign_upload(self.secret, UploadGrant.new(expires, max_size, patterns))
        return f"{self.public_url}/api/storage/upload?token={token}"

    # -- writing ----------------------------------------------------------------------------
    async def upload(self, token: str | None, body: AsyncIterable[bytes], *,
                     content_type: str | None, content_length: int | None,
                     digest: str | None) -> str:
        """An upload to a URL from `upload_url`: checked, stored, published. Its storage id."""
        grant = open_upload(self.secret, token, now_ms())
        stored_type = check_content_type(content_type, self.limits.content_types)
        check_content_type(content_type, grant.content_types)
        limit = self.limits.max_upload_bytes
        if grant.max_bytes is not None:
            limit = min(limit, grant.max_bytes)
        if content_length is not None and content_length > limit:
            raise FileTooLarge(f"the file is {content_length} bytes, larger than the limit "
                               f"of {limit} bytes: nothing was stored")
        blob = await self.blobs.write(
            new_id(self._storage_number()), body, content_type=stored_type, max_bytes=limit,
            claim=Claim(grant.nonce, grant.expires_ms), sha256=parse_digest(digest))
        return await self._publish(blob)

    async def store(self, data: Any, content_type: str | None = None) -> str:
        """`ctx.storage.store` in actions: the bytes (or a stream of them), stored now."""
        if content_type is not None and not isinstance(content_type, str):
            raise ValidationError(f"ctx.storage.store(): content_type must be a string, got "
                                  f"{type(content_type).__name__}")
        stored_type = check_content_type(content_type, ())
        blob = await self.blobs.write(
            new_id(self._storage_number()), as_chunks(data), content_type=stored_type,
            max_bytes=self.limits.max_upload_bytes)
        return await self._publish(blob)

    def _storage_number(self) -> int:
        number = self._store.table_numbers.get(STORAGE)
        if number is None:
            raise InternalError("file storage is not started")
        return number

    async def _publish(self, blob: Blob) -> str:
        """Commit the `_storage` document of stored bytes (they become a file)."""
        doc: dict[str, Any] = {"sha256": base64.b64encode(blob.sha256).decode(),
                               "size": float(blob.size)}
        if blob.content_type is not None:
            doc["contentType"] = blob.content_type

        async def insert(writer: SystemTableWriter) -> str:
            return await writer.insert(STORAGE, doc, doc_id=blob.storage_id)

        try:
            await self._write_system("file storage", insert)
        except BaseException:
            # Not a file after all: drop the bytes now (the sweep would, later).
            await asyncio.shield(self._forget(blob.storage_id))
            raise
        return blob.storage_id

    async def _forget(self, storage_id: str) -> None:
        try:
            await self.blobs.delete_unreferenced([storage_id])
        except Exception:
            log.exception("could not delete the bytes of unpublished file %s", storage_id)

    # -- reading ----------------------------------------------------------------------------
    async def open(self, storage_id: str, signature: str | None = None) -> Blob | None:
        """The file, when it exists (and, with `signature`, when that is its URL's)."""
        if signature is not None and not check_file_signature(self.secret, storage_id,
                                                              signature):
            return None
        try:
            self.check_id(storage_id)
        except InvalidIdError:
            return None
        return await self.blobs.stat(storage_id)

    def read(self, blob: Blob, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return self.blobs.read(blob, start, end)

    # -- cleanup ----------------------------------------------------------------------------
    def on_commit(self, writes: WriteSet) -> None:
        """A commit wrote `_storage` documents: delete the bytes of those now gone."""
        keys = writes.keys.get((STORAGE, BY_ID))
        if not keys:
            return
        self._doomed.update(i for i in map(id_from_key, keys) if i is not None)
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap())

    async def _reap(self) -> None:
        while self._doomed:
            ids, self._doomed = sorted(self._doomed), set()
            try:
                await self.blobs.delete_unreferenced(ids)
            except Exception:
                log.exception("deleting the bytes of deleted files failed; the sweep will")

    async def _sweep_forever(self) -> None:
        every = self.limits.sweep_every_seconds
        while True:
            await asyncio.sleep(every if math.isfinite(every) else 3600.0)
            try:
                swept = await self.blobs.sweep(self.limits.orphan_grace_seconds)
                if swept:
                    log.info("swept the bytes of %d unpublished file(s)", swept)
            except Exception:
                log.exception("sweeping unpublished file bytes failed")
