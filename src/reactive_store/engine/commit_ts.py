"""A committed mutation's timestamp: from the commit stream, the sequencer, or not at all.

A commit gets its timestamp after COMMIT (storage/sequencer.py). Who needs it, and how the
commit is named, decides how it is found: a commit of buffered inserts that wants it is
sequenced in COMMIT's own message and found on the commit stream by a document it
inserted; one with a transaction id is asked for by xid; one known only by the client
request it recorded is asked for by request; nobody waiting means the sequencer is only
told to run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from reactive_store.engine.readset import IndexRef, WriteSet
from reactive_store.schema import BY_ID
from reactive_store.storage import Store
from reactive_store.storage.sequencer import CommitKey

# The commit stream's `watch` (live/commits.py): the timestamp of the next commit delivered
# that holds `key` in index `ref`.
CommitWatch = Callable[[IndexRef, bytes], "asyncio.Future[int]"]
# How long a commit watched for on the stream may take before the sequencer is asked.
WATCH_SECONDS = 1.0


class CommitTimestamps:
    """Finds commit timestamps for the engine; `stream` is set by the deployment."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.stream: CommitWatch | None = None

    def watch(self, writes: WriteSet) -> asyncio.Future[int] | None:
        """Watch the stream for this commit of inserts only, by a document it inserted (a
        fresh id names exactly one commit); None when there is no stream."""
        if self.stream is None:
            return None
        for (table, index), keys in writes.keys.items():
            if index == BY_ID and keys:
                return self.stream((table, index), next(iter(keys)))
        return None

    async def watched(self, watch: asyncio.Future[int], commit: CommitKey | None) -> int:
        """The timestamp the stream delivered the commit at; if it does not within
        WATCH_SECONDS (the listener is reconnecting), the sequencer finds it by request."""
        try:
            return await asyncio.wait_for(watch, WATCH_SECONDS)
        except TimeoutError:
            assert commit is not None  # buffered only when a request names the commit
            return await self.store.commit_ts(commit)

    async def of(self, commit: CommitKey | None, wrote: bool, wait: bool) -> int | None:
        """The timestamp of a commit (its xid, or the request it recorded), or of the
        newest commit when nothing was written; without `wait`, None, and the commit is
        sequenced soon all the same."""
        if not wait:
            if isinstance(commit, int):
                self.store.sequencer.announce(commit)
            elif wrote:
                self.store.sequencer.nudge()
            return None
        if not wrote:
            return await self.store.latest_ts()
        assert commit is not None  # buffered only when a request names the commit
        return await self.store.commit_ts(commit)


def cancel(watch: asyncio.Future[int] | None) -> None:
    """Stop watching (an attempt that did not commit)."""
    if watch is not None:
        watch.cancel()
