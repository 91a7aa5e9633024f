"""`ctx.storage` from functions: storing and reading in actions, URLs in every kind, deletes
that remove the bytes, `_storage` live like any table, `v.id("_storage")`, and an error that
says where to go for every call a kind of function cannot make."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reactive_store.engine.engine import Engine
from reactive_store.engine.system_tables import STORAGE
from reactive_store.errors import (
    FileTooLarge,
    InvalidIdError,
    UnsupportedContentType,
    ValidationError,
    WriteError,
)
from reactive_store.ids import new_id
from reactive_store.limits import FileLimits
from tests.support import until

APP = {
    "schema/__init__.py": """
        from reactive_store import define_schema, define_table, v
        schema = define_schema({
            "docs": define_table({"title": v.string(), "file": v.id("_storage")}),
        })
    """,
    "functions/files.py": """
        from reactive_store import action, mutation, query, v

        @action(args={"text": v.string(), "how": v.string()})
        async def store(ctx, text, how):
            data = text.encode()
            if how == "async":
                async def gen():
                    for i in range(0, len(data), 3):
                        yield data[i:i + 3]
                return await ctx.storage.store(gen(), content_type="text/plain")
            if how == "iter":
                return await ctx.storage.store([data[:2], data[2:]])
            return await ctx.storage.store(data, content_type="text/plain; charset=utf-8")

        @action(args={"id": v.id("_storage")})
        async def get(ctx, id):
            data = await ctx.storage.get(id)
            return None if data is None else data.decode()

        @action(args={"id": v.id("_storage")})
        async def stream(ctx, id):
            chunks = await ctx.storage.get_stream(id)
            return None if chunks is None else [len(c) async for c in chunks]

        @action(args={"id": v.string()})
        async def action_url(ctx, id):
            return await ctx.storage.get_url(id)

        @action(args={"id": v.id("_storage")})
        async def action_delete(ctx, id):
            await ctx.storage.delete(id)

        @action(args={"data": v.any()})
        async def store_any(ctx, data):
            return await ctx.storage.store(data)

        @action(args={"ct": v.string()})
        async def store_typed(ctx, ct):
            return await ctx.storage.store(b"x", content_type=ct)

        @query(args={"id": v.string()})
        async def url(ctx, id):
            return await ctx.storage.get_url(id)

        @query(args={})
        async def files(ctx):
            return [{"size": f["size"], "contentType": f.get("contentType")}
                    for f in await ctx.db.system.query("_storage").collect()]

        @query(args={"id": v.id("_storage")})
        async def meta(ctx, id):
            return await ctx.db.system.get(id)

        @mutation(args={"id": v.id("_storage")})
        async def delete(ctx, id):
            await ctx.storage.delete(id)

        @mutation(args={"id": v.id("_storage")})
        async def mutation_url(ctx, id):
            return await ctx.storage.get_url(id)

        @mutation(args={"options": v.any()})
        async def upload_url(ctx, options):
            return await ctx.storage.generate_upload_url(**options)

        @mutation(args={"title": v.string(), "file": v.id("_storage")})
        async def attach(ctx, title, file):
            return await ctx.db.insert("docs", {"title": title, "file": file})

        @query(args={"what": v.string()})
        async def forbidden_in_query(ctx, what):
            if what == "upload":
                return await ctx.storage.generate_upload_url()
            if what == "store":
                return await ctx.storage.store(b"x")
            if what == "get":
                return await ctx.storage.get("x")
            return await ctx.storage.delete("x")

        @mutation(args={"what": v.string()})
        async def forbidden_in_mutation(ctx, what):
            if what == "store":
                return await ctx.storage.store(b"x")
            if what == "stream":
                return await ctx.storage.get_stream("x")
            return await ctx.storage.get("x")
    """,
}


@pytest.fixture
async def app(deploy: Any, make_app: Callable[[dict[str, str]], Path]) -> Engine:
    engine: Engine = await deploy(make_app(APP))
    return engine


async def act(engine: Engine, path: str, args: dict[str, Any]) -> Any:
    return (await engine.run_action(path, args)).value


async def test_store_get_and_stream_in_actions(app: Engine) -> None:
    text = "hello, files " * 10
    for how, content_type in (("bytes", "text/plain; charset=utf-8"), ("async", "text/plain"),
                              ("iter", None)):
        sid = await act(app, "files:store", {"text": text, "how": how})
        assert await act(app, "files:get", {"id": sid}) == text
        assert await act(app, "files:stream", {"id": sid}) == [len(text)]
        meta = (await app.run_query("files:meta", {"id": sid})).value
        expected = {"_id": sid, "_creationTime": meta["_creationTime"], "size": 130.0,
                    "sha256": base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}
        if content_type is not None:
            expected["contentType"] = content_type
        assert meta == expected


async def test_urls_from_every_kind_of_function_are_stable(app: Engine) -> None:
    sid = await act(app, "files:store", {"text": "x", "how": "bytes"})
    url = (await app.run_query("files:url", {"id": sid})).value
    assert url.startswith(f"/api/storage/{sid}/") and len(url.rsplit("/", 1)[1]) == 22
    assert (await app.run_query("files:url", {"id": sid})).value == url
    assert (await app.run_mutation("files:mutation_url", {"id": sid})).value == url
    assert await act(app, "files:action_url", {"id": sid}) == url
    other = await act(app, "files:store", {"text": "y", "how": "bytes"})
    assert (await app.run_query("files:url", {"id": other})).value != url


async def test_delete_removes_the_document_then_the_bytes(app: Engine) -> None:
    first = await act(app, "files:store", {"text": "one", "how": "bytes"})
    second = await act(app, "files:store", {"text": "two", "how": "bytes"})
    await app.run_mutation("files:delete", {"id": first})
    await act(app, "files:action_delete", {"id": second})
    for sid in (first, second):
        assert (await app.run_query("files:url", {"id": sid})).value is None
        assert await act(app, "files:get", {"id": sid}) is None
        assert await act(app, "files:stream", {"id": sid}) is None

    async def bytes_gone() -> bool:
        return await app.files.blobs.chunk_rows() == 0

    await until(bytes_gone)
    with pytest.raises(WriteError, match="does not exist"):
        await app.run_mutation("files:delete", {"id": first})
    with pytest.raises(WriteError, match="does not exist"):
        await act(app, "files:action_delete", {"id": first})


async def test_storage_is_live_like_any_table(app: Engine) -> None:
    manager = app.deployment.subscriptions  # type: ignore[attr-defined]
    listing = manager.subscribe("files:files", {}, None, lambda: None)
    await manager.settled()
    assert listing.value == []
    sid = await act(app, "files:store", {"text": "live", "how": "bytes"})
    url_query = manager.subscribe("files:url", {"id": sid}, None, lambda: None)

    async def listed() -> bool:
        await manager.settled()
        return bool(listing.value == [{"size": 4.0, "contentType": "text/plain; charset=utf-8"}])

    await until(listed)
    assert url_query.value is not None
    outcome = await app.run_mutation("files:delete", {"id": sid})
    await manager.settled(outcome.ts)
    assert listing.value == [] and url_query.value is None


async def test_storage_ids_are_checked(app: Engine) -> None:
    sid = await act(app, "files:store", {"text": "x", "how": "bytes"})
    doc = (await app.run_mutation("files:attach", {"title": "t", "file": sid})).value
    with pytest.raises(ValidationError, match="expected an id of table '_storage'"):
        await app.run_mutation("files:attach", {"title": "t", "file": doc})
    with pytest.raises(InvalidIdError, match="not a storage id"):
        await app.run_query("files:url", {"id": doc})
    with pytest.raises(InvalidIdError, match="invalid id"):
        await app.run_query("files:url", {"id": "not-an-id"})
    missing = new_id(app.store.table_numbers[STORAGE])
    assert (await app.run_query("files:url", {"id": missing})).value is None
    assert await act(app, "files:get", {"id": missing}) is None


@pytest.mark.parametrize("what", ["upload", "store", "get", "delete"])
async def test_a_query_cannot_write_or_read_bytes(app: Engine, what: str) -> None:
    with pytest.raises(WriteError, match="is not available in a query"):
        await app.run_query("files:forbidden_in_query", {"what": what})


@pytest.mark.parametrize("what", ["store", "stream", "get"])
async def test_a_mutation_cannot_touch_bytes(app: Engine, what: str) -> None:
    with pytest.raises(WriteError, match="is not available in a mutation"):
        await app.run_mutation("files:forbidden_in_mutation", {"what": what})


async def test_store_refuses_what_is_not_bytes_and_bad_content_types(app: Engine) -> None:
    with pytest.raises(ValidationError, match="takes bytes"):
        await act(app, "files:store_any", {"data": "a string"})
    with pytest.raises(ValidationError, match="yielded int"):
        await act(app, "files:store_any", {"data": [1, 2]})
    with pytest.raises(UnsupportedContentType, match="is not a media type"):
        await act(app, "files:store_typed", {"ct": "not a type"})
    assert (await app.run_query("files:files", {})).value == []
    assert await app.files.blobs.chunk_rows() == 0


async def test_store_obeys_the_size_limit(deploy: Any,
                                          make_app: Callable[[dict[str, str]], Path]) -> None:
    from reactive_store.engine.engine import EngineConfig

    small: Engine = await deploy(make_app(APP),
                                 config=EngineConfig(files=FileLimits(max_upload_bytes=5)))
    with pytest.raises(FileTooLarge, match="limit of 5 bytes"):
        await act(small, "files:store", {"text": "123456", "how": "async"})
    assert await act(small, "files:store", {"text": "12345", "how": "async"})
    assert await small.files.blobs.chunk_rows() == 1


@pytest.mark.parametrize(("options", "message"), [
    ({"max_size": -1}, "max_size must be a non-negative integer"),
    ({"max_size": 1.5}, "max_size must be a non-negative integer"),
    ({"content_types": []}, "content_types must be a non-empty list"),
    ({"content_types": ["image"]}, "is not like 'image/png'"),
])
async def test_upload_url_options_are_checked(app: Engine, options: dict[str, Any],
                                              message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        await app.run_mutation("files:upload_url", {"options": options})


async def test_a_file_whose_document_cannot_commit_leaves_no_bytes(app: Engine) -> None:
    real = app.files._write_system  # the test stands in for a failing commit

    async def failing(label: str, body: Any) -> Any:
        raise RuntimeError("the database went away")

    app.files._write_system = failing
    try:
        with pytest.raises(RuntimeError, match="went away"):
            await act(app, "files:store", {"text": "lost", "how": "bytes"})
    finally:
        app.files._write_system = real
    assert await app.files.blobs.chunk_rows() == 0


async def test_the_running_deployment_sweeps_unpublished_bytes(
        deploy: Any, make_app: Callable[[dict[str, str]], Path]) -> None:
    from reactive_store.engine.engine import EngineConfig

    # The grace covers the published file's own upload: with none, a sweep running between
    # its bytes and its document's commit takes its bytes, as it should an abandoned upload.
    limits = FileLimits(sweep_every_seconds=0.05, orphan_grace_seconds=1.0)
    engine: Engine = await deploy(make_app(APP), config=EngineConfig(files=limits))
    published = await act(engine, "files:store", {"text": "kept", "how": "bytes"})

    async def chunks() -> Any:
        yield b"bytes whose document never committed"

    orphan = new_id(engine.store.table_numbers[STORAGE])
    await engine.files.blobs.write(orphan, chunks(), content_type=None, max_bytes=100)

    async def swept() -> bool:
        return await engine.files.blobs.chunk_rows(orphan) == 0

    await until(swept)
    assert await act(engine, "files:get", {"id": published}) == "kept"
