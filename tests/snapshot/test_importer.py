"""Imports on a real database: validated, all or nothing, ids and references kept, modes."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reactive_store.engine.engine import Engine
from reactive_store.snapshot.exporter import export_snapshot
from reactive_store.snapshot.importer import Mode, import_source
from reactive_store.snapshot.sources import open_source
from reactive_store.snapshot.zip_format import SnapshotError
from tests.id_formats import convex_id, decode_convex_id


async def run_import(engine: Engine, path: Path, mode: Mode = Mode.REQUIRE_EMPTY,
                     table: str | None = None) -> Any:
    source = open_source(path, engine.schema, table)
    try:
        return await import_source(engine, source, mode)
    finally:
        source.close()


async def fill(engine: Engine) -> tuple[str, str]:
    ada = (await engine.run_mutation("library:add_author", {"name": "Ada"})).value
    book = (await engine.run_mutation("library:add_book",
                                      {"title": "Notes", "author": ada, "copies": 3})).value
    return ada, book


async def books(engine: Engine) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = (await engine.run_query("library:books", {})).value
    return result


def write_zip(path: Path, entries: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


async def test_round_trip_keeps_ids_creation_times_and_references(
        library: Engine, fresh_library: Callable[[], Any], tmp_path: Path) -> None:
    ada, _ = await fill(library)
    report = await export_snapshot(library, tmp_path / "a.zip")
    assert report.rows == {"authors": 1, "books": 1} and report.ts > 0
    target: Engine = await fresh_library()
    imported = await run_import(target, tmp_path / "a.zip")
    assert imported.rows == {"authors": 1, "books": 1}
    assert await books(target) == await books(library)
    assert (await books(target))[0]["author"] == ada
    await export_snapshot(target, tmp_path / "b.zip")
    assert _documents(tmp_path / "a.zip") == _documents(tmp_path / "b.zip")


def _documents(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if n.endswith("documents.jsonl")}


async def test_a_schema_violation_names_table_id_and_message_and_writes_nothing(
        library: Engine, tmp_path: Path) -> None:
    await fill(library)
    await export_snapshot(library, tmp_path / "ok.zip")
    lines = _documents(tmp_path / "ok.zip")
    bad_book = lines["books/documents.jsonl"].replace(b'"copies":3', b'"copies":"three"')
    path = write_zip(tmp_path / "bad.zip", {**lines, "books/documents.jsonl": bad_book})
    with pytest.raises(SnapshotError) as caught:
        await run_import(library, path, Mode.REPLACE)
    book_id = (await books(library))[0]["_id"]
    assert caught.value.message == (
        f"table 'books', document {book_id} (bad.zip:books/documents.jsonl line 1): "
        "books.copies: expected int64, got string 'three'")
    assert len(await books(library)) == 1  # the replace did not happen either


async def test_default_mode_refuses_a_non_empty_table_as_convex_does(
        library: Engine, tmp_path: Path) -> None:
    await fill(library)
    await export_snapshot(library, tmp_path / "s.zip")
    with pytest.raises(SnapshotError, match=r"Table authors already exists. Please choose a "
                                            "new table name or use replace/append modes"):
        await run_import(library, tmp_path / "s.zip")


async def test_replace_clears_the_tables_and_append_adds(library: Engine,
                                                          tmp_path: Path) -> None:
    ada, _ = await fill(library)
    path = tmp_path / "more.jsonl"
    path.write_text(f'{{"title": "A", "author": "{ada}", "copies": 1}}\n'
                    f'{{"title": "B", "author": "{ada}", "copies": 2}}\n')
    report = await run_import(library, path, Mode.APPEND, table="books")
    assert report.rows == {"books": 2}
    assert sorted(b["title"] for b in await books(library)) == ["A", "B", "Notes"]
    report = await run_import(library, path, Mode.REPLACE, table="books")
    assert report.deleted == {"books": 3}
    assert sorted(b["title"] for b in await books(library)) == ["A", "B"]


async def test_append_of_an_existing_id_is_refused(library: Engine, tmp_path: Path) -> None:
    await fill(library)
    await export_snapshot(library, tmp_path / "s.zip")
    book_id = (await books(library))[0]["_id"]
    with pytest.raises(SnapshotError, match=r"table 'authors': document .* already exists"):
        await run_import(library, tmp_path / "s.zip", Mode.APPEND)
    assert [b["_id"] for b in await books(library)] == [book_id]


async def test_a_convex_snapshot_keeps_its_ids_and_creation_times(
        library: Engine, tmp_path: Path) -> None:
    """Ids made by Convex (built here by the tests' own encoder, not ids.py) whose table
    numbers are the target's (user tables from 10001, `_storage` 540 in both) are kept,
    with their creation times; references and files stay reachable by them."""
    numbers = library.store.table_numbers
    assert (numbers["authors"], numbers["books"], numbers["_storage"]) == (10001, 10002, 540)
    author, book, file_id = convex_id(10001), convex_id(10002), convex_id(540)
    path = write_zip(tmp_path / "convex.zip", {
        "README.md": "# Welcome to your Convex snapshot export!\n",
        "_tables/documents.jsonl": '{"name":"authors","id":10001}\n'
                                   '{"name":"books","id":10002}\n',
        "authors/generated_schema.jsonl": '"uniform"\n',
        "authors/documents.jsonl": f'{{"_id":"{author}","_creationTime":1700000000000.25,'
                                   '"name":"Ada"}\n',
        "books/generated_schema.jsonl": '"uniform"\n',
        "books/documents.jsonl": f'{{"_id":"{book}","_creationTime":1700000000001.5,'
                                 f'"title":"Notes","author":"{author}","copies":7,'
                                 f'"cover":"{file_id}","extra":{{"ref":"{author}"}}}}\n',
        "_storage/documents.jsonl": f'{{"_id":"{file_id}","_creationTime":1700000000002.0,'
                                    '"sha256":"x","size":5,"contentType":"text/plain",'
                                    '"internalId":"0b6e1c4e-2f1a-4f6e-9d2b-0c8f7a9e3b11"}\n',
        f"_storage/{file_id}.txt": b"bytes",
    })
    await run_import(library, path)
    (doc,) = await books(library)
    assert doc["_id"] == book and doc["_creationTime"] == 1700000000001.5
    assert doc["author"] == author and doc["extra"] == {"ref": author}
    assert doc["cover"] == file_id
    blob = await library.files.open(file_id)
    assert blob is not None and b"".join([c async for c in library.files.read(blob)]) == b"bytes"
    got = await library.run_query("library:author", {"id": author})
    assert got.value["name"] == "Ada" and got.value["_creationTime"] == 1700000000000.25


async def test_ids_of_other_table_numbers_get_new_ids_and_references_follow(
        library: Engine, tmp_path: Path) -> None:
    """A deployment that numbered its tables otherwise: its ids cannot be kept (the number
    would name another table here); they are replaced, and every reference rewritten."""
    author, book = convex_id(10007), convex_id(10008)
    path = write_zip(tmp_path / "convex.zip", {
        "_tables/documents.jsonl": '{"name":"authors","id":10007}\n'
                                   '{"name":"books","id":10008}\n',
        "authors/generated_schema.jsonl": '"uniform"\n',
        "authors/documents.jsonl": f'{{"_id":"{author}",'
                                   '"_creationTime":1700000000000.25,"name":"Ada"}\n',
        "books/generated_schema.jsonl": '"uniform"\n',
        "books/documents.jsonl": f'{{"_id":"{book}",'
                                 '"_creationTime":1700000000001.5,"title":"Notes",'
                                 f'"author":"{author}","copies":7,'
                                 '"blob":{"$bytes":"AQI="},'
                                 f'"extra":{{"ref":"{author}"}}}}\n',
    })
    await run_import(library, path)
    (doc,) = await books(library)
    assert doc["_creationTime"] == 1700000000001.5 and doc["copies"] == 7
    assert doc["blob"] == b"\x01\x02" and doc["extra"] == {"ref": doc["author"]}
    assert doc["author"] != author and doc["_id"] != book
    assert decode_convex_id(doc["_id"])[0] == 10002
    got = await library.run_query("library:author", {"id": doc["author"]})
    assert got.value["name"] == "Ada"


@pytest.mark.parametrize("mode", [Mode.REQUIRE_EMPTY, Mode.REPLACE, Mode.APPEND])
async def test_a_duplicate_id_in_a_table_file_names_it_and_nothing_is_written(
        library: Engine, tmp_path: Path, mode: Mode) -> None:
    await fill(library) if mode is not Mode.REQUIRE_EMPTY else None
    before = await books(library)
    author, twice = convex_id(10001), convex_id(10002)
    line = f'"title":"T","author":"{author}","copies":1}}'
    path = write_zip(tmp_path / "dup.zip", {
        "authors/documents.jsonl": f'{{"_id":"{author}","name":"A"}}\n',
        "books/documents.jsonl": f'{{"_id":"{twice}",{line}\n'
                                 f'{{"_id":"{convex_id(10002)}",{line}\n'
                                 f'{{"_id":"{twice}",{line}\n',
    })
    with pytest.raises(SnapshotError) as info:
        await run_import(library, path, mode)
    assert info.value.message == (
        f"table 'books': duplicate _id {twice} (dup.zip:books/documents.jsonl line 3; "
        "first on line 1); nothing was imported")
    assert await books(library) == before
    assert (await library.run_query("library:authors", {})).value == (
        [] if mode is Mode.REQUIRE_EMPTY else [{"name": "Ada"}])


async def test_a_duplicate_id_in_a_jsonl_file(library: Engine, tmp_path: Path) -> None:
    ada, _ = await fill(library)
    doc = f'{{"_id":"{ada}","name":"Again"}}'
    path = tmp_path / "authors.jsonl"
    path.write_text(f"{doc}\n\n{doc}\n")
    with pytest.raises(SnapshotError, match=re.escape(
            f"table 'authors': duplicate _id {ada} (authors.jsonl line 3; first on line 1)")):
        await run_import(library, path, Mode.REPLACE, table="authors")
    assert (await library.run_query("library:authors", {})).value == [{"name": "Ada"}]


async def test_an_unknown_table_is_refused_before_anything(library: Engine,
                                                           tmp_path: Path) -> None:
    path = write_zip(tmp_path / "x.zip", {"ghosts/documents.jsonl": '{"boo": 1}\n'})
    with pytest.raises(SnapshotError, match=r"table 'ghosts' is in x.zip but not in the app's "
                                            "schema"):
        await run_import(library, path)


async def test_a_bad_jsonl_line_names_its_number_and_nothing_is_written(
        library: Engine, tmp_path: Path) -> None:
    ada, _ = await fill(library)
    path = tmp_path / "b.jsonl"
    path.write_text(f'{{"title": "A", "author": "{ada}", "copies": 1}}\n\n{{"title": \n')
    with pytest.raises(SnapshotError, match=r"b.jsonl: line 3 is not valid JSON"):
        await run_import(library, path, Mode.APPEND, table="books")
    assert len(await books(library)) == 1


async def test_csv_reads_cells_by_the_schema_and_names_a_bad_value(
        library: Engine, tmp_path: Path) -> None:
    ada, _ = await fill(library)
    path = tmp_path / "books.csv"
    path.write_text(f"title,author,copies,price\nA,{ada},2,9.5\nB,{ada},x,1\n")
    with pytest.raises(SnapshotError, match=r"books.csv: line 3, column 'copies': 'x' is not "
                                            r"an integer \(int64\)"):
        await run_import(library, path, Mode.APPEND, table="books")
    path.write_text(f"title,author,copies,price\n123,{ada},2,9.5\n")
    await run_import(library, path, Mode.APPEND, table="books")
    new = [b for b in await books(library) if b["title"] == "123"]
    assert new[0]["copies"] == 2 and new[0]["price"] == 9.5


async def test_json_array_and_the_table_option(library: Engine, tmp_path: Path) -> None:
    path = tmp_path / "authors.json"
    path.write_text('[{"name": "Ada"}, {"name": "Grace"}]')
    with pytest.raises(SnapshotError, match=r"--table is required"):
        await run_import(library, path)
    report = await run_import(library, path, table="authors")
    assert report.rows == {"authors": 2}
    path.write_text('{"name": "Ada"}')
    with pytest.raises(SnapshotError, match=r"authors.json is not a JSON array"):
        await run_import(library, path, Mode.APPEND, table="authors")


async def test_a_convex_snapshot_with_files_imports_and_references_follow(
        library: Engine, tmp_path: Path) -> None:
    """Convex's layout: `_storage/documents.jsonl` plus `_storage/<id>.<ext>` bytes; a
    document's `v.id("_storage")` field follows its file to its new id."""
    file_id = "kg2b3c4d5e6f7g8h9j0k1m2n3p4q5r6s"
    author_id = "j57a1z2x3c4v5b6n7m8k9l0p1q2w3e4r"
    path = write_zip(tmp_path / "convex.zip", {
        "README.md": "# Welcome to your Convex snapshot export!\n",
        "_tables/documents.jsonl": '{"name":"authors","id":10001}\n{"name":"books","id":10002}\n',
        "authors/generated_schema.jsonl": '"uniform"\n',
        "authors/documents.jsonl": f'{{"_id":"{author_id}","_creationTime":1.0,"name":"A"}}\n',
        "books/generated_schema.jsonl": '"uniform"\n',
        "books/documents.jsonl": f'{{"_id":"k1","_creationTime":2.0,"title":"T","author":'
                                 f'"{author_id}","copies":1,"cover":"{file_id}"}}\n',
        "_storage/documents.jsonl": f'{{"_id":"{file_id}","_creationTime":3.0,"sha256":"x",'
                                    '"size":5,"contentType":"text/plain","internalId":"i"}\n',
        f"_storage/{file_id}.txt": b"bytes",
    })
    report = await run_import(library, path)
    assert report.rows == {"_storage": 1, "authors": 1, "books": 1} and report.files == 1
    (book,) = await books(library)
    blob = await library.files.open(book["cover"])
    assert blob is not None and blob.content_type == "text/plain"
    assert b"".join([c async for c in library.files.read(blob)]) == b"bytes"


async def test_a_file_without_its_bytes_is_refused(library: Engine, tmp_path: Path) -> None:
    path = write_zip(tmp_path / "nobytes.zip", {
        "_storage/documents.jsonl": '{"_id":"kg2b3c4d5e6f7g8h9j0k1m2n3p4q5r6s",'
                                    '"_creationTime":3.0,"size":5}\n'})
    with pytest.raises(SnapshotError, match=r"nobytes.zip:_storage/documents.jsonl: line 1: "
                                            r"file 'kg2b3c4d5e6f7g8h9j0k1m2n3p4q5r6s' has no "
                                            r"_storage/<id> entry"):
        await run_import(library, path)
