"""The encodings a fan-out shares: each is exactly what the protocol builders make, built
once per distinct content, never handed out with a stale server clock, and bounded."""

from __future__ import annotations

import json

import orjson
import pytest

from reactive_store.sync import shared_encodings
from reactive_store.sync.protocol import StateVersion, query_result_json, transition_json
from reactive_store.sync.shared_encodings import SharedEncodings

RESULT = orjson.dumps([True, [{"body": "hello", "n": 1.0}]])
FAILED = orjson.dumps([False, {"errorMessage": "boom"}])


def test_an_update_is_the_protocol_encoding_built_once() -> None:
    shared = SharedEncodings()
    first = shared.update(3, RESULT, b'["a"]', "j1")
    assert first == query_result_json(3, RESULT, b'["a"]', "j1")
    assert shared.update(3, RESULT, b'["a"]', "j1") is first
    assert shared.hits == 1
    failed = shared.update(3, FAILED, b"[]", None)
    assert json.loads(failed) == json.loads(query_result_json(3, FAILED))


@pytest.mark.parametrize("other", [
    (4, RESULT, b'["a"]', "j1"),  # another query id
    (3, orjson.dumps([True, 2]), b'["a"]', "j1"),  # another result
    (3, RESULT, b"[]", "j1"),  # other log lines
    (3, RESULT, b'["a"]', None),  # another journal
])
def test_updates_differing_in_anything_are_encoded_apart(
        other: tuple[int, bytes, bytes, str | None]) -> None:
    shared = SharedEncodings()
    shared.update(3, RESULT, b'["a"]', "j1")
    assert shared.update(*other) == query_result_json(*other)
    assert shared.hits == 0


def test_a_transition_is_shared_by_sessions_in_the_same_state() -> None:
    shared = SharedEncodings()
    start, end = StateVersion(1, 0, 5), StateVersion(1, 0, 9)
    mods = [shared.update(0, RESULT, b"[]", None)]
    text = shared.transition(start, end, mods)
    again = shared.transition(start, end, [shared.update(0, RESULT, b"[]", None)])
    assert again is text
    message = json.loads(text)
    expected = json.loads(transition_json(start, end, mods, message["serverTs"]))
    assert message == expected


@pytest.mark.parametrize("start, end", [
    (StateVersion(2, 0, 5), StateVersion(2, 0, 9)),  # another query-set version
    (StateVersion(1, 1, 5), StateVersion(1, 1, 9)),  # another identity version
    (StateVersion(1, 0, 4), StateVersion(1, 0, 9)),  # started elsewhere (Rule 1)
    (StateVersion(1, 0, 5), StateVersion(1, 0, 10)),  # ends elsewhere
])
def test_a_transition_between_other_versions_is_its_own(start: StateVersion,
                                                       end: StateVersion) -> None:
    shared = SharedEncodings()
    mods = [query_result_json(0, RESULT)]
    shared.transition(StateVersion(1, 0, 5), StateVersion(1, 0, 9), mods)
    message = json.loads(shared.transition(start, end, mods))
    assert message["startVersion"] == start.to_json()
    assert message["endVersion"] == end.to_json()
    assert shared.hits == 0


def test_other_modifications_make_another_transition() -> None:
    shared = SharedEncodings()
    start, end = StateVersion(1, 0, 5), StateVersion(1, 0, 9)
    one = shared.transition(start, end, [query_result_json(0, RESULT)])
    two = shared.transition(start, end, [query_result_json(1, RESULT)])
    assert json.loads(two)["modifications"][0]["queryId"] == 1
    assert json.loads(one)["modifications"][0]["queryId"] == 0


def test_a_transition_is_not_shared_past_its_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_000_000_000_000]
    monkeypatch.setattr(shared_encodings.time, "time_ns", lambda: clock[0])
    shared = SharedEncodings()
    start, end, mods = StateVersion(1, 0, 5), StateVersion(1, 0, 9), [b'{"x":1}']
    first = shared.transition(start, end, mods)
    clock[0] += shared_encodings.SHARE_NS - 1
    assert shared.transition(start, end, mods) is first
    clock[0] += 1
    later = shared.transition(start, end, mods)
    assert later is not first
    assert json.loads(later)["serverTs"] == clock[0]


def test_the_memo_is_bounded_by_entries_and_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared_encodings, "MAX_ENTRIES", 10)
    shared = SharedEncodings()
    for n in range(25):
        shared.update(n, RESULT, b"[]", None)
        assert len(shared._updates) + len(shared._transitions) <= 10
    monkeypatch.setattr(shared_encodings, "MAX_ENTRIES", 10_000)
    monkeypatch.setattr(shared_encodings, "MAX_BYTES", 10_000)
    shared = SharedEncodings()
    big = orjson.dumps([True, "x" * 3_000])
    for n in range(10):
        shared.update(n, big, b"[]", None)
        assert shared._bytes <= 10_000 + 2 * len(big)
        assert len(shared._updates) <= 2
    # Forgetting never changes an answer.
    assert shared.update(0, big, b"[]", None) == query_result_json(0, big)
