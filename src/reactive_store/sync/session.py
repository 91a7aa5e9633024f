"""Per-connection sync state: versions, the query set, and what the client last saw.

No sockets and no awaits here: the connection task feeds it client messages and asks it for
the next Transition; it answers with a message, or with what it is waiting for.

Rule 1: every Transition starts exactly at the previous one's end version.
Rule 2: a Transition at timestamp T carries, for every query of the client, the result the
        query had at T (each LiveQuery result is usable in [ts, valid_until)), and T never
        moves backwards.
Rule 3: a Transition is never built while one of the client's mutations is in flight, so a
        MutationResponse always precedes the first Transition that includes its write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import orjson

from reactive_store.sync.protocol import (
    AddQuery,
    Authenticate,
    ClientLimitExceeded,
    Connect,
    ModifyQuerySet,
    ProtocolError,
    StateVersion,
    query_failed,
    query_removed,
)
from reactive_store.sync.shared_encodings import SharedEncodings


class QueryResult(Protocol):
    """A live query's current result, as a session reads it (`live.LiveQuery` is one).

    `result_json` is `orjson.dumps([ok, value])` (value: the Convex-encoded result, or the
    error body), b"" until the first result; it is sent as encoded, never encoded again. The
    result is the query's result at every timestamp for which `usable_at` is true.
    `lines_json` is `orjson.dumps(log_lines)` of the run that produced it: the lines go out
    with the result, and a result whose lines changed is sent again (as Convex does).
    `journal` goes out with the result too, for the client to bring back when it
    subscribes again (after a reconnect), so the query repeats its page boundaries.
    """

    ts: int
    ok: bool
    value: Any
    lines_json: bytes
    result_json: bytes
    journal: str | None

    def usable_at(self, ts: int) -> bool: ...


R = TypeVar("R", bound=QueryResult)


@dataclass
class SessionQuery(Generic[R]):
    """One query of the client. `sent_json` is the result last sent (b"" = never), and
    `sent_lines` and `sent_journal` the log lines and journal sent with it. `journal` is
    the one the query is subscribed with: the client's, from its Add."""

    query_id: int
    path: str
    args: Any
    journal: str | None = None
    live: R | None = None
    failure: dict[str, Any] | None = None  # set when the query cannot even start
    sent_json: bytes = b""
    sent_lines: bytes = b""
    sent_journal: str | None = None


@dataclass
class Waiting:
    """Why no Transition can be built yet: a commit not yet processed, or results pending."""

    for_ts: int | None = None


@dataclass(eq=False)
class SharedStep:
    """A step one session took during a fan-out pass, for the sessions in its state: what
    `next_transition` returned, the version and per-query sent values it left, and the
    state it left as a key (`SyncSession._state`)."""

    step: str | Waiting | None
    sent: StateVersion
    queries: tuple[tuple[bytes, bytes, str | None], ...]
    after: tuple[object, ...] | None


@dataclass
class SyncSession(Generic[R]):
    """The protocol state of one connection.

    `received` holds the newest query-set and identity versions the client asked for;
    `sent` is the end version of the last Transition (Rule 1). `min_ts` is raised by each
    successful mutation to its commit timestamp (read-your-writes) and `force` by every
    mutation or action response, so that a Transition follows it even when nothing changed.
    """

    max_queries: int = 1000  # 0: no limit
    session_id: str | None = None
    reconnected: bool = False
    received_query_set: int = 0
    received_identity: int = 0
    sent: StateVersion = field(default_factory=StateVersion)
    queries: dict[int, SessionQuery[R]] = field(default_factory=dict)
    removed: list[int] = field(default_factory=list)
    min_ts: int = 0
    force: bool = False
    mutations_in_flight: int = 0
    # Shared by the sessions of a deployment (the sync endpoint's), so a fan-out encodes
    # each result and Transition once.
    encodings: SharedEncodings = field(default_factory=SharedEncodings, repr=False)
    # `_state()` as the last fan-out pass left it, kept so that the next pass need not build
    # it again; None when not known. Invariant: anything that changes what `_state` reads,
    # other than a pass's shared step, sets it to None.
    state_key: tuple[object, ...] | None = field(default=None, repr=False)
    # A step taken from another session during the pass under way, whose changes to this
    # session's state wait for the pass to end (`settle`).
    unsettled: SharedStep | None = field(default=None, repr=False)

    def connect(self, msg: Connect) -> None:
        """The socket's first message: who the client is, and whether it is reconnecting."""
        if self.session_id is not None:
            raise ProtocolError("Connect: sent twice on one socket")
        self.session_id = msg.session_id
        # Only a reconnecting client can replay requests it sent before.
        self.reconnected = msg.connection_count > 0

    def require_connected(self, kind: str) -> None:
        if self.session_id is None:
            raise ProtocolError(f"{kind} before Connect: Connect must be the first message")

    def modify_query_set(
        self, msg: ModifyQuerySet
    ) -> tuple[list[SessionQuery[R]], list[SessionQuery[R]]]:
        """Apply a ModifyQuerySet; return the queries added and removed."""
        adding = sum(isinstance(mod, AddQuery) for mod in msg.modifications)
        after = len(self.queries) + adding - (len(msg.modifications) - adding)
        if self.max_queries and after > self.max_queries:
            raise ClientLimitExceeded(f"TooManySubscriptions: at most {self.max_queries} "
                                      "subscriptions per socket")
        if msg.base_version != self.received_query_set:
            raise ProtocolError(
                f"BaseVersionMismatch: ModifyQuerySet base version {msg.base_version}, "
                f"expected {self.received_query_set}"
            )
        if msg.new_version <= msg.base_version:
            raise ProtocolError(
                f"ModifyQuerySet: new version {msg.new_version} is not after "
                f"{msg.base_version}"
            )
        added: list[SessionQuery[R]] = []
        removed: list[SessionQuery[R]] = []
        for mod in msg.modifications:
            if isinstance(mod, AddQuery):
                if mod.query_id in self.queries:
                    raise ProtocolError(f"ModifyQuerySet: query {mod.query_id} added twice")
                query: SessionQuery[R] = SessionQuery(mod.query_id, mod.udf_path, mod.args,
                                                      mod.journal)
                self.queries[mod.query_id] = query
                added.append(query)
            else:
                gone = self.queries.pop(mod.query_id, None)
                if gone is None:
                    raise ProtocolError(f"ModifyQuerySet: unknown query id {mod.query_id}")
                self.removed.append(mod.query_id)
                removed.append(gone)
        self.received_query_set = msg.new_version
        self.state_key = None
        return added, removed

    def authenticate(self, msg: Authenticate) -> None:
        """Check an Authenticate's base version and apply it (call once it is verified)."""
        self.check_authenticate(msg)
        self.received_identity += 1
        self.state_key = None

    def check_authenticate(self, msg: Authenticate) -> None:
        if msg.base_version != self.received_identity:
            raise ProtocolError(
                f"Authenticate base version {msg.base_version}, expected {self.received_identity}"
            )

    def next_transition(self, processed_ts: int) -> str | Waiting | None:
        """The next Transition (as the text to send), what it waits for, or None.

        During a fan-out pass (`SharedEncodings.sharing_steps`) a session in the same state
        as one that already took its step takes the same step: the same answer, and the
        same changes to its state, without working them out again. Those changes are made
        when the pass ends (`settle`), after its writes: the writes start sooner.
        """
        if self.unsettled is not None:
            self.settle()
        steps = self.encodings.steps
        state = None if steps is None or self.removed else self.state_key or self._state()
        if state is None:
            self.state_key = None
            return self._next_transition(processed_ts)
        assert steps is not None
        key = (state, processed_ts, self.min_ts, self.force, self.mutations_in_flight)
        shared: SharedStep | None = steps.get(key)
        if shared is None:
            step = self._next_transition(processed_ts)
            after = self._state() if isinstance(step, str) else state
            shared = steps[key] = SharedStep(step, self.sent, tuple(
                (q.sent_json, q.sent_lines, q.sent_journal) for q in self.queries.values()),
                after)
        elif isinstance(shared.step, str):
            self.unsettled = shared
            self.encodings.settle_after_pass(self)
            return shared.step
        self.state_key = shared.after
        return shared.step

    def settle(self) -> None:
        """Make the state changes of the step this session took from another one.

        Invariant: between taking the step and this, nothing reads this session's state.
        The pass that took it visits each session once and never awaits, and its end
        settles every session before anything else runs (`SharedEncodings.sharing_steps`).
        """
        shared, self.unsettled = self.unsettled, None
        if shared is None:
            return
        self.sent, self.force = shared.sent, False
        for query, sent in zip(self.queries.values(), shared.queries, strict=True):
            query.sent_json, query.sent_lines, query.sent_journal = sent
        self.state_key = shared.after

    def _state(self) -> tuple[object, ...] | None:
        """What a step reads of this session, but for what `next_transition` adds to it, as
        a key; None when a query has no live result (a step is not shared then)."""
        key: list[object] = [self.sent, self.received_query_set, self.received_identity]
        for query in self.queries.values():
            if query.live is None:
                return None
            key += (query.query_id, query.live, query.sent_json, query.sent_lines,
                    query.sent_journal)
        return tuple(key)

    def _next_transition(self, processed_ts: int) -> str | Waiting | None:
        # Runs once per socket in a fan-out: one pass picks the target, one checks and
        # collects what changed, and only then is any of the session's state written.
        if self.mutations_in_flight:
            return Waiting()
        sent = self.sent
        target = max(sent.ts, self.min_ts)
        queries = self.queries.values()
        for query in queries:
            live = query.live
            if live is not None and live.result_json and live.ts > target:
                target = live.ts
        if target > processed_ts:
            return Waiting(for_ts=target)
        changed: list[SessionQuery[R]] = []
        for query in queries:
            live = query.live
            if live is None:
                if query.failure is not None and not query.sent_json:
                    changed.append(query)
            elif not live.usable_at(target):
                return Waiting()
            elif (live.result_json != query.sent_json or live.lines_json != query.sent_lines
                    or live.journal != query.sent_journal):
                changed.append(query)
        if not (changed or self.removed or self.force) and target == sent.ts and (
                self.received_query_set == sent.query_set
                and self.received_identity == sent.identity):
            return None
        end = StateVersion(self.received_query_set, self.received_identity, target)
        message = self.encodings.transition(sent, end, self._modifications(changed))
        self.sent = end
        self.removed.clear()
        self.force = False
        return message

    def _modifications(self, changed: list[SessionQuery[R]]) -> list[bytes]:
        """The encoded modifications for the removed queries and `changed`, in that order;
        marks each of `changed` as sent."""
        modifications = [orjson.dumps(query_removed(q)) for q in self.removed]
        for query in changed:
            live = query.live
            if live is None:
                assert query.failure is not None
                modifications.append(orjson.dumps(query_failed(
                    query.query_id, query.failure, query.journal)))
                query.sent_json = b"failed"
                continue
            modifications.append(self.encodings.update(query.query_id, live.result_json,
                                                       live.lines_json, live.journal))
            query.sent_json, query.sent_lines = live.result_json, live.lines_json
            query.sent_journal = live.journal
        return modifications
