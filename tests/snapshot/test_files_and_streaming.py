"""File bytes travel with a snapshot; a large export keeps memory flat."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from reactive_store import values
from reactive_store.engine.engine import Engine
from reactive_store.ids import new_id
from reactive_store.schema import all_indexes, index_keys
from reactive_store.snapshot.exporter import export_snapshot
from reactive_store.snapshot.importer import Mode, import_source
from reactive_store.snapshot.progress import ProgressBar
from reactive_store.snapshot.sources import open_source


async def file_bytes(engine: Engine, storage_id: str) -> bytes | None:
    blob = await engine.files.open(storage_id)
    if blob is None:
        return None
    return b"".join([chunk async for chunk in engine.files.read(blob)])


async def test_files_are_exported_and_restored_under_their_ids(
        library: Engine, fresh_library: Callable[[], Any], tmp_path: Path) -> None:
    first = (await library.run_action("library:store_text", {"text": "hello"})).value
    second = (await library.run_action("library:store_text", {"text": "x" * 3_000_000})).value
    report = await export_snapshot(library, tmp_path / "s.zip", include_storage=True)
    assert report.files == 2
    with zipfile.ZipFile(tmp_path / "s.zip") as z:
        assert f"_storage/{first}.txt" in z.namelist()
        assert z.read(f"_storage/{first}.txt") == b"hello"
    target: Engine = await fresh_library()
    source = open_source(tmp_path / "s.zip", target.schema)
    imported = await import_source(target, source, Mode.REQUIRE_EMPTY)
    assert imported.files == 2
    assert await file_bytes(target, first) == b"hello"
    assert await file_bytes(target, second) == b"x" * 3_000_000
    url = (await target.run_query("library:file_url", {"id": first})).value
    assert url is not None and first in url


async def test_without_the_flag_no_file_is_exported(library: Engine, tmp_path: Path) -> None:
    await library.run_action("library:store_text", {"text": "hello"})
    await export_snapshot(library, tmp_path / "s.zip")
    with zipfile.ZipFile(tmp_path / "s.zip") as z:
        assert not [n for n in z.namelist() if n.startswith("_storage")]


async def test_a_failed_import_leaves_no_file_bytes(library: Engine,
                                                   fresh_library: Callable[[], Any],
                                                   tmp_path: Path) -> None:
    stored = (await library.run_action("library:store_text", {"text": "hello"})).value
    await library.run_mutation("library:add_author", {"name": "Ada"})
    await export_snapshot(library, tmp_path / "s.zip", include_storage=True)
    target: Engine = await fresh_library()
    await target.run_mutation("library:add_author", {"name": "Grace"})  # refused: not empty
    source = open_source(tmp_path / "s.zip", target.schema)
    try:
        await import_source(target, source, Mode.REQUIRE_EMPTY)
    except Exception as exc:
        assert "Table authors already exists" in str(exc)
    assert await target.files.blobs.stat(stored) is None
    assert await target.files.blobs.chunk_rows(stored) == 0


async def bulk_fill(engine: Engine, author: str, count: int) -> None:
    """Test setup only: rows written in bulk statements (the engine's one-by-one writes
    would take a minute), with the keys the engine computes, and no commit logged."""
    definition = engine.schema.tables["books"]
    number = engine.store.table_numbers["books"]
    async with engine.store.write() as tx:
        names = tx.names
        indexes = list(all_indexes(definition))
        columns = ", ".join(names.key_column(i) for i in indexes)
        casts = ", ".join(f"${n + 4}::bytea[]" for n in range(len(indexes)))
        sql = (f"INSERT INTO {names.table('books')} (_id, _creation_time, doc, {columns}) "
               f"SELECT * FROM unnest($1::text[], $2::float8[], $3::text[]::jsonb[], {casts})")
        for start in range(0, count, 25_000):
            rows = []
            for i in range(start, start + 25_000):
                fields = {"title": f"book {i:06d} " + "x" * 200, "author": author, "copies": i}
                doc = {"_id": new_id(number), "_creationTime": 1.7e12 + i, **fields}
                keys = index_keys(definition, doc)
                rows.append((doc["_id"], doc["_creationTime"],
                             orjson.dumps(values.encode(fields)).decode(),
                             *(keys[i] for i in indexes)))
            await tx.execute(sql, *map(list, zip(*rows, strict=True)))


async def test_a_large_export_streams_in_flat_memory(library: Engine, tmp_path: Path) -> None:
    """100,000 documents (about 28 MB of JSON): the export's peak Python allocation stays
    a small fraction of the data, since only one page is ever held."""
    ada = (await library.run_mutation("library:add_author", {"name": "Ada"})).value
    count = 100_000
    await bulk_fill(library, ada, count)
    out = tmp_path / "big.zip"
    tracemalloc.start()
    try:
        report = await export_snapshot(library, out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with zipfile.ZipFile(out) as z:
        data_size = z.getinfo("books/documents.jsonl").file_size
    assert report.rows["books"] == count
    assert data_size > 25_000_000
    assert peak < data_size / 5, (peak, data_size)


def test_the_progress_bar_on_a_terminal_and_in_a_log() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    bar = ProgressBar("Exporting", tty)
    bar(50, 100)
    bar.finish()
    assert "\r\x1b[2KExporting [###############...............]  50% 50/100 documents" in \
        tty.getvalue() and tty.getvalue().endswith("\n")
    log = io.StringIO()
    bar = ProgressBar("Importing", log, line_seconds=0)
    bar(1, 4)
    bar(4, 4)
    bar.finish()
    assert log.getvalue().splitlines() == [
        "Importing: 1/4 documents (25%)", "Importing: 4/4 documents (100%)",
        "Importing: 4/4 documents (100%)"]


async def test_replace_with_its_own_snapshot_keeps_the_files(library: Engine,
                                                              tmp_path: Path) -> None:
    stored = (await library.run_action("library:store_text", {"text": "hello"})).value
    await export_snapshot(library, tmp_path / "s.zip", include_storage=True)
    source = open_source(tmp_path / "s.zip", library.schema)
    report = await import_source(library, source, Mode.REPLACE)
    assert report.deleted == {"_storage": 1} and report.files == 1
    assert await file_bytes(library, stored) == b"hello"
