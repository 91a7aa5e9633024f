"""Postgres identifiers for a deployment's tables, key columns, indexes and system objects."""

from __future__ import annotations

import hashlib

_MAX_IDENT = 63


def ident(name: str) -> str:
    """A quoted Postgres identifier, shortened with a hash suffix past 63 bytes."""
    if len(name.encode()) > _MAX_IDENT:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = name[: _MAX_IDENT - 9] + "_" + digest
    return '"' + name.replace('"', '""') + '"'


class Names:
    """Every SQL name of one deployment, which lives in its own Postgres schema."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.schema = ident(namespace)
        digest = hashlib.sha1(namespace.encode()).digest()
        # Advisory lock keys of this deployment: commit ordering and schema push.
        self.commit_lock = int.from_bytes(digest[:4], "big", signed=True)
        self.push_lock = int.from_bytes(digest[4:8], "big", signed=True)
        self.channel = "rs_commits_" + digest[:6].hex()

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
