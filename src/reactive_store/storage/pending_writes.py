"""Buffered document writes, sent as few statements as they can be.

A transaction that buffers its writes (storage/transaction.py) sends them with its next
statement or with COMMIT, as SQL with literal values. Each statement Postgres parses and
plans on its own, so a batch of scheduled jobs (an insert and a job update each) would cost
two statements per job. When no document is written twice, the order of the writes cannot
change the outcome: every row is touched once, and every index key ends with its document's
id, so two documents never compete for one key. The writes are then grouped, one multi-row
INSERT per table and column list, one UPDATE ... FROM (VALUES ...) per table and column list
and one DELETE per table. A document written twice keeps every write in order, one statement
each.

An update may name the row version it replaces by its `ctid` (the job runner's batches):
then it reaches the row by a TID scan, never through an index or a table scan, so under
SERIALIZABLE it holds predicate locks on that row's heap page alone (jobs/batch.py says why).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from reactive_store.storage.connections import sql_literal

SqlValue = str | float | bytes


class PendingWrite(NamedTuple):
    """One buffered write. `columns` are what an insert fills, or what an update sets (`doc`,
    then key columns); `literals` are the row's values as SQL literals in that order, an
    update's preceded by its id."""

    kind: str  # "insert", "update", "update_tid" (the first literal a ctid) or "delete"
    table: str  # the table's SQL name
    columns: tuple[str, ...]
    doc_id: str
    literals: tuple[str, ...]  # empty for a delete

    @property
    def row(self) -> str:
        return "(" + ", ".join(self.literals) + ")"


class PendingWrites:
    """The buffered writes of one transaction, in the order they were made."""

    def __init__(self) -> None:
        self._writes: list[PendingWrite] = []
        self._targets: set[tuple[str, str]] = set()
        self._distinct = True  # no document is written twice

    def __bool__(self) -> bool:
        return bool(self._writes)

    def insert(self, table: str, columns: tuple[str, ...], values: Sequence[SqlValue]) -> None:
        """`values` fill `columns`, which start with `_id`."""
        self._add(PendingWrite("insert", table, columns, str(values[0]),
                               tuple(map(sql_literal, values))))

    def update(self, table: str, doc_id: str, doc: str, keys: dict[str, bytes],
               tid: str | None = None) -> None:
        """Set the document to `doc` and the key columns (name: key) to their keys; `tid`
        is the ctid of the row version to update, when known."""
        values: list[SqlValue] = [doc_id, doc, *keys.values()]
        literals = tuple(map(sql_literal, values))
        if tid is None:
            self._add(PendingWrite("update", table, ("doc", *keys), doc_id, literals))
        else:
            self._add(PendingWrite("update_tid", table, ("doc", *keys), doc_id,
                                   (sql_literal(tid), *literals)))

    def delete(self, table: str, doc_id: str) -> None:
        self._add(PendingWrite("delete", table, (), doc_id, ()))

    def _add(self, write: PendingWrite) -> None:
        target = (write.table, write.doc_id)
        if target in self._targets:
            self._distinct = False
        self._targets.add(target)
        self._writes.append(write)

    def take_sql(self) -> str:
        """The statements that make every buffered write (";"-separated), and forget them."""
        writes, distinct = self._writes, self._distinct
        self._writes, self._targets, self._distinct = [], set(), True
        if not distinct or len(writes) < 2:
            return "; ".join(one_statement(w) for w in writes)
        return "; ".join(grouped_statements(writes))


def one_statement(write: PendingWrite) -> str:
    if write.kind == "insert":
        return f"INSERT INTO {write.table} ({', '.join(write.columns)}) VALUES {write.row}"
    if write.kind in ("update", "update_tid"):
        # One row by ctid needs no planner settings: a TID scan is the cheapest path.
        by_tid = write.kind == "update_tid"
        head = 2 if by_tid else 1  # the literals before the columns': (ctid,) id
        sets = ", ".join(f"{c} = {v}" for c, v in zip(
            write.columns, write.literals[head:], strict=True))
        match = f"ctid = {write.literals[0]}::tid AND " if by_tid else ""
        return f"UPDATE {write.table} SET {sets} WHERE {match}_id = {write.literals[head - 1]}"
    return f"DELETE FROM {write.table} WHERE _id = {sql_literal(write.doc_id)}"


def grouped_statements(writes: list[PendingWrite]) -> list[str]:
    """One statement per kind, table and column list, in the order each group first
    appears; only for writes that touch every document once."""
    groups: dict[tuple[str, str, tuple[str, ...]], list[PendingWrite]] = {}
    for write in writes:
        groups.setdefault((write.kind, write.table, write.columns), []).append(write)
    statements = []
    for (kind, table, columns), group in groups.items():
        if kind == "insert":
            statements.append(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                              + ", ".join(w.row for w in group))
        elif kind == "update":
            statements.append(update_sql(table, columns, [w.row for w in group]))
        elif kind == "update_tid":
            statements += tid_update_sql(table, columns, [w.row for w in group])
        else:
            ids = ", ".join(sql_literal(w.doc_id) for w in group)
            statements.append(f"DELETE FROM {table} WHERE _id IN ({ids})")
    return statements


def update_sql(table: str, columns: tuple[str, ...], rows: list[str], by_tid: bool = False
               ) -> str:
    """An UPDATE setting `columns` (the first is the json document, the rest bytea keys)
    from `rows` of (id, document, keys...), matched by id; with `by_tid`, rows of (ctid,
    id, document, keys...), each reached by its ctid as well."""
    sets = ", ".join(f"{c} = v.{c}" + ("::json" if c == "doc" else "") for c in columns)
    names, match = ("tid, _id", "t.ctid = v.tid::tid AND ") if by_tid else ("_id", "")
    return (f"UPDATE {table} AS t SET {sets} FROM (VALUES {', '.join(rows)}) "
            f"AS v({names}, {', '.join(columns)}) WHERE {match}t._id = v._id COLLATE \"C\"")


# Planner settings that leave a TID scan the only way in: for many rows, a table scan and a
# hash join cost less, and would take a predicate lock on the whole table.
TID_ONLY = ("enable_seqscan", "enable_indexscan", "enable_bitmapscan", "enable_hashjoin",
            "enable_mergejoin")
TID_ONLY_ON = "; ".join(f"SET LOCAL {name} = off" for name in TID_ONLY)
TID_ONLY_OFF = "; ".join(f"RESET {name}" for name in TID_ONLY)


def tid_update_sql(table: str, columns: tuple[str, ...], rows: list[str]) -> list[str]:
    """Statements updating `rows` of (ctid, id, document, keys...), each reached by its ctid
    (a nested loop over the values, a TID scan inside), the planner settings restored after."""
    return [TID_ONLY_ON, update_sql(table, columns, rows, by_tid=True), TID_ONLY_OFF]
