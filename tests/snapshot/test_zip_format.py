"""The snapshot format without a database: exported-JSON encodings, entry paths, archives."""

from __future__ import annotations

import io
import math
import zipfile

import pytest

from reactive_store.snapshot.archive import SnapshotReader, SnapshotWriter
from reactive_store.snapshot.zip_format import (
    SnapshotError,
    decode_line,
    encode_line,
    from_export_json,
    storage_file_path,
    storage_id_of_file,
    table_of_documents,
    to_export_json,
)


def test_int64_is_a_plain_integer_and_float64_keeps_its_point() -> None:
    line = encode_line({"_id": "x", "_creationTime": 1700000000000.5, "n": 5, "f": 5.0,
                        "big": 2**63 - 1, "neg": -0.0})
    assert line == (b'{"_id":"x","_creationTime":1700000000000.5,"n":5,"f":5.0,'
                    b'"big":9223372036854775807,"neg":-0.0}\n')
    back = decode_line(line, "t", 1)
    assert type(back["n"]) is int and type(back["f"]) is float
    assert back["big"] == 2**63 - 1 and math.copysign(1.0, back["neg"]) < 0


def test_bytes_and_special_floats_use_convex_special_objects() -> None:
    value = {"b": b"\x00\x01\xff", "inf": math.inf, "nan": math.nan,
             "nested": [{"deep": [b"z", 1, 2.5, None, True, "s"]}]}
    exported = to_export_json(value)
    assert exported["b"] == {"$bytes": "AAH/"}
    assert exported["inf"] == {"$float": "AAAAAAAA8H8="}
    assert exported["nested"][0]["deep"][0] == {"$bytes": "eg=="}
    back = from_export_json(exported)
    assert back["b"] == b"\x00\x01\xff" and back["inf"] == math.inf and math.isnan(back["nan"])
    assert back["nested"] == [{"deep": [b"z", 1, 2.5, None, True, "s"]}]


def test_convex_json_integers_are_accepted_too() -> None:
    assert from_export_json({"n": {"$integer": "BQAAAAAAAAA="}}) == {"n": 5}


def test_integers_past_int64_become_floats_as_in_convex() -> None:
    assert from_export_json(2**64 - 1) == float(2**64 - 1)


@pytest.mark.parametrize(("line", "message"), [
    (b"{not json", "t: line 7 is not valid JSON"),
    (b"[1, 2]", "t: line 7 is not a JSON object"),
    (b'{"b": {"$bytes": "!!"}}', "t: line 7 is not a valid value: $bytes is not valid base64"),
])
def test_a_bad_line_is_refused_with_its_number(line: bytes, message: str) -> None:
    with pytest.raises(SnapshotError) as caught:
        decode_line(line, "t", 7)
    assert caught.value.message.startswith(message)


def test_entry_paths_follow_convex() -> None:
    assert table_of_documents("books/documents.jsonl") == "books"
    assert table_of_documents("snapshot/books/documents.jsonl") == "books"
    assert table_of_documents("books/generated_schema.jsonl") is None
    assert storage_id_of_file("_storage/kg2abc.png") == "kg2abc"
    assert storage_id_of_file("_storage/kg2abc") == "kg2abc"
    assert storage_id_of_file("_storage/documents.jsonl") is None
    assert storage_file_path("kg2abc", "image/png") == "_storage/kg2abc.png"
    assert storage_file_path("kg2abc", None) == "_storage/kg2abc"


def test_archive_round_trip_holds_convex_layout() -> None:
    out = io.BytesIO()
    writer = SnapshotWriter(out)
    writer.write_tables({"books": 2, "authors": 1})
    with writer.open_table("books") as entry:
        entry.write(encode_line({"_id": "b1", "_creationTime": 1.0, "copies": 3}))
    writer.close()
    names = zipfile.ZipFile(io.BytesIO(out.getvalue())).namelist()
    assert names == ["README.md", "_tables/documents.jsonl", "books/generated_schema.jsonl",
                     "books/documents.jsonl"]
    reader = SnapshotReader(io.BytesIO(out.getvalue()))
    assert reader.table_numbers() == {"authors": 1, "books": 2}
    assert reader.user_tables() == ["books"] and reader.uniform("books")
    assert [line for _, line in reader.lines("books")] == [
        b'{"_id":"b1","_creationTime":1.0,"copies":3}\n']


def test_a_file_shaped_like_a_convex_export_reads() -> None:
    """Convex writes README.md, _tables, per table generated_schema ("uniform") and
    documents, then _storage/documents.jsonl and _storage/<id>.<ext>."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("README.md", "# Welcome to your Convex snapshot export!\n")
        z.writestr("_tables/documents.jsonl", '{"name":"books","id":10001}\n')
        z.writestr("books/generated_schema.jsonl", '"uniform"\n')
        z.writestr("books/documents.jsonl",
                   '{"_creationTime":1732000000000.123,"_id":"jd7abc","copies":4,'
                   '"blob":{"$bytes":"AQI="}}\n')
        z.writestr("_storage/documents.jsonl",
                   '{"_id":"kg2xyz","_creationTime":1.5,"sha256":"x","size":3,'
                   '"contentType":"text/plain","internalId":"abc"}\n')
        z.writestr("_storage/kg2xyz.txt", b"abc")
    reader = SnapshotReader(io.BytesIO(out.getvalue()))
    assert reader.table_numbers() == {"books": 10001}
    assert reader.user_tables() == ["books"] and set(reader.files) == {"kg2xyz"}
    (_, line), = reader.lines("books")
    assert decode_line(line, "books", 1)["blob"] == b"\x01\x02"
    assert b"".join(reader.read_file("kg2xyz")) == b"abc"


def test_legacy_generated_schema_is_not_uniform() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("books/generated_schema.jsonl", '"{copies: int64}"\n')
        z.writestr("books/documents.jsonl", '{"copies":"4"}\n')
    assert not SnapshotReader(io.BytesIO(out.getvalue())).uniform("books")


def test_a_corrupt_zip_is_refused() -> None:
    with pytest.raises(SnapshotError, match=r"broken.zip is not a valid ZIP file"):
        SnapshotReader(io.BytesIO(b"PK\x03\x04 this is not a zip"), "broken.zip")


def test_a_damaged_entry_is_refused_when_read() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("books/documents.jsonl", b'{"copies": 1}\n' * 1000)
    data = bytearray(out.getvalue())
    data[60:70] = b"\x00" * 10  # inside the compressed bytes of the entry
    reader = SnapshotReader(io.BytesIO(bytes(data)), "damaged.zip")
    with pytest.raises(SnapshotError, match=r"damaged.zip: entry books/documents.jsonl is "
                                            "damaged"):
        list(reader.lines("books"))


def test_a_zip_without_documents_is_not_a_snapshot() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("notes.txt", "hello")
    with pytest.raises(SnapshotError, match=r"holds no <table>/documents.jsonl entry"):
        SnapshotReader(io.BytesIO(out.getvalue()), "x.zip")
