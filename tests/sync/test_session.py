"""sync.py: SyncSession driven with plain objects (no socket), h11 style.

LiveQuery objects are real ones whose result fields (ts, valid_until, ok, value,
result_json) are set by hand, the way subscriptions.py would set them.
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from reactive_store.live.subscriptions import LiveQuery, LiveState, query_key
from reactive_store.sync.protocol import (
    AddQuery,
    Authenticate,
    Connect,
    ModifyQuerySet,
    ProtocolError,
    RemoveQuery,
    StateVersion,
    decode_ts,
    encode_ts,
)
from reactive_store.sync.session import SessionQuery, SyncSession, Waiting

ZERO = {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}


def new_live(path: str = "q:list", args: Any = None) -> LiveQuery:
    args = {} if args is None else args
    return LiveQuery(query_key(path, args, None), path, args, None)


def set_result(live: LiveQuery, ts: int, value: Any, *, ok: bool = True,
               valid_until: int | None = None) -> LiveQuery:
    live.ts = ts
    live.ok = ok
    live.value = value
    live.valid_until = valid_until
    live.result_json = orjson.dumps([ok, value])
    live.state = LiveState.FRESH if valid_until is None else LiveState.PENDING
    return live


def result(ts: int, value: Any, **kw: Any) -> LiveQuery:
    return set_result(new_live(), ts, value, **kw)


def add(session: SyncSession, *pairs: tuple[int, LiveQuery | None]) -> list[SessionQuery]:
    base = session.received_query_set
    added, _ = session.modify_query_set(ModifyQuerySet(
        base, base + 1, [AddQuery(qid, "q:list", {}, None) for qid, _ in pairs]))
    for query, (_, live) in zip(added, pairs, strict=True):
        query.live = live
    return added


def remove(session: SyncSession, *qids: int) -> list[SessionQuery]:
    base = session.received_query_set
    _, removed = session.modify_query_set(
        ModifyQuerySet(base, base + 1, [RemoveQuery(q) for q in qids]))
    return removed


def transition_of(out: Any) -> dict[str, Any]:
    assert isinstance(out, str), out
    message: dict[str, Any] = json.loads(out)  # the text is strict JSON, as sent
    assert message["type"] == "Transition"
    return message


def end_ts(msg: dict[str, Any]) -> int:
    return decode_ts(msg["endVersion"]["ts"])


def mods(msg: dict[str, Any]) -> list[tuple[str, int]]:
    return [(m["type"], m["queryId"]) for m in msg["modifications"]]


# -- ModifyQuerySet and Authenticate ----------------------------------------------------------

def test_modify_query_set_adds_and_removes() -> None:
    session = SyncSession()
    added, removed = session.modify_query_set(ModifyQuerySet(0, 1, [
        AddQuery(1, "a:b", {"x": 1}, None), AddQuery(2, "a:c", {}, "j")]))
    assert [q.query_id for q in added] == [1, 2]
    assert removed == []
    assert added[0].path == "a:b"
    assert added[0].args == {"x": 1}
    assert added[0].sent_json == b""
    assert session.received_query_set == 1
    added, removed = session.modify_query_set(ModifyQuerySet(1, 2, [RemoveQuery(1)]))
    assert added == []
    assert [q.query_id for q in removed] == [1]
    assert set(session.queries) == {2}
    assert session.removed == [1]
    assert session.received_query_set == 2


def test_base_version_mismatch() -> None:
    session = SyncSession()
    with pytest.raises(ProtocolError, match="BaseVersionMismatch"):
        session.modify_query_set(ModifyQuerySet(1, 2, []))
    session.modify_query_set(ModifyQuerySet(0, 1, []))
    with pytest.raises(ProtocolError, match="BaseVersionMismatch"):
        session.modify_query_set(ModifyQuerySet(0, 1, []))
    with pytest.raises(ProtocolError, match="BaseVersionMismatch"):
        session.modify_query_set(ModifyQuerySet(2, 3, []))
    assert session.received_query_set == 1


@pytest.mark.parametrize("new", [0, 3])
def test_new_version_must_be_after_base(new: int) -> None:
    session = SyncSession()
    session.modify_query_set(ModifyQuerySet(0, 3, []))
    with pytest.raises(ProtocolError, match="not after"):
        session.modify_query_set(ModifyQuerySet(3, new, [AddQuery(1, "a:b", {}, None)]))
    assert session.received_query_set == 3
    assert session.queries == {}


def test_version_may_jump_forward() -> None:
    session = SyncSession()
    session.modify_query_set(ModifyQuerySet(0, 5, []))
    assert session.received_query_set == 5


def test_adding_an_existing_query_id() -> None:
    session = SyncSession()
    add(session, (1, None))
    with pytest.raises(ProtocolError, match="added twice"):
        session.modify_query_set(ModifyQuerySet(1, 2, [AddQuery(1, "a:b", {}, None)]))
    with pytest.raises(ProtocolError, match="added twice"):
        session.modify_query_set(ModifyQuerySet(1, 2, [AddQuery(2, "a:b", {}, None),
                                                       AddQuery(2, "a:b", {}, None)]))


def test_removing_an_unknown_query_id() -> None:
    session = SyncSession()
    with pytest.raises(ProtocolError, match="unknown query id 7"):
        session.modify_query_set(ModifyQuerySet(0, 1, [RemoveQuery(7)]))
    add(session, (1, None))
    remove(session, 1)
    with pytest.raises(ProtocolError, match="unknown query id 1"):
        session.modify_query_set(ModifyQuerySet(2, 3, [RemoveQuery(1)]))


def test_remove_then_add_same_id_in_one_message() -> None:
    session = SyncSession()
    first = new_live()
    add(session, (1, set_result(first, 1, "old")))
    transition_of(session.next_transition(1))
    base = session.received_query_set
    added, removed = session.modify_query_set(ModifyQuerySet(base, base + 1, [
        RemoveQuery(1), AddQuery(1, "q:other", {}, None)]))
    assert [q.query_id for q in removed] == [1]
    added[0].live = result(1, "new")
    msg = transition_of(session.next_transition(1))
    # The removal comes first, so the client ends up holding the new query.
    assert mods(msg) == [("QueryRemoved", 1), ("QueryUpdated", 1)]
    assert msg["modifications"][1]["value"] == "new"


def test_authenticate_checks_base_and_bumps_identity() -> None:
    session = SyncSession()
    session.authenticate(Authenticate(0, "User", "jwt", None))
    assert session.received_identity == 1
    with pytest.raises(ProtocolError, match="base version 0, expected 1"):
        session.authenticate(Authenticate(0, "User", "jwt", None))
    with pytest.raises(ProtocolError):
        session.authenticate(Authenticate(2, "None", None, None))
    assert session.received_identity == 1
    session.authenticate(Authenticate(1, "None", None, None))
    assert session.received_identity == 2
    msg = transition_of(session.next_transition(0))
    assert msg["startVersion"] == ZERO
    assert msg["endVersion"] == {"querySet": 0, "identity": 2, "ts": "AAAAAAAAAAA="}


# -- next_transition ---------------------------------------------------------------------------

def test_empty_modify_query_set_is_answered() -> None:
    session = SyncSession()
    assert session.next_transition(0) is None  # nothing asked yet
    session.modify_query_set(ModifyQuerySet(0, 1, []))
    msg = transition_of(session.next_transition(0))
    assert msg["startVersion"] == ZERO
    assert msg["endVersion"] == {"querySet": 1, "identity": 0, "ts": "AAAAAAAAAAA="}
    assert msg["modifications"] == []
    assert isinstance(msg["serverTs"], int)
    assert session.sent == StateVersion(1, 0, 0)
    assert session.next_transition(0) is None


def test_empty_modify_query_set_with_commits_processed() -> None:
    session = SyncSession()
    session.modify_query_set(ModifyQuerySet(0, 1, []))
    msg = transition_of(session.next_transition(50))
    assert msg["startVersion"] == ZERO
    assert msg["endVersion"]["querySet"] == 1
    assert end_ts(msg) <= 50


def test_first_transition_with_a_result() -> None:
    session = SyncSession()
    add(session, (1, result(5, {"n": 1})))
    msg = transition_of(session.next_transition(5))
    assert msg["startVersion"] == ZERO
    assert msg["endVersion"] == {"querySet": 1, "identity": 0, "ts": encode_ts(5)}
    assert msg["modifications"] == [{"type": "QueryUpdated", "queryId": 1, "value": {"n": 1},
                                     "logLines": [], "journal": None}]


def test_journals_come_in_with_add_and_go_out_with_results() -> None:
    session = SyncSession()
    added, _ = session.modify_query_set(ModifyQuerySet(0, 1, [
        AddQuery(1, "q:list", {}, "page1:old"), AddQuery(2, "q:list", {}, None)]))
    assert [q.journal for q in added] == ["page1:old", None]
    live = result(5, {"n": 1})
    live.journal = "page1:new"
    added[0].live = live
    added[1].failure = {"errorMessage": "cannot start"}
    msg = transition_of(session.next_transition(5))
    assert [(m["queryId"], m["journal"]) for m in msg["modifications"]] == [
        (1, "page1:new"), (2, None)]
    assert session.next_transition(5) is None
    live.journal = "page1:newer"  # same value, new journal: sent again
    msg = transition_of(session.next_transition(5))
    assert msg["modifications"] == [{"type": "QueryUpdated", "queryId": 1, "value": {"n": 1},
                                     "logLines": [], "journal": "page1:newer"}]


def test_a_query_that_cannot_start_keeps_its_journal() -> None:
    session = SyncSession()
    added, _ = session.modify_query_set(ModifyQuerySet(0, 1, [
        AddQuery(1, "q:list", {}, "page1:kept")]))
    added[0].failure = {"errorMessage": "bad args"}
    msg = transition_of(session.next_transition(0))
    assert msg["modifications"][0]["journal"] == "page1:kept"


def test_query_without_result_waits() -> None:
    session = SyncSession()
    live = new_live()  # subscribed, not run yet
    add(session, (1, live))
    out = session.next_transition(10)
    assert isinstance(out, Waiting)
    assert out.for_ts is None
    assert session.sent == StateVersion()  # nothing was sent
    set_result(live, 10, "v")
    msg = transition_of(session.next_transition(10))
    assert mods(msg) == [("QueryUpdated", 1)]


def test_one_pending_query_holds_back_the_others() -> None:
    session = SyncSession()
    ready = result(3, "ready")
    pending = new_live("q:other")
    add(session, (1, ready), (2, pending))
    assert isinstance(session.next_transition(3), Waiting)
    set_result(pending, 3, "p")
    msg = transition_of(session.next_transition(3))
    assert sorted(mods(msg)) == [("QueryUpdated", 1), ("QueryUpdated", 2)]


def test_result_newer_than_processed_waits_for_it() -> None:
    session = SyncSession()
    add(session, (1, result(12, "v")))
    out = session.next_transition(10)
    assert out == Waiting(for_ts=12)
    assert session.sent == StateVersion()
    msg = transition_of(session.next_transition(12))
    assert end_ts(msg) == 12


def test_invalidated_result_is_not_used_at_or_after_valid_until() -> None:
    session = SyncSession()
    stale = result(5, "stale", valid_until=8)
    newer = result(9, "newer")
    add(session, (1, stale), (2, newer))
    # Target is 9 (the newest result); `stale` is only good in [5, 8).
    assert isinstance(session.next_transition(9), Waiting)
    assert session.sent == StateVersion()
    set_result(stale, 9, "fresh")
    msg = transition_of(session.next_transition(9))
    assert end_ts(msg) == 9
    values = {m["queryId"]: m["value"] for m in msg["modifications"]}
    assert values == {1: "fresh", 2: "newer"}


def test_result_used_just_before_valid_until() -> None:
    session = SyncSession()
    add(session, (1, result(5, "a", valid_until=8)), (2, result(7, "b")))
    msg = transition_of(session.next_transition(9))
    assert end_ts(msg) == 7  # 7 < 8: the first result still holds at 7


def test_result_exactly_at_valid_until_waits() -> None:
    session = SyncSession()
    add(session, (1, result(5, "a", valid_until=8)), (2, result(8, "b")))
    assert isinstance(session.next_transition(9), Waiting)


def test_sent_result_invalidated_by_a_later_transition_ts_waits() -> None:
    session = SyncSession()
    one = result(4, "one")
    two = result(4, "two")
    add(session, (1, one), (2, two))
    transition_of(session.next_transition(4))
    # Commit 6 invalidated query 1; query 2 re-ran at 7 with a new value.
    one.valid_until = 6
    set_result(two, 7, "two'")
    assert isinstance(session.next_transition(7), Waiting)
    set_result(one, 7, "one")  # same value: nothing to resend for it
    msg = transition_of(session.next_transition(7))
    assert mods(msg) == [("QueryUpdated", 2)]
    assert end_ts(msg) == 7


def test_results_resent_only_when_the_hash_changes() -> None:
    session = SyncSession()
    live = result(1, {"a": 1})
    add(session, (1, live))
    transition_of(session.next_transition(1))
    assert session.next_transition(1) is None
    set_result(live, 3, {"a": 1})  # re-ran, same result: only the ts moves
    msg = transition_of(session.next_transition(3))
    assert msg["modifications"] == []
    assert end_ts(msg) == 3
    assert session.next_transition(3) is None
    set_result(live, 3, {"a": 1})
    assert session.next_transition(3) is None
    set_result(live, 4, {"a": 2})
    msg = transition_of(session.next_transition(4))
    assert msg["modifications"] == [{"type": "QueryUpdated", "queryId": 1, "value": {"a": 2},
                                     "logLines": [], "journal": None}]
    set_result(live, 5, {"a": 2})
    assert transition_of(session.next_transition(5))["modifications"] == []
    set_result(live, 6, {"a": 1})  # back to an older value: the client holds {"a": 2}
    msg = transition_of(session.next_transition(6))
    assert msg["modifications"][0]["value"] == {"a": 1}


def test_shared_live_query_is_sent_for_each_query_id() -> None:
    session = SyncSession()
    shared = result(2, "same")
    add(session, (1, shared))
    transition_of(session.next_transition(2))
    add(session, (2, shared))
    msg = transition_of(session.next_transition(2))
    assert mods(msg) == [("QueryUpdated", 2)]


def test_failed_result_is_query_failed() -> None:
    session = SyncSession()
    error = {"errorMessage": "ConvexError", "errorData": {"code": "nope"}}
    live = result(3, error, ok=False)
    add(session, (1, live))
    msg = transition_of(session.next_transition(3))
    assert msg["modifications"] == [{"type": "QueryFailed", "queryId": 1,
                                     "errorMessage": "ConvexError", "logLines": [],
                                     "journal": None, "errorData": {"code": "nope"}}]
    assert session.next_transition(3) is None
    set_result(live, 4, {"ok": 1})
    msg = transition_of(session.next_transition(4))
    assert mods(msg) == [("QueryUpdated", 1)]


def test_query_removed() -> None:
    session = SyncSession()
    add(session, (1, result(1, "a")), (2, result(1, "b")))
    transition_of(session.next_transition(1))
    removed = remove(session, 1)
    assert [q.query_id for q in removed] == [1]
    msg = transition_of(session.next_transition(1))
    assert msg["modifications"] == [{"type": "QueryRemoved", "queryId": 1}]
    assert msg["endVersion"]["querySet"] == 2
    assert session.removed == []
    assert session.next_transition(1) is None


def test_removal_of_a_query_still_waiting() -> None:
    session = SyncSession()
    add(session, (1, new_live()))
    assert isinstance(session.next_transition(1), Waiting)
    remove(session, 1)
    msg = transition_of(session.next_transition(1))
    assert mods(msg) == [("QueryRemoved", 1)]
    assert msg["endVersion"]["querySet"] == 2


def test_failure_at_subscribe_time_is_sent_once() -> None:
    session = SyncSession()
    (query,) = add(session, (1, None))
    query.failure = {"errorMessage": "Could not find public function for 'q:list'"}
    msg = transition_of(session.next_transition(0))
    assert msg["modifications"] == [{
        "type": "QueryFailed", "queryId": 1,
        "errorMessage": "Could not find public function for 'q:list'",
        "logLines": [], "journal": None}]
    assert session.next_transition(0) is None
    session.force = True
    msg = transition_of(session.next_transition(0))
    assert msg["modifications"] == []


def test_failure_does_not_block_other_queries() -> None:
    session = SyncSession()
    bad, _ = add(session, (1, None), (2, result(4, "ok")))
    bad.failure = {"errorMessage": "bad", "errorData": "d"}
    msg = transition_of(session.next_transition(4))
    assert sorted(mods(msg)) == [("QueryFailed", 1), ("QueryUpdated", 2)]
    failed = next(m for m in msg["modifications"] if m["type"] == "QueryFailed")
    assert failed["errorData"] == "d"


def test_min_ts_forces_ts_and_waits_until_processed() -> None:
    session = SyncSession()
    add(session, (1, result(3, "v")))
    transition_of(session.next_transition(3))
    session.min_ts = 10
    session.force = True
    assert session.next_transition(8) == Waiting(for_ts=10)
    assert session.sent.ts == 3
    msg = transition_of(session.next_transition(10))
    assert end_ts(msg) == 10
    assert msg["modifications"] == []  # the result at 3 still holds at 10
    assert session.next_transition(12) is None


def test_min_ts_waits_for_a_result_valid_at_it() -> None:
    session = SyncSession()
    live = result(3, "v")
    add(session, (1, live))
    transition_of(session.next_transition(3))
    # The client's own mutation at 10 wrote inside the query's read set.
    live.valid_until = 10
    session.min_ts = 10
    session.force = True
    assert isinstance(session.next_transition(10), Waiting)
    set_result(live, 10, "v2")
    msg = transition_of(session.next_transition(10))
    assert end_ts(msg) == 10
    assert mods(msg) == [("QueryUpdated", 1)]


def test_force_makes_an_empty_transition_then_clears() -> None:
    session = SyncSession()
    add(session, (1, result(2, "v")))
    first = transition_of(session.next_transition(2))
    assert session.next_transition(2) is None
    session.force = True
    msg = transition_of(session.next_transition(2))
    assert msg["modifications"] == []
    assert msg["startVersion"] == first["endVersion"]
    assert msg["endVersion"] == first["endVersion"]
    assert session.force is False
    assert session.next_transition(2) is None


def test_force_with_no_queries_at_all() -> None:
    session = SyncSession()
    session.force = True
    msg = transition_of(session.next_transition(0))
    assert msg["startVersion"] == ZERO
    assert msg["endVersion"] == ZERO


def test_mutation_in_flight_holds_every_transition_back() -> None:
    session = SyncSession()
    live = result(1, "a")
    add(session, (1, live))
    session.mutations_in_flight = 1
    assert session.next_transition(1) == Waiting(for_ts=None)
    session.force = True
    assert session.next_transition(1) == Waiting()
    session.mutations_in_flight = 2
    set_result(live, 2, "b")
    assert isinstance(session.next_transition(5), Waiting)
    assert session.sent == StateVersion()
    session.mutations_in_flight = 1
    assert isinstance(session.next_transition(5), Waiting)
    session.mutations_in_flight = 0
    session.min_ts = 4
    msg = transition_of(session.next_transition(5))
    assert end_ts(msg) == 4
    assert msg["modifications"][0]["value"] == "b"
    assert session.force is False


def test_ts_never_moves_backwards_when_the_newest_query_is_removed() -> None:
    session = SyncSession()
    add(session, (1, result(2, "old")), (2, result(10, "new")))
    msg = transition_of(session.next_transition(10))
    assert end_ts(msg) == 10
    remove(session, 2)
    msg = transition_of(session.next_transition(10))
    assert end_ts(msg) == 10
    assert mods(msg) == [("QueryRemoved", 2)]


def test_ts_never_moves_backwards_when_new_queries_have_older_results() -> None:
    session = SyncSession()
    add(session, (1, result(10, "x")))
    transition_of(session.next_transition(10))
    add(session, (2, result(4, "older snapshot, still valid")))
    msg = transition_of(session.next_transition(10))
    assert end_ts(msg) == 10


def test_ts_never_moves_backwards_and_waits_for_an_invalidated_older_result() -> None:
    session = SyncSession()
    add(session, (1, result(10, "x")))
    transition_of(session.next_transition(10))
    older = result(4, "stale", valid_until=7)
    add(session, (2, older))
    assert isinstance(session.next_transition(10), Waiting)
    set_result(older, 11, "fresh")
    msg = transition_of(session.next_transition(11))
    assert end_ts(msg) == 11


# -- a long random run against a model of the database ---------------------------------------

class World:
    """A tiny database of keys whose value changes at commit timestamps, plus live queries.

    Mirrors what subscriptions.py does: a commit processed at ts invalidates (sets
    valid_until) a live query with an older result; a re-run computes the value at a
    snapshot and the first later processed commit that touched it.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.commits: list[tuple[int, str, str]] = []  # (ts, key, value), ts increasing
        self.db_ts = 0
        self.processed = 0
        self.lives: dict[str, LiveQuery] = {}

    def value_at(self, key: str, ts: int) -> str:
        value = f"{key}@0"
        for c_ts, c_key, c_value in self.commits:
            if c_ts > ts:
                break
            if c_key == key:
                value = c_value
        return value

    def commit(self, key: str) -> int:
        self.db_ts += self.rng.randrange(1, 3)
        self.commits.append((self.db_ts, key, self.rng.choice(["x", "y", "z"])))
        return self.db_ts

    def process_one(self) -> None:
        for ts, key, _ in self.commits:
            if ts > self.processed:
                self.processed = ts
                live = self.lives.get(key)
                if live is not None and live.ts < ts and (
                        live.valid_until is None or live.valid_until > ts):
                    live.valid_until = ts
                return

    def rerun(self, key: str, latest: bool = False) -> None:
        live = self.lives[key]
        lo = max(live.ts, self.processed)
        roll = self.rng.random()
        if latest:
            snapshot = self.db_ts
        elif roll < 0.6:  # what the process has seen
            snapshot = lo
        elif roll < 0.8:  # an older snapshot: commits since may already invalidate it
            snapshot = self.rng.randrange(live.ts, lo + 1)
        else:  # newer than the commit stream has delivered
            snapshot = self.rng.randrange(lo, self.db_ts + 1)
        first_later = next((ts for ts, k, _ in self.commits
                            if k == key and snapshot < ts <= self.processed), None)
        set_result(live, snapshot, self.value_at(key, snapshot), valid_until=first_later)


@pytest.mark.parametrize("seed", range(30))
def test_random_run_keeps_versions_chained_and_results_consistent(seed: int) -> None:
    rng = random.Random(seed)
    world = World(rng)
    keys = ["k0", "k1", "k2", "k3"]
    session = SyncSession()
    client: dict[int, tuple[str, Any]] = {}  # what the client holds, from Transitions
    query_keys: dict[int, str | None] = {}  # None: failed at subscribe time
    prev_end: dict[str, Any] = ZERO
    auths = 0
    next_qid = 0
    in_flight: list[str] = []
    transitions = 0
    last_ts = 0

    def step_transition() -> Any:
        nonlocal prev_end, transitions, last_ts
        out = session.next_transition(world.processed)
        if isinstance(out, Waiting):
            assert in_flight or out.for_ts is not None or any(
                q.live is not None and not q.live.usable_at(
                    max([session.sent.ts, session.min_ts]
                        + [x.live.ts for x in session.queries.values()
                           if x.live is not None and x.live.result_json]))
                for q in session.queries.values())
            if out.for_ts is not None:
                assert out.for_ts > world.processed
            return out
        if out is None:
            return None
        assert not in_flight  # Rule 3
        msg = transition_of(out)
        transitions += 1
        # Rule 1.
        assert msg["startVersion"] == prev_end
        prev_end = msg["endVersion"]
        ts = end_ts(msg)
        assert ts >= last_ts  # never backwards
        assert ts <= world.processed
        assert ts >= session.min_ts
        last_ts = ts
        assert msg["endVersion"]["querySet"] == session.received_query_set
        assert msg["endVersion"]["identity"] == auths
        for mod in msg["modifications"]:
            if mod["type"] == "QueryRemoved":
                client.pop(mod["queryId"], None)
            elif mod["type"] == "QueryUpdated":
                assert mod["logLines"] == []
                assert "journal" in mod
                client[mod["queryId"]] = ("ok", mod["value"])
            else:
                assert mod["type"] == "QueryFailed"
                client[mod["queryId"]] = ("fail", mod["errorMessage"])
        # Rule 2: the client holds, for every query, its result at ts.
        assert set(client) == set(session.queries)
        for qid, key in query_keys.items():
            if key is None:
                assert client[qid] == ("fail", f"bad {qid}")
            else:
                assert client[qid] == ("ok", world.value_at(key, ts)), (qid, key, ts)
        return msg

    for _ in range(200):
        roll = rng.random()
        if roll < 0.15:
            base = session.received_query_set
            new = base + rng.randrange(1, 3)
            changes: list[AddQuery | RemoveQuery] = []
            for _ in range(rng.randrange(0, 3)):
                if query_keys and rng.random() < 0.4:
                    qid = rng.choice(sorted(query_keys))
                    if any(isinstance(c, RemoveQuery) and c.query_id == qid for c in changes):
                        continue
                    changes.append(RemoveQuery(qid))
                    del query_keys[qid]
                else:
                    changes.append(AddQuery(next_qid, "q:get", {}, None))
                    next_qid += 1
            added, _ = session.modify_query_set(ModifyQuerySet(base, new, changes))
            for query in added:
                if rng.random() < 0.1:
                    query.failure = {"errorMessage": f"bad {query.query_id}"}
                    query_keys[query.query_id] = None
                    continue
                key = rng.choice(keys)
                if key not in world.lives:
                    world.lives[key] = new_live("q:get", {"key": key})
                query.live = world.lives[key]
                query_keys[query.query_id] = key
        elif roll < 0.2:
            session.authenticate(Authenticate(auths, "None", None, None))
            auths += 1
        elif roll < 0.3:
            world.commit(rng.choice(keys))
        elif roll < 0.47:
            world.process_one()
        elif roll < 0.65:
            stale = [k for k, lv in world.lives.items()
                     if not lv.result_json or lv.valid_until is not None]
            if stale:
                world.rerun(rng.choice(stale))
        elif roll < 0.68:
            in_flight.append(rng.choice(keys))
            session.mutations_in_flight += 1
        elif roll < 0.76 and in_flight:
            key = in_flight.pop(0)
            ts = world.commit(key)
            session.min_ts = max(session.min_ts, ts)
            session.force = True
            session.mutations_in_flight -= 1
        if rng.random() < 0.5:
            step_transition()
    # Settle: finish mutations, process every commit, re-run everything stale.
    for key in in_flight:
        ts = world.commit(key)
        session.min_ts = max(session.min_ts, ts)
        session.force = True
        session.mutations_in_flight -= 1
    in_flight.clear()
    while world.processed < world.db_ts:
        world.process_one()
    for key, live in world.lives.items():
        if not live.result_json or live.valid_until is not None or live.ts > world.processed:
            world.rerun(key, latest=True)
            assert live.valid_until is None
    out = step_transition()
    assert not isinstance(out, Waiting)
    assert transitions > 0
    assert session.next_transition(world.processed) is None
    assert not session.force


def test_long_version_chain() -> None:
    session = SyncSession()
    live = new_live()
    add(session, (0, live))
    prev = ZERO
    for i in range(1, 200):
        kind = i % 4
        if kind == 0:
            add(session, (i, result(i, i)))
        elif kind == 1:
            session.authenticate(Authenticate(session.received_identity, "None", None, None))
        elif kind == 2:
            session.force = True
        set_result(live, i, i // 3)
        msg = transition_of(session.next_transition(i))
        assert msg["startVersion"] == prev
        assert decode_ts(msg["endVersion"]["ts"]) == i
        prev = msg["endVersion"]
    assert prev == {"querySet": 50, "identity": 50, "ts": encode_ts(199)}


def test_log_lines_go_with_the_result_and_new_lines_are_sent_again() -> None:
    session: SyncSession[LiveQuery] = SyncSession()
    session.connect(Connect("s", 0, None, None))
    live = result(5, [1])
    live.lines_json = orjson.dumps(["[LOG] first run"])
    add(session, (1, live))
    first = transition_of(session.next_transition(5))
    assert first["modifications"][0]["logLines"] == ["[LOG] first run"]
    set_result(live, 6, [1])  # same value, same lines: not sent again
    assert transition_of(session.next_transition(6))["modifications"] == []
    set_result(live, 7, [1])
    live.lines_json = orjson.dumps(["[LOG] second run"])  # same value, new lines
    again = transition_of(session.next_transition(7))
    assert mods(again) == [("QueryUpdated", 1)]
    assert again["modifications"][0]["logLines"] == ["[LOG] second run"]
