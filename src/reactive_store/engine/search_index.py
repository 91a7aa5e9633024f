"""Search and vector indexes in read and write sets: the synthetic keys a document write
adds to the write set, the intervals a search records, and the index rows a write changes.

Reactivity needs no new machinery: each search index gets synthetic keyspaces that the
interval index and the write log treat like any other index.

- Text search, keyspace `<index>#search:<mask>`: a key is the document's encoded values of
  the filter fields in `mask` followed by one term (`encode_tuple([*values, term])`). A
  write adds, for its old and its new version, the key of every term under every emitted
  mask. A search that filters on the fields `S` reads, under the largest emitted mask
  within `S`, one point per exact term and one range for the prefix of its last term. So a
  commit re-runs it only when a written version shares a term (or the prefix) with it and
  agrees with it on the masked filter values. Masks: every subset of the filter fields
  when there are at most 3 of them (exact for every combination of `eq`s), else the
  prefixes of the declared order (exact when a search filters on a leading run of them;
  otherwise sound, as the mask ignores some filters, and less precise).
- Vector search, keyspace `<index>#vector`: a write of a document in the index adds the
  key `b""` (any document) and one key per filter field, `encode_tuple([position, value])`,
  for both versions. A vector search reads the point `b""` when unfiltered, else one point
  per `eq` of its filter.

A write that leaves a document's terms, vector and filter values as they were adds no
synthetic key (its `by_id` key still reaches searches that returned it).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from reactive_store.engine.intervals import Interval
from reactive_store.engine.readset import WriteSet
from reactive_store.errors import InternalError
from reactive_store.keys import TAG_STRING, TOP, encode_tuple
from reactive_store.schema import SearchIndex, TableDefinition, VectorIndex
from reactive_store.storage import Transaction
from reactive_store.storage.names import SideTable
from reactive_store.storage.search import SearchEntry, write_entry
from reactive_store.storage.vectors import VectorEntry, write_vector
from reactive_store.types import Document

ALL_SUBSETS_UP_TO = 3  # filter fields for which every subset gets its own keyspace
ANY_DOCUMENT = b""  # the vector keyspace's key for "some document of the index"

Mask = tuple[int, ...]


def emitted_masks(count: int) -> list[Mask]:
    """The filter-field subsets (by position) under which writes add term keys."""
    if count <= ALL_SUBSETS_UP_TO:
        return [m for r in range(count + 1) for m in itertools.combinations(range(count), r)]
    return [tuple(range(j)) for j in range(count + 1)]


def read_mask(count: int, used: set[int]) -> Mask:
    """The largest emitted mask whose fields a search filters on (all of them, when it can)."""
    if count <= ALL_SUBSETS_UP_TO:
        return tuple(sorted(used))
    j = 0
    while j < count and j in used:
        j += 1
    return tuple(range(j))


def search_keyspace(index: str, mask: Mask) -> str:
    return f"{index}#search:{','.join(map(str, mask))}"


def vector_keyspace(index: str) -> str:
    return f"{index}#vector"


def term_key(prefix: bytes, term: str) -> bytes:
    return prefix + encode_tuple([term])


def term_prefix_interval(prefix: bytes, start: str) -> Interval:
    """Every key under `prefix` whose term starts with `start` (terms hold no NUL)."""
    lo = prefix + bytes([TAG_STRING]) + start.encode()
    return Interval(lo, lo + TOP)


def vector_filter_key(position: int, value: bytes) -> bytes:
    return encode_tuple([position]) + value


def side_table(tx: Transaction, table: str, index: str) -> SideTable:
    try:
        return tx.names.side_tables[(table, index)]
    except KeyError:
        raise InternalError(f"index {table}.{index} has no table (schema not pushed)") from None


def _search_keys(writes: WriteSet, table: str, index: SearchIndex, entry: SearchEntry) -> None:
    for mask in emitted_masks(len(index.filter_fields)):
        keyspace = search_keyspace(index.name, mask)
        prefix = b"".join(entry.filters[i] for i in mask)
        for term in entry.postings.frequencies:
            writes.add(table, keyspace, term_key(prefix, term))


def _vector_keys(writes: WriteSet, table: str, index: VectorIndex, entry: VectorEntry) -> None:
    keyspace = vector_keyspace(index.name)
    writes.add(table, keyspace, ANY_DOCUMENT)
    for position, value in enumerate(entry.filters):
        writes.add(table, keyspace, vector_filter_key(position, value))


@dataclass
class IndexWrites:
    """What one document write does to its table's search and vector indexes.

    `plan` runs before the document itself is written, so a vector of the wrong length is
    refused before anything changes; `apply` writes the index rows and the synthetic keys.
    """

    table: str
    doc_id: str
    search: list[tuple[SearchIndex, SearchEntry | None, SearchEntry | None]] = field(
        default_factory=list)
    vectors: list[tuple[VectorIndex, VectorEntry | None, VectorEntry | None]] = field(
        default_factory=list)

    @staticmethod
    def plan(table: str, definition: TableDefinition, old: Document | None,
             new: Document | None) -> IndexWrites:
        doc_id = (new or old or {}).get("_id", "")
        plan = IndexWrites(table, doc_id)
        for search in definition.search_indexes.values():
            before, after = SearchEntry.of(search, old), SearchEntry.of(search, new)
            if before != after:
                plan.search.append((search, before, after))
        for vector in definition.vector_indexes.values():
            # The old version passed these checks when it was written (or a push refused it).
            before_v = VectorEntry.of(table, vector, old)
            after_v = VectorEntry.of(table, vector, new)
            if before_v != after_v:
                plan.vectors.append((vector, before_v, after_v))
        return plan

    async def apply(self, tx: Transaction, writes: WriteSet) -> None:
        for search, before, after in self.search:
            await write_entry(tx, side_table(tx, self.table, search.name), self.doc_id,
                              before, after)
            for entry in (before, after):
                if entry is not None:
                    _search_keys(writes, self.table, search, entry)
        for vector, before_v, after_v in self.vectors:
            await write_vector(tx, side_table(tx, self.table, vector.name), self.doc_id,
                               after_v)
            for entry_v in (before_v, after_v):
                if entry_v is not None:
                    _vector_keys(writes, self.table, vector, entry_v)
