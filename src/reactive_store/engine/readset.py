"""What a function read (index intervals) and what a commit wrote (index keys)."""

from __future__ import annotations

from binascii import a2b_base64, b2a_base64
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

from reactive_store.engine.intervals import Interval, IntervalSet

# (table, index) -> ...; "by_id" names the primary-key index of every table.
IndexRef = tuple[str, str]


@dataclass
class ReadSet:
    """The index intervals a query or mutation consumed, per (table, index).

    Only what was actually consumed is recorded: a `take(n)` stops at the last key it
    returned, a `get` is a single point, and a `filter` narrows nothing (what was scanned
    is what was read).
    """

    intervals: dict[IndexRef, IntervalSet] = field(default_factory=dict)

    def record(self, table: str, index: str, interval: Interval) -> None:
        self.intervals.setdefault((table, index), IntervalSet()).add(interval)

    def overlaps(self, writes: WriteSet) -> bool:
        """True when any key written lies inside an interval read.

        This one check decides whether a commit can have changed this function's result:
        a subscription re-runs exactly when it holds. Every written document contributes
        its old and its new key in every index, so moving a document into or out of a
        read range, inserting into it and deleting from it are all caught.
        """
        for ref, keys in writes.keys.items():
            intervals = self.intervals.get(ref)
            if intervals is not None and any(intervals.contains(k) for k in keys):
                return True
        return False

    def __iter__(self) -> Iterator[tuple[IndexRef, Interval]]:
        for ref, intervals in self.intervals.items():
            for interval in intervals:
                yield ref, interval

    def interval_count(self) -> int:
        return sum(len(s) for s in self.intervals.values())


@dataclass
class WriteSet:
    """The index keys a transaction touched: for each written document, old and new keys."""

    keys: dict[IndexRef, set[bytes]] = field(default_factory=dict)

    def add(self, table: str, index: str, key: bytes) -> None:
        self.keys.setdefault((table, index), set()).add(key)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def to_text(self) -> str:
        """A compact JSON form for the commit log and NOTIFY payloads."""
        rows = [
            [t, i, [b2a_base64(k, newline=False).decode() for k in sorted(keys)]]
            for (t, i), keys in self.keys.items()
        ]
        return orjson.dumps(rows).decode()

    @staticmethod
    def from_text(text: str) -> WriteSet:
        ws = WriteSet()
        for table, index, keys in orjson.loads(text):
            ws.keys[(table, index)] = {a2b_base64(k) for k in keys}
        return ws
