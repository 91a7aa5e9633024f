"""`ctx.storage` as each kind of function sees it (Convex's file storage API, Python spelling).

- queries: `get_url(id)`;
- mutations: also `generate_upload_url()` and `delete(id)`, in the mutation's transaction;
- actions (and HTTP routes): `generate_upload_url()`, `store(data, content_type=...)`,
  `get(id)`, `get_stream(id)`, `get_url(id)`, `delete(id)`, each its own transaction.

A call a kind of function cannot make raises an error that says where it can be made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from reactive_store.engine.db import DatabaseReader, DatabaseWriter, SystemTableWriter
from reactive_store.engine.files import FileService
from reactive_store.errors import WriteError
from reactive_store.types import Document

T = TypeVar("T")
Read = Callable[[Callable[[DatabaseReader], Awaitable[T]]], Awaitable[T]]
SystemWrite = Callable[[str, Callable[[SystemTableWriter], Awaitable[T]]], Awaitable[T]]


def _unavailable(what: str, where: str) -> WriteError:
    return WriteError(f"ctx.storage.{what}() is not available in {where}")


async def _delete_file(writer: SystemTableWriter, storage_id: str) -> None:
    if await writer.get(storage_id) is None:
        raise WriteError(f"ctx.storage.delete(): file {storage_id!r} does not exist")
    await writer.delete(storage_id)


class QueryStorage:
    """`ctx.storage` in a query: read-only, recorded like any other read."""

    def __init__(self, files: FileService, db: DatabaseReader) -> None:
        self._files = files
        self._db = db

    async def _document(self, storage_id: Any) -> Document | None:
        return await self._db.system.get(self._files.check_id(storage_id))

    async def get_url(self, storage_id: str) -> str | None:
        """A URL serving the file (content type, length, ETag, Range requests), or None
        when it does not exist. The same file always has the same URL."""
        if await self._document(storage_id) is None:
            return None
        return self._files.url_for(storage_id)

    async def generate_upload_url(self, *, max_size: int | None = None,
                                  content_types: list[str] | None = None) -> str:
        raise _unavailable("generate_upload_url", "a query: call it from a mutation or action")

    async def delete(self, storage_id: str) -> None:
        raise _unavailable("delete", "a query: call it from a mutation or action")

    async def store(self, data: Any, content_type: str | None = None) -> str:
        raise _unavailable("store", "a query: store files from an action, or upload them "
                                    "with generate_upload_url()")

    async def get(self, storage_id: str) -> bytes | None:
        raise _unavailable("get", "a query: read file bytes in an action, or serve them "
                                  "with get_url()")

    async def get_stream(self, storage_id: str) -> AsyncIterator[bytes] | None:
        raise _unavailable("get_stream", "a query: read file bytes in an action")


class MutationStorage(QueryStorage):
    """`ctx.storage` in a mutation: upload URLs, and deletes that commit with the mutation
    (the bytes go once it has committed)."""

    def __init__(self, files: FileService, db: DatabaseWriter) -> None:
        super().__init__(files, db)
        self._writer = SystemTableWriter(db)

    async def generate_upload_url(self, *, max_size: int | None = None,
                                  content_types: list[str] | None = None) -> str:
        """A short-lived, single-use URL to `POST` one file's bytes to; the response is
        `{"storageId": ...}`. `max_size` and `content_types` narrow what it accepts."""
        return self._files.upload_url(max_size, content_types)

    async def delete(self, storage_id: str) -> None:
        """Delete the file (its `_storage` document now, its bytes after the commit)."""
        await _delete_file(self._writer, self._files.check_id(storage_id))

    async def store(self, data: Any, content_type: str | None = None) -> str:
        raise _unavailable("store", "a mutation (it may be retried): store files from an "
                                    "action, or upload them with generate_upload_url()")

    async def get(self, storage_id: str) -> bytes | None:
        raise _unavailable("get", "a mutation: read file bytes in an action")

    async def get_stream(self, storage_id: str) -> AsyncIterator[bytes] | None:
        raise _unavailable("get_stream", "a mutation: read file bytes in an action")


class ActionStorage:
    """`ctx.storage` in an action or HTTP route: every call stands alone."""

    def __init__(self, files: FileService, read: Read[Any], write: SystemWrite[Any]) -> None:
        self._files = files
        self._read = read
        self._write = write

    async def generate_upload_url(self, *, max_size: int | None = None,
                                  content_types: list[str] | None = None) -> str:
        return self._files.upload_url(max_size, content_types)

    async def store(self, data: Any, content_type: str | None = None) -> str:
        """Store bytes (or a sync or async iterable of bytes, streamed in constant memory)
        as a new file; returns its storage id."""
        return await self._files.store(data, content_type)

    async def get(self, storage_id: str) -> bytes | None:
        """The file's bytes, or None when it does not exist (use get_stream for big ones)."""
        stream = await self.get_stream(storage_id)
        if stream is None:
            return None
        return b"".join([piece async for piece in stream])

    async def get_stream(self, storage_id: str) -> AsyncIterator[bytes] | None:
        """The file's bytes as an async iterator of chunks, or None when it does not exist."""
        blob = await self._files.open(self._files.check_id(storage_id))
        return None if blob is None else self._files.read(blob)

    async def get_url(self, storage_id: str) -> str | None:
        checked = self._files.check_id(storage_id)

        async def exists(db: DatabaseReader) -> bool:
            return await db.system.get(checked) is not None

        return self._files.url_for(checked) if await self._read(exists) else None

    async def delete(self, storage_id: str) -> None:
        checked = self._files.check_id(storage_id)

        async def delete(writer: SystemTableWriter) -> None:
            await _delete_file(writer, checked)

        await self._write("ctx.storage.delete", delete)

