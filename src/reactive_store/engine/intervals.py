"""Half-open byte intervals [start, end) over index keys, and merged sets of them."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Interval:
    """Keys k with start <= k < end; `end is None` means unbounded above."""

    start: bytes
    end: bytes | None

    def __post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"interval end {self.end!r} is before its start {self.start!r}")

    @staticmethod
    def point(key: bytes) -> Interval:
        return Interval(key, key + b"\x00")

    @staticmethod
    def all() -> Interval:
        return Interval(b"", None)

    @property
    def is_empty(self) -> bool:
        return self.end is not None and self.end <= self.start

    def contains(self, key: bytes) -> bool:
        return self.start <= key and (self.end is None or key < self.end)

    def __repr__(self) -> str:
        return f"[{self.start.hex()}, {'inf' if self.end is None else self.end.hex()})"


class IntervalSet:
    """A union of intervals, kept sorted and merged, so that membership is one bisect.

    Invariant: `_starts[i] < _ends[i] <= _starts[i+1]` (an end of None is +inf and can only
    be the last); adjacent or overlapping inputs are merged on insertion.
    """

    __slots__ = ("_ends", "_starts")

    def __init__(self, intervals: Iterable[Interval] = ()) -> None:
        self._starts: list[bytes] = []
        self._ends: list[bytes | None] = []
        for interval in intervals:
            self.add(interval)

    def add(self, interval: Interval) -> None:
        if interval.is_empty:
            return
        start, end = interval.start, interval.end
        # First stored interval whose end reaches `start` (it may merge).
        i = bisect.bisect_left(self._starts, start)
        if i > 0 and _end_ge(self._ends[i - 1], start):
            i -= 1
        j = i
        while j < len(self._starts) and (end is None or self._starts[j] <= end):
            start = min(start, self._starts[j])
            end = None if end is None or self._ends[j] is None else max(end, self._ends[j])  # type: ignore[type-var]
            j += 1
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]

    def contains(self, key: bytes) -> bool:
        i = bisect.bisect_right(self._starts, key) - 1
        return i >= 0 and _end_gt(self._ends[i], key)

    def __iter__(self) -> Iterator[Interval]:
        for start, end in zip(self._starts, self._ends, strict=True):
            yield Interval(start, end)

    def __len__(self) -> int:
        return len(self._starts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IntervalSet) and list(self) == list(other)

    def __repr__(self) -> str:
        return "IntervalSet(" + ", ".join(map(repr, self)) + ")"


def _end_ge(end: bytes | None, key: bytes) -> bool:
    return end is None or end >= key


def _end_gt(end: bytes | None, key: bytes) -> bool:
    return end is None or end > key
