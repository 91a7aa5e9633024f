"""Text search in Postgres: one postings table per search index, written with each document
and ranked with BM25 in one SQL statement.

`_search_<table>__<index>(doc_id, term, tf, len, f0..fk)` holds one row per (document,
distinct term) plus one row with the empty term per indexed document (its length).
`f0..fk` are the encoded values of the index's filter fields, so filtering is plain bytea
equality. `<that table>_stats(n, total, f0..fk)` keeps the corpus statistics as delta rows
(+1/-1 document, +/- its length) that `compact_stats` folds into one row per filter values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from reactive_store.keys import encode_tuple, field_value
from reactive_store.schema import SearchIndex
from reactive_store.storage.names import SideTable
from reactive_store.storage.tokenizer import Postings, QueryTerms
from reactive_store.types import Document


class Statements(Protocol):
    """What these functions need of a transaction (`storage.Transaction` has it)."""

    async def execute(self, sql: str, *args: Any) -> None: ...

    async def fetch(self, sql: str, *args: Any) -> list[Any]: ...


MAX_RESULTS = 1024  # Convex's limit on the documents one search query may rank
K1, B = 1.2, 0.75  # BM25's parameters, at their usual values
PREFIX_WEIGHT = 0.5  # a term that only extends the query's last term counts half
DOC_TERM = ""  # the per-document row, which holds its length


def filter_columns(count: int) -> list[str]:
    return [f"f{i}" for i in range(count)]


def filter_keys(fields: Sequence[str], doc: Document) -> list[bytes]:
    """The encoded value of each filter field of `doc` (a missing field has its own key)."""
    return [encode_tuple([field_value(doc, f)]) for f in fields]


@dataclass(frozen=True)
class SearchEntry:
    """A document as one search index sees it: its postings and its filter values."""

    postings: Postings
    filters: list[bytes]

    @staticmethod
    def of(index: SearchIndex, doc: Document | None) -> SearchEntry | None:
        """None when the document is absent or its search field is not a string."""
        if doc is None:
            return None
        text = field_value(doc, index.search_field)
        if not isinstance(text, str):
            return None
        return SearchEntry(Postings.of(text), filter_keys(index.filter_fields, doc))

    def rows(self, doc_id: str) -> list[tuple[Any, ...]]:
        """The rows of the postings table, for COPY."""
        length = self.postings.length
        rows = [(doc_id, DOC_TERM, 0, length, *self.filters)]
        rows += [(doc_id, term, tf, length, *self.filters)
                 for term, tf in self.postings.frequencies.items()]
        return rows


def _stats_delta(side: SideTable, first: int) -> str:
    """An INSERT of one (n, total, filters...) delta row, parameters from `$first` on."""
    filters = filter_columns(side.filters)
    values = ", ".join(f"${first + i}" for i in range(2 + side.filters))
    return f"INSERT INTO {side.stats.sql} (n, total{''.join(', ' + f for f in filters)}) " \
           f"VALUES ({values})"


async def write_entry(tx: Statements, side: SideTable, doc_id: str,
                      old: SearchEntry | None, new: SearchEntry | None) -> None:
    """Replace a document's rows in one search index (old None: an insert), and add the
    change to the corpus statistics (one delta row per version)."""
    if old is not None:
        await tx.execute(
            f"WITH gone AS (DELETE FROM {side.sql} WHERE doc_id = $1) {_stats_delta(side, 2)}",
            doc_id, -1, -old.postings.length, *old.filters)
    if new is None:
        return
    filters = filter_columns(len(new.filters))
    columns = ", ".join(["doc_id", "term", "tf", "len", *filters])
    consts = "".join(f", ${i + 5}" for i in range(len(filters)))
    terms = [DOC_TERM, *new.postings.frequencies]
    tfs = [0, *new.postings.frequencies.values()]
    delta = _stats_delta(side, 5 + len(filters))
    await tx.execute(
        f"WITH added AS ({delta}) INSERT INTO {side.sql} ({columns}) SELECT $1, t, f, $4{consts} "
        "FROM unnest($2::text[], $3::int[]) AS u(t, f)",
        doc_id, terms, tfs, new.postings.length, *new.filters, 1, new.postings.length,
        *new.filters)


class Connection(Protocol):
    """A connection outside any transaction, or a transaction's (asyncpg's `execute`)."""

    async def execute(self, sql: str, *args: Any) -> Any: ...


async def create_stats(conn: Connection, side: SideTable) -> None:
    """The statistics table of a freshly filled postings table: one row per filter values."""
    filters = filter_columns(side.filters)
    stats = side.stats.sql
    await conn.execute(f"""CREATE TABLE {stats} (n bigint NOT NULL, total bigint NOT NULL
        {''.join(f', {f} bytea NOT NULL' for f in filters)})""")
    for f in filters:
        await conn.execute(f"CREATE INDEX ON {stats} ({f})")
    await compact_stats(conn, side, source=f"SELECT 1 AS n, len AS total"
                        f"{''.join(', ' + f for f in filters)} FROM {side.sql} WHERE term = ''")


async def compact_stats(conn: Connection, side: SideTable, source: str | None = None) -> None:
    """Fold a search index's statistics deltas into one row per filter values (or, with
    `source`, fill the table from those rows).

    One statement: a search sees the rows before or after it, and their sums are equal.
    Deltas committed while it runs are not in its snapshot and stay for the next time.
    """
    filters = filter_columns(side.filters)
    columns = "".join(", " + f for f in filters)
    group = f" GROUP BY {', '.join(filters)}" if filters else ""
    stats = side.stats.sql
    prefix = ""
    if source is None:
        prefix = f"WITH gone AS (DELETE FROM {stats} RETURNING *) "
        source = "SELECT * FROM gone"
    await conn.execute(
        f"{prefix}INSERT INTO {stats} (n, total{columns}) SELECT sum(n), sum(total){columns} "
        f"FROM ({source}) AS s{group} HAVING sum(n) <> 0 OR sum(total) <> 0")


@dataclass(frozen=True)
class Ranked:
    """One ranked document: its id and its BM25 score."""

    doc_id: str
    score: float


def ranking_statement(side: SideTable, query: QueryTerms, filters: dict[int, bytes],
                      limit: int) -> tuple[str, list[Any]]:
    """The SQL and arguments that rank a query's matches (the benchmark runs it raw too)."""
    args: list[Any] = [list(query.exact), limit]
    where = ""
    for column in sorted(filters):
        args.append(filters[column])
        where += f" AND f{column} = ${len(args)}"
    match = "term = ANY($1::text[])"
    if query.prefix is not None:
        args.append(query.prefix)
        p = f"${len(args)}"
        match = f"({match} OR (term >= {p} AND term < {p} || chr(1114111)))"
    # The corpus is the documents the filter selects: N and the average length are summed
    # from the statistics rows of their filter values, each term's document frequency is
    # counted on its matching rows.
    sql = f"""
    WITH corpus AS (
        SELECT coalesce(sum(n), 0)::float8 AS n,
               coalesce(sum(total)::float8 / nullif(sum(n), 0), 0) AS avgdl
        FROM {side.stats.sql} WHERE true{where}),
    hits AS (
        SELECT doc_id, term, tf, len,
               CASE WHEN term = ANY($1::text[]) THEN 1.0 ELSE {PREFIX_WEIGHT} END AS w
        FROM {side.sql} WHERE term <> '' AND {match}{where}),
    df AS (SELECT term, count(*)::float8 AS df FROM hits GROUP BY term)
    SELECT h.doc_id, sum(h.w * ln(1 + (c.n - d.df + 0.5) / (d.df + 0.5))
        * h.tf * {K1 + 1} / (h.tf + {K1} * (1 - {B} + {B} * h.len / greatest(c.avgdl, 1))))
        AS score
    FROM hits h JOIN df d USING (term) CROSS JOIN corpus c
    GROUP BY h.doc_id ORDER BY score DESC, h.doc_id LIMIT $2"""
    return sql, args


async def rank(tx: Statements, side: SideTable, query: QueryTerms, filters: dict[int, bytes],
               limit: int) -> list[Ranked]:
    """The best `limit` matches of `query` among documents whose filter columns equal
    `filters` (column number -> encoded value), best first, ties by id."""
    if not query:
        return []
    sql, args = ranking_statement(side, query, filters, limit)
    rows = await tx.fetch(sql, *args)
    return [Ranked(r[0], r[1]) for r in rows]
