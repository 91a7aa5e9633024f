"""Index keys of a new version of a document: the keys an index keeps are exactly the keys
encoding it again would give, whichever fields changed."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactive_store.keys import encode_tuple, field_value
from reactive_store.schema import TableDefinition, index_keys, index_keys_after
from reactive_store.validators import v

TABLE = (TableDefinition(v.object({
    "state": v.object({"kind": v.string()}), "n": v.any(), "tags": v.optional(v.array(v.any())),
})).index("by_state", ["state.kind", "n"]).index("by_n", ["n"])
   .index("by_tags", ["tags"]))

OLD: dict[str, Any] = {"_id": "d1", "_creationTime": 5.0, "state": {"kind": "pending"},
                       "n": 1, "tags": ["a"]}


def patched(**fields: Any) -> dict[str, Any]:
    """OLD with `fields` replaced, other fields the very same objects (as a patch makes)."""
    return {**OLD, **fields}


@pytest.mark.parametrize("new", [
    patched(),  # nothing changed
    patched(state={"kind": "success"}),  # one index's field
    patched(n=2),  # a field two indexes share
    patched(n=1.0),  # equal in Python, another value (float64, not int64)
    patched(n=True),  # equal in Python again, a boolean
    patched(tags=["a"]),  # equal content, another object
    patched(tags=["a", "b"]),
    {k: val for k, val in OLD.items() if k != "tags"},  # a field removed
])
def test_keys_after_a_change_are_the_keys_of_the_new_version(new: dict[str, Any]) -> None:
    old_keys = index_keys(TABLE, OLD)
    assert index_keys_after(TABLE, OLD, old_keys, new) == index_keys(TABLE, new)


def test_an_untouched_index_keeps_its_key_object() -> None:
    old_keys = index_keys(TABLE, OLD)
    new_keys = index_keys_after(TABLE, OLD, old_keys, patched(state={"kind": "done"}))
    assert new_keys["by_n"] is old_keys["by_n"] and new_keys["by_tags"] is old_keys["by_tags"]
    assert new_keys["by_state"] != old_keys["by_state"]


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                    st.floats(allow_nan=True), st.text(max_size=8), st.binary(max_size=8))


@given(kind=st.one_of(SCALARS, st.just({})), n=SCALARS,
       tags=st.one_of(st.none(), st.lists(SCALARS, max_size=3)),
       created=st.floats(allow_nan=False), doc_id=st.text(min_size=1, max_size=40))
def test_index_keys_are_the_tuples_of_their_fields_then_creation_time_and_id(
        kind: Any, n: Any, tags: Any, created: float, doc_id: str) -> None:
    # The keys share one encoded (_creationTime, _id) suffix: byte for byte the same as
    # encoding each index's whole tuple.
    doc: dict[str, Any] = {"_id": doc_id, "_creationTime": created, "state": {"kind": kind},
                           "n": n}
    if tags is not None:
        doc["tags"] = tags
    if kind == {}:
        doc["state"] = {}  # a dotted path through an object without the field
    keys = index_keys(TABLE, doc)
    for name, index in TABLE.indexes.items():
        expected = encode_tuple([*(field_value(doc, f) for f in index.fields), created, doc_id])
        assert keys[name] == expected
    assert keys["by_creation_time"] == encode_tuple([created, doc_id])
