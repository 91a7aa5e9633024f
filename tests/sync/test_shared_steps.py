"""Fan-out passes: sessions in one state share one step, and each ends as if it took it alone.

`SyncSession.next_transition` inside `SharedEncodings.sharing_steps` is checked against the
same sessions stepping with no pass, through random runs of commits, mutations, query-set
changes and re-authentication.
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from reactive_store.live.subscriptions import LiveQuery, LiveState, query_key
from reactive_store.sync.protocol import AddQuery, Authenticate, ModifyQuerySet, RemoveQuery
from reactive_store.sync.session import SyncSession, Waiting
from reactive_store.sync.shared_encodings import SharedEncodings


def new_live(name: str) -> LiveQuery:
    return LiveQuery(query_key(name, {}, None), name, {}, None)


def set_result(live: LiveQuery, ts: int, value: Any, valid_until: int | None = None) -> None:
    live.ts, live.value, live.valid_until = ts, value, valid_until
    live.result_json = orjson.dumps([True, value])
    live.state = LiveState.FRESH if valid_until is None else LiveState.PENDING


def subscribe(session: SyncSession, qid: int, live: LiveQuery) -> None:
    base = session.received_query_set
    added, _ = session.modify_query_set(
        ModifyQuerySet(base, base + 1, [AddQuery(qid, live.path, {}, None)]))
    added[0].live = live  # as the connection's _subscribe does, right after


def comparable(step: str | Waiting | None) -> Any:
    """A step with the server's clock left out (two encodings stamp their own)."""
    if isinstance(step, str):
        message = json.loads(step)
        del message["serverTs"]
        return message
    if isinstance(step, Waiting):
        return ("waiting", step.for_ts)
    return step


def state(session: SyncSession) -> Any:
    return (session.sent, session.force, list(session.removed), session.min_ts,
            [(q.query_id, q.live, q.sent_json, q.sent_lines, q.sent_journal)
             for q in session.queries.values()])


def in_one_pass(encodings: SharedEncodings, sessions: list[SyncSession], processed_ts: int
                ) -> tuple[list[str | Waiting | None], int]:
    """Every session's step in one fan-out pass, and how many steps were worked out."""
    with encodings.sharing_steps():
        steps = [session.next_transition(processed_ts) for session in sessions]
        assert encodings.steps is not None
        return steps, len(encodings.steps)


def one_room(count: int, watching: int | None = None
             ) -> tuple[SharedEncodings, LiveQuery, list[SyncSession]]:
    """`count` sessions sharing one memo; the first `watching` of them (all by default)
    subscribe to a room whose result is ["a"] at 1 and take their first step in one pass."""
    encodings = SharedEncodings()
    live = new_live("room:list")
    set_result(live, 1, ["a"])
    sessions = [SyncSession(encodings=encodings) for _ in range(count)]
    watchers = sessions[:watching]
    for session in watchers:
        subscribe(session, 0, live)
    first, _ = in_one_pass(encodings, watchers, 1)
    assert len(set(first)) == 1 and isinstance(first[0], str)
    return encodings, live, sessions


def test_sessions_in_one_state_take_one_step_worked_out_once() -> None:
    encodings, live, sessions = one_room(100)
    set_result(live, 2, ["a", "b"])
    second, worked_out = in_one_pass(encodings, sessions, 2)
    assert worked_out == 1
    assert len(set(second)) == 1 and comparable(second[0])["modifications"][0]["value"] == [
        "a", "b"]
    assert {session.sent.ts for session in sessions} == {2}
    assert encodings.steps is None  # only during the pass


def test_a_shared_step_settles_when_the_pass_ends() -> None:
    """A session that took another's step keeps its state until the pass ends (its writes go
    out first); asked again within the pass, it settles first and answers as alone."""
    encodings, live, sessions = one_room(3)
    set_result(live, 2, ["a", "b"])
    with encodings.sharing_steps():
        steps = [session.next_transition(2) for session in sessions]
        assert len(set(steps)) == 1 and isinstance(steps[0], str)
        assert [session.sent.ts for session in sessions] == [2, 1, 1]
        assert sessions[0].unsettled is None and sessions[1].unsettled is not None
        assert sessions[1].next_transition(2) is None  # settled, then nothing new
        assert sessions[1].sent.ts == 2 and sessions[1].unsettled is None
    assert [session.sent.ts for session in sessions] == [2, 2, 2]
    assert all(session.unsettled is None for session in sessions)
    assert sessions[2].queries[0].sent_json == live.result_json


def test_a_session_in_another_state_takes_its_own_step() -> None:
    encodings, live, sessions = one_room(3)
    sessions[1].mutations_in_flight = 1
    sessions[2].min_ts = 3  # its write commits at 3: the result at 2 is not enough
    set_result(live, 2, ["a", "b"])
    steps, worked_out = in_one_pass(encodings, sessions, 2)
    assert worked_out == 3
    assert isinstance(steps[0], str)
    assert comparable(steps[1]) == ("waiting", None)
    assert comparable(steps[2]) == ("waiting", 3)
    assert [session.sent.ts for session in sessions] == [2, 1, 1]


def test_a_session_that_changed_its_query_set_leaves_its_group() -> None:
    encodings, room, sessions = one_room(2)
    other = new_live("other:list")
    set_result(other, 1, [])
    assert sessions[0].state_key == sessions[1].state_key is not None
    subscribe(sessions[1], 1, other)
    assert sessions[1].state_key is None
    set_result(room, 2, ["a", "b"])
    steps, _ = in_one_pass(encodings, sessions, 2)
    first, second = (comparable(step) for step in steps)
    assert [m["queryId"] for m in first["modifications"]] == [0]
    assert [m["queryId"] for m in second["modifications"]] == [0, 1]
    assert sessions[0].state_key != sessions[1].state_key


def test_a_session_that_joined_between_passes_shares_the_next_step() -> None:
    encodings, live, sessions = one_room(3, watching=2)
    subscribe(sessions[2], 0, live)
    assert isinstance(sessions[2].next_transition(1), str)  # its pump, outside a pass
    set_result(live, 2, ["a", "b"])
    steps, worked_out = in_one_pass(encodings, sessions, 2)
    assert worked_out == 1
    assert len(set(steps)) == 1


class Run:
    """Two copies of one population of sessions over the same live queries: `shared` steps
    in fan-out passes, `alone` never does. Every operation is applied to both."""

    def __init__(self, rng: random.Random, sessions: int, lives: int) -> None:
        self.rng = rng
        self.encodings = SharedEncodings()
        self.shared = [SyncSession(encodings=self.encodings) for _ in range(sessions)]
        self.alone = [SyncSession() for _ in range(sessions)]
        self.lives = [new_live(f"q{n}:list") for n in range(lives)]
        self.clock = 1
        for live in self.lives:
            set_result(live, 1, 0)
        self.calls = 0

    def both(self, index: int) -> tuple[SyncSession, SyncSession]:
        return self.shared[index], self.alone[index]

    def commit(self) -> None:
        self.clock += 1
        live = self.rng.choice(self.lives)
        if self.rng.random() < 0.2:  # invalidated, its re-run not back yet
            live.valid_until = self.clock
            live.state = LiveState.PENDING
        else:
            set_result(live, self.clock, self.rng.randrange(3))

    def client_op(self, index: int) -> None:
        op = self.rng.choice(["add", "remove", "auth", "mutate", "mutated"])
        for session in self.both(index):
            if op == "add":
                qid = max(session.queries, default=-1) + 1
                subscribe(session, qid, self.lives[(index + qid) % len(self.lives)])
            elif op == "remove" and session.queries:
                base = session.received_query_set
                session.modify_query_set(ModifyQuerySet(
                    base, base + 1, [RemoveQuery(next(iter(session.queries)))]))
            elif op == "auth":
                session.authenticate(Authenticate(session.received_identity, "None", None, None))
            elif op == "mutate":
                session.mutations_in_flight += 1
            elif op == "mutated" and session.mutations_in_flight:
                session.mutations_in_flight -= 1
                session.min_ts = max(session.min_ts, self.clock)
                session.force = True

    def fan_out(self) -> None:
        shared, worked_out = in_one_pass(self.encodings, self.shared, self.clock)
        self.calls += worked_out
        alone = [session.next_transition(self.clock) for session in self.alone]
        self.check(shared, alone)

    def pump(self, index: int) -> None:
        shared, alone = self.both(index)
        self.check([shared.next_transition(self.clock)], [alone.next_transition(self.clock)])

    def check(self, shared: list[Any], alone: list[Any]) -> None:
        assert [comparable(step) for step in shared] == [comparable(step) for step in alone]
        assert [state(session) for session in self.shared] == [
            state(session) for session in self.alone]


@pytest.mark.parametrize("seed", range(30))
def test_shared_steps_leave_every_session_as_stepping_alone_would(seed: int) -> None:
    rng = random.Random(seed)
    run = Run(rng, sessions=12, lives=3)
    for index in range(len(run.shared)):
        for session in run.both(index):
            subscribe(session, 0, run.lives[0])
    passes = 0
    for _ in range(150):
        roll = rng.random()
        if roll < 0.35:
            run.commit()
        elif roll < 0.42:
            run.client_op(rng.randrange(len(run.shared)))
        elif roll < 0.47:
            run.pump(rng.randrange(len(run.shared)))
        else:
            run.fan_out()
            passes += 1
    # Sessions did share: far fewer steps were worked out than were taken.
    assert run.calls < passes * len(run.shared) / 2, (run.calls, passes)
