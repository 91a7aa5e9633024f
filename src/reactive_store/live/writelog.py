"""The recent commits a process has processed, in timestamp order, for read-set refreshes."""

from __future__ import annotations

import bisect
from collections import deque

from reactive_store.engine.readset import ReadSet, WriteSet


class WriteLog:
    """Committed write sets with ts in (`floor`, `processed_ts`], oldest first.

    `processed_ts` is the newest commit the process has taken in from the commit stream;
    it only moves forward. Entries older than the retention are dropped, raising `floor`:
    a refresh that reaches below `floor` cannot be proven and reports a conflict.
    """

    def __init__(self, processed_ts: int = 0, max_entries: int = 10_000) -> None:
        self._ts: deque[int] = deque()
        self._writes: deque[WriteSet] = deque()
        self.processed_ts = processed_ts
        self.floor = processed_ts
        self._max = max_entries

    def append(self, ts: int, writes: WriteSet) -> None:
        if ts <= self.processed_ts:
            raise ValueError(f"commit {ts} is not after {self.processed_ts}")
        self._ts.append(ts)
        self._writes.append(writes)
        self.processed_ts = ts
        while len(self._ts) > self._max:
            self.floor = self._ts.popleft()
            self._writes.popleft()

    def refresh(self, reads: ReadSet, since: int, upto: int | None = None) -> int | None:
        """The first commit in (since, upto] that wrote inside `reads`, or None if none did.

        This is the check that lets a result computed at snapshot `since` be used at any
        later timestamp up to `upto` (default: everything processed): the same overlap test
        decides subscription invalidation. Below the retained window it answers
        conservatively: `since + 1`.
        """
        end = self.processed_ts if upto is None else min(upto, self.processed_ts)
        if since >= end:
            return None
        if since < self.floor:
            # Commits in (since, floor] were evicted: nothing can be proven about them, so
            # the result counts as invalid from the first timestamp after its snapshot.
            return since + 1
        start = bisect.bisect_right(self._ts, since)
        for i in range(start, len(self._ts)):
            ts = self._ts[i]
            if ts > end:
                break
            if reads.overlaps(self._writes[i]):
                return ts
        return None
