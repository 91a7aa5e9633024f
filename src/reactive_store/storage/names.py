"""Postgres identifiers for a deployment's tables, key columns, indexes and system objects."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

_MAX_IDENT = 63


def ident(name: str) -> str:
    """A quoted Postgres identifier, shortened with a hash suffix past 63 bytes."""
    if len(name.encode()) > _MAX_IDENT:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = name[: _MAX_IDENT - 9] + "_" + digest
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class SideTable:
    """The table of a search or vector index: raw names (for COPY), its quoted form, its
    kind ("search" or "vector"), its number of filter columns, and for a vector index how
    it is stored ("pgvector" or "exact")."""

    schema: str
    name: str
    kind: str = "search"
    filters: int = 0
    backend: str = ""

    @property
    def sql(self) -> str:
        return f"{ident(self.schema)}.{ident(self.name)}"

    @property
    def stats(self) -> SideTable:
        """A search index's corpus statistics: (n, total length) deltas per filter values."""
        raw = ident(self.name + "_stats")[1:-1].replace('""', '"')
        return SideTable(self.schema, raw, "stats", self.filters)


class Names:
    """Every SQL name of one deployment, which lives in its own Postgres schema."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.schema = ident(namespace)
        digest = hashlib.sha1(namespace.encode()).digest()
        # Advisory lock keys of this deployment: commit ordering and schema push; and the
        # first half of the two-key locks of the job table's stripes (`jobs/batch.py`).
        self.commit_lock = int.from_bytes(digest[:4], "big", signed=True)
        self.push_lock = int.from_bytes(digest[4:8], "big", signed=True)
        self.job_lock = int.from_bytes(digest[8:12], "big", signed=True)
        self.channel = "rs_commits_" + digest[:6].hex()
        # (table, index) -> the table of each search and vector index, set by schema push.
        self.side_tables: dict[tuple[str, str], SideTable] = {}

    def table(self, table: str) -> str:
        return f"{self.schema}.{ident(table)}"

    def system(self, name: str) -> str:
        return f"{self.schema}.{ident('_' + name)}"

    @staticmethod
    def key_column(index: str) -> str:
        return ident("k_" + index)

    @staticmethod
    def index_name(table: str, index: str) -> str:
        return ident(f"{table}__{index}")

    def side_table(self, kind: str, table: str, index: str, filters: int = 0,
                   backend: str = "") -> SideTable:
        """`_search_<table>__<index>` or `_vector_<table>__<index>` in this schema."""
        raw = ident(f"_{kind}_{table}__{index}")[1:-1].replace('""', '"')
        return SideTable(self.namespace, raw, kind, filters, backend)
