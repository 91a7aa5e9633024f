"""Encodings many sockets share: a result's QueryUpdated and a whole Transition, built once.

In a fan-out every socket watching one query builds the same Transition: the same versions
(the clients subscribed alike), the same modification, the same result. `SharedEncodings`
hands each socket the text the first one built, so the work per socket is a lookup, and the
server's WebSocket layer can frame that one text once for all of them
(server/sync_endpoint.py). During a notification's pass it also holds the steps sessions
took (`sharing_steps`), so sessions in one state work theirs out once
(sync/session.py). No sockets and no awaits here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from reactive_store.sync.protocol import query_result_json, transition_json

if TYPE_CHECKING:
    from reactive_store.sync.protocol import StateVersion

# A Transition's text carries the server's clock (serverTs): it is shared only this long
# after it was built, so no client is handed a stale reading.
SHARE_NS = 50_000_000
# Bounds on what is remembered; reaching either forgets everything (entries are only worth
# keeping for the length of one fan-out).
MAX_ENTRIES = 4096
MAX_BYTES = 32 * 1024 * 1024

UpdateKey = tuple[int, bytes, bytes, str | None]
TransitionKey = tuple[object, ...]


class SharedEncodings:
    """The process's memo of encoded QueryUpdated modifications and Transition texts.

    Keys hold the encoded result itself (`bytes` caches its hash, and the sessions of one
    fan-out hand in the same object, so a lookup compares by identity), never anything
    mutable: an entry is the exact encoding of its key, whoever asks.
    """

    def __init__(self) -> None:
        self._updates: dict[UpdateKey, bytes] = {}
        self._transitions: dict[TransitionKey, tuple[str, int]] = {}
        self._bytes = 0
        self.hits = 0  # lookups answered from the memo, for tests and benchmarks
        # The steps sessions took during the fan-out pass under way, keyed by all a step
        # reads of its session (sync/session.py's SharedStep); None outside a pass.
        self.steps: dict[tuple[object, ...], Any] | None = None
        self._unsettled: list[Any] = []  # sessions that took a step: settled at the end

    @contextlib.contextmanager
    def sharing_steps(self) -> Iterator[None]:
        """A fan-out pass: the live queries' results and the processed timestamp stay put
        until it ends (no await inside), so sessions in one state can share one step. The
        sessions that took a step worked out by another settle their state at the end."""
        if self.steps is not None:
            yield
            return
        self.steps = {}
        try:
            yield
        finally:
            self.steps = None
            unsettled, self._unsettled = self._unsettled, []
            for session in unsettled:
                session.settle()

    def settle_after_pass(self, session: Any) -> None:
        """`session.settle()` when the pass under way ends."""
        self._unsettled.append(session)

    def update(self, query_id: int, result_json: bytes, lines_json: bytes,
               journal: str | None) -> bytes:
        """`protocol.query_result_json` of these, encoded once."""
        key = (query_id, result_json, lines_json, journal)
        encoded = self._updates.get(key)
        if encoded is not None:
            self.hits += 1
            return encoded
        encoded = query_result_json(query_id, result_json, lines_json, journal)
        self._remember(len(encoded) + len(result_json))
        self._updates[key] = encoded
        return encoded

    def transition(self, start: StateVersion, end: StateVersion,
                   modifications: list[bytes]) -> str:
        """`protocol.transition_json` of these, built once per `SHARE_NS`."""
        key = (start, end, *modifications)
        now = time.time_ns()
        found = self._transitions.get(key)
        if found is not None and now - found[1] < SHARE_NS:
            self.hits += 1
            return found[0]
        text = transition_json(start, end, modifications, now)
        self._remember(len(text))
        self._transitions[key] = (text, now)
        return text

    def _remember(self, size: int) -> None:
        self._bytes += size
        if (self._bytes > MAX_BYTES
                or len(self._updates) + len(self._transitions) >= MAX_ENTRIES):
            self._updates.clear()
            self._transitions.clear()
            self._bytes = size
