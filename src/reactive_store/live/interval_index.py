"""Stabbing queries over half-open byte intervals: which entries hold an interval containing k.

The key space is cut at every interval boundary into elementary segments, each holding the
set of entries whose intervals cover it. A lookup is one bisect plus the answer, so matching
a commit costs O(keys written x log intervals), independent of how many intervals are live.
Intervals that cover many segments (full scans) are kept in a short separate list instead of
being copied into every segment.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)

_WIDE_SEGMENTS = 64


class IntervalIndex(Generic[T]):
    """A multimap from intervals [start, end) (end None = unbounded) to entries.

    Invariants: `_bounds` is sorted and unique; `_segments[i]` holds exactly the entries
    with a narrow interval covering [_bounds[i], _bounds[i+1]) (the last segment is
    unbounded above); keys below `_bounds[0]` are covered by no narrow interval.
    `_live[entry]` counts each interval the entry added and has not removed, so adding one
    interval twice needs two removals; `_wide` holds the intervals kept out of segments.
    """

    def __init__(self) -> None:
        self._bounds: list[bytes] = []
        self._segments: list[set[T]] = []
        self._wide: set[tuple[T, bytes, bytes | None]] = set()
        self._live: dict[T, Counter[tuple[bytes, bytes | None]]] = {}
        self._size = 0
        self._dead_bounds = 0

    def __len__(self) -> int:
        return self._size

    def _boundary(self, key: bytes) -> int:
        i = bisect.bisect_left(self._bounds, key)
        if i < len(self._bounds) and self._bounds[i] == key:
            return i
        # The new segment [key, next) was part of segment i-1; it starts with its entries.
        self._bounds.insert(i, key)
        self._segments.insert(i, set(self._segments[i - 1]) if i > 0 else set())
        return i

    def _span(self, start: bytes, end: bytes | None) -> range:
        i = bisect.bisect_left(self._bounds, start)
        j = len(self._bounds) if end is None else bisect.bisect_left(self._bounds, end)
        return range(i, j)

    def _place(self, entry: T, start: bytes, end: bytes | None) -> None:
        i = self._boundary(start)
        j = len(self._bounds) if end is None else self._boundary(end)
        if j - i > _WIDE_SEGMENTS:
            self._wide.add((entry, start, end))
            return
        for k in range(i, j):
            self._segments[k].add(entry)

    def add(self, entry: T, start: bytes, end: bytes | None) -> None:
        if end is not None and end <= start:
            return
        counts = self._live.setdefault(entry, Counter())
        counts[(start, end)] += 1
        self._size += 1
        if counts[(start, end)] == 1:
            self._place(entry, start, end)

    def remove(self, entry: T, start: bytes, end: bytes | None) -> None:
        counts = self._live.get(entry)
        if counts is None or counts[(start, end)] <= 0:
            return
        counts[(start, end)] -= 1
        self._size -= 1
        if counts[(start, end)] > 0:
            return
        del counts[(start, end)]
        if not counts:
            del self._live[entry]
        if (entry, start, end) in self._wide:
            self._wide.discard((entry, start, end))
        else:
            for k in self._span(start, end):
                self._segments[k].discard(entry)
            # The entry's other intervals may overlap the one removed: put them back.
            for s, e in counts:
                if (entry, s, e) not in self._wide and (end is None or s < end) and (
                    e is None or e > start
                ):
                    for k in self._span(s, e):
                        self._segments[k].add(entry)
        self._dead_bounds += 2
        if self._dead_bounds > 2 * self._size + 64:
            self._compact()

    def remove_entry(self, entry: T) -> None:
        """Remove every interval of `entry`."""
        for (start, end), count in list(self._live.get(entry, {}).items()):
            for _ in range(count):
                self.remove(entry, start, end)

    def _compact(self) -> None:
        live = [(e, s, end, n) for e, c in self._live.items() for (s, end), n in c.items()]
        self._bounds, self._segments = [], []
        self._wide.clear()
        self._live.clear()
        self._size = 0
        self._dead_bounds = 0
        for entry, start, end, count in live:
            for _ in range(count):
                self.add(entry, start, end)

    def stab(self, key: bytes) -> set[T]:
        """Every entry with an interval that contains `key`."""
        return self.stab_many((key,))

    def stab_many(self, keys: Iterable[bytes]) -> set[T]:
        """Every entry with an interval that contains one of `keys`."""
        found: set[T] = set()
        for key in keys:
            i = bisect.bisect_right(self._bounds, key) - 1
            if i >= 0:
                found |= self._segments[i]
            for entry, start, end in self._wide:
                if start <= key and (end is None or key < end):
                    found.add(entry)
        return found
