"""protocol.py: strict parsing of client messages and the exact shapes of server messages."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_store.sync.protocol import (
    PING,
    ActionRequest,
    AddQuery,
    Authenticate,
    Connect,
    Event,
    ModifyQuerySet,
    MutationRequest,
    ProtocolError,
    RemoveQuery,
    StateVersion,
    action_response,
    auth_error,
    encode_ts,
    mutation_response,
    parse_client_message,
    query_failed,
    query_removed,
    query_result_json,
    transition_json,
)

TS_ZERO = "AAAAAAAAAAA="


def connect(**extra: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "Connect", "sessionId": "5c1d1b36-a4b8-4f4e-9c6e-1a2b3c4d5e6f",
                           "connectionCount": 0, "lastCloseReason": "InitialConnect",
                           "clientTs": 1700000000000}
    msg.update(extra)
    return msg


def add(query_id: Any = 1, **extra: Any) -> dict[str, Any]:
    mod: dict[str, Any] = {"type": "Add", "queryId": query_id, "udfPath": "messages:list",
                           "args": [{}]}
    mod.update(extra)
    return mod


def modify(*mods: Any, base: Any = 0, new: Any = 1) -> dict[str, Any]:
    return {"type": "ModifyQuerySet", "baseVersion": base, "newVersion": new,
            "modifications": list(mods)}


def mutation(kind: str = "Mutation", **extra: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": kind, "requestId": 0, "udfPath": "messages:send",
                           "args": [{"body": "hi"}]}
    msg.update(extra)
    return msg


def auth(**extra: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "Authenticate", "baseVersion": 0, "tokenType": "User",
                           "value": "jwt"}
    msg.update(extra)
    return msg


def rejects(msg: Any, *words: str) -> str:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(msg)
    text = str(info.value)
    for word in words:
        assert word in text, (word, text)
    return text


# -- Connect ---------------------------------------------------------------------------------

def test_connect_first_time() -> None:
    msg = parse_client_message(connect())
    assert msg == Connect("5c1d1b36-a4b8-4f4e-9c6e-1a2b3c4d5e6f", 0, "InitialConnect", None)


def test_connect_with_max_observed_timestamp() -> None:
    ts = 1_700_000_000_123_456_789
    msg = parse_client_message(connect(connectionCount=3, lastCloseReason=None,
                                       maxObservedTimestamp=encode_ts(ts)))
    assert isinstance(msg, Connect)
    assert msg.connection_count == 3
    assert msg.last_close_reason is None
    assert msg.max_observed_ts == ts


def test_connect_with_null_max_observed_timestamp() -> None:
    msg = parse_client_message(connect(maxObservedTimestamp=None))
    assert isinstance(msg, Connect)
    assert msg.max_observed_ts is None


def test_connect_without_last_close_reason() -> None:
    msg = connect()
    del msg["lastCloseReason"]
    parsed = parse_client_message(msg)
    assert isinstance(parsed, Connect)
    assert parsed.last_close_reason is None


@pytest.mark.parametrize("bad", ["!!!!!!!!!!!=", "AAAA", "AAAAAAAAAAAAAAAA", 12, [], ""])
def test_connect_bad_max_observed_timestamp(bad: Any) -> None:
    rejects(connect(maxObservedTimestamp=bad), "maxObservedTimestamp")


def test_connect_bad_fields() -> None:
    rejects(connect(sessionId=None), "sessionId")
    rejects(connect(sessionId=5), "sessionId")
    rejects(connect(connectionCount=-1), "connectionCount")
    rejects(connect(connectionCount="0"), "connectionCount")
    rejects(connect(lastCloseReason=3), "lastCloseReason")
    msg = connect()
    del msg["connectionCount"]
    rejects(msg, "connectionCount")


# -- u32 fields -------------------------------------------------------------------------------

U32_BAD = [-1, -0.5, 1.5, float("nan"), float("inf"), True, False, 2**32, 2**32 + 1,
           float(2**32), "1", None, [1], {"n": 1}]


@pytest.mark.parametrize("bad", U32_BAD, ids=repr)
@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda v: connect(connectionCount=v), "connectionCount"),
        (lambda v: modify(base=v), "baseVersion"),
        (lambda v: modify(new=v), "newVersion"),
        (lambda v: modify(add(query_id=v)), "queryId"),
        (lambda v: modify({"type": "Remove", "queryId": v}), "queryId"),
        (lambda v: mutation(requestId=v), "requestId"),
        (lambda v: mutation("Action", requestId=v), "requestId"),
        (lambda v: auth(baseVersion=v), "baseVersion"),
    ],
    ids=["connectionCount", "baseVersion", "newVersion", "addQueryId", "removeQueryId",
         "mutationRequestId", "actionRequestId", "authBaseVersion"],
)
def test_bad_u32(build: Any, name: str, bad: Any) -> None:
    text = rejects(build(bad), name)
    assert "u32" in text


@pytest.mark.parametrize("good", [0, 1, 2**32 - 1, 7.0, 0.0])
def test_good_u32(good: Any) -> None:
    msg = parse_client_message(mutation(requestId=good))
    assert isinstance(msg, MutationRequest)
    assert msg.request_id == int(good)
    assert type(msg.request_id) is int


# -- ModifyQuerySet ---------------------------------------------------------------------------

def test_modify_query_set_add_and_remove() -> None:
    msg = parse_client_message(modify(
        add(1, args=[{"n": {"$integer": "AQAAAAAAAAA="}}]),
        add(2, journal="j2"),
        {"type": "Remove", "queryId": 0},
        base=4, new=5,
    ))
    assert msg == ModifyQuerySet(4, 5, [
        AddQuery(1, "messages:list", {"n": {"$integer": "AQAAAAAAAAA="}}, None),
        AddQuery(2, "messages:list", {}, "j2"),
        RemoveQuery(0),
    ])


def test_modify_query_set_empty() -> None:
    assert parse_client_message(modify()) == ModifyQuerySet(0, 1, [])


def test_modify_query_set_null_journal_and_empty_component_path() -> None:
    msg = parse_client_message(modify(add(1, journal=None, componentPath=None)))
    assert isinstance(msg, ModifyQuerySet)
    assert msg.modifications == [AddQuery(1, "messages:list", {}, None)]


def test_modify_query_set_does_not_check_versions() -> None:
    # Parsing is shape only; the session checks base/new versions.
    msg = parse_client_message(modify(base=5, new=2))
    assert msg == ModifyQuerySet(5, 2, [])


def test_modify_query_set_malformed() -> None:
    msg = modify()
    del msg["modifications"]
    rejects(msg, "modifications")
    rejects({**modify(), "modifications": {"type": "Add"}}, "modifications")
    rejects(modify("Add"), "modification")
    rejects(modify(None), "modification")
    rejects(modify({"type": "Replace", "queryId": 1}), "unknown modification", "Replace")
    rejects(modify({"queryId": 1}), "unknown modification")
    rejects(modify(add(1, componentPath="comp")), "componentPath")
    rejects(modify(add(1, udfPath=None)), "udfPath")
    rejects(modify(add(1, udfPath=3)), "udfPath")
    rejects(modify(add(1, journal=5)), "journal")


@pytest.mark.parametrize(
    "bad_args",
    [None, {}, [], [{}, {}], ["x"], [None], [[1]], {"a": 1}, "[{}]"],
    ids=repr,
)
def test_bad_args(bad_args: Any) -> None:
    rejects(modify(add(1, args=bad_args)), "args")
    rejects(mutation(args=bad_args), "args")
    rejects(mutation("Action", args=bad_args), "args")


def test_missing_args() -> None:
    msg = mutation()
    del msg["args"]
    rejects(msg, "args")


# -- Mutation / Action ------------------------------------------------------------------------

def test_mutation_and_action() -> None:
    assert parse_client_message(mutation(requestId=7)) == MutationRequest(
        7, "messages:send", {"body": "hi"})
    assert parse_client_message(mutation("Action", requestId=8)) == ActionRequest(
        8, "messages:send", {"body": "hi"})


@pytest.mark.parametrize("kind", ["Mutation", "Action"])
def test_mutation_and_action_malformed(kind: str) -> None:
    rejects(mutation(kind, componentPath="child"), "componentPath")
    rejects(mutation(kind, udfPath=None), "udfPath")
    msg = mutation(kind)
    del msg["requestId"]
    rejects(msg, "requestId")


# -- Authenticate -----------------------------------------------------------------------------

def test_authenticate_user() -> None:
    assert parse_client_message(auth()) == Authenticate(0, "User", "jwt", None)


def test_authenticate_admin_impersonating() -> None:
    who = {"subject": "u1", "issuer": "https://example.com"}
    msg = parse_client_message(auth(tokenType="Admin", value="key", impersonating=who,
                                    baseVersion=2))
    assert msg == Authenticate(2, "Admin", "key", who)


def test_authenticate_admin_acting_as() -> None:
    who = {"subject": "u2"}
    msg = parse_client_message(auth(tokenType="Admin", value="key", acting_as=who))
    assert msg == Authenticate(0, "Admin", "key", who)


def test_authenticate_admin_alone() -> None:
    msg = parse_client_message(auth(tokenType="Admin", value="key"))
    assert msg == Authenticate(0, "Admin", "key", None)


def test_authenticate_none() -> None:
    msg = parse_client_message({"type": "Authenticate", "baseVersion": 1, "tokenType": "None"})
    assert msg == Authenticate(1, "None", None, None)


def test_authenticate_malformed() -> None:
    rejects(auth(tokenType="Bearer"), "tokenType", "Bearer")
    rejects(auth(tokenType=None), "tokenType")
    rejects(auth(tokenType="user"), "tokenType")
    msg = auth()
    del msg["tokenType"]
    rejects(msg, "tokenType")
    rejects(auth(value=None), "value")
    rejects(auth(tokenType="Admin", value=123), "value")
    rejects(auth(tokenType="Admin", value="k", impersonating="u1"), "impersonating")
    rejects(auth(tokenType="Admin", value="k", acting_as=["u1"]), "impersonating")


# -- Event and the rest ------------------------------------------------------------------------

def test_event() -> None:
    msg = parse_client_message({"type": "Event", "eventType": "ClientConnect",
                                "event": {"anything": [1, 2]}})
    assert msg == Event("ClientConnect")


@pytest.mark.parametrize("bad", [None, [], "Connect", 3, [{"type": "Connect"}], True])
def test_non_object(bad: Any) -> None:
    rejects(bad, "object")


@pytest.mark.parametrize("kind", [None, "", "connect", "Ping", "FatalError", "Transition", 1])
def test_unknown_type(kind: Any) -> None:
    msg: dict[str, Any] = {} if kind is None else {"type": kind}
    rejects(msg, "unknown message type", repr(kind))


# -- builders ---------------------------------------------------------------------------------

def test_query_updated_from_the_encoded_result() -> None:
    value = {"a": 1.5, "s": 'quote " and \\ and \u2603', "n": None,
             "l": [True, {"$integer": "AQ=="}]}
    out = json.loads(query_result_json(3, orjson.dumps([True, value])))
    assert out == {"type": "QueryUpdated", "queryId": 3, "value": value, "logLines": [],
                   "journal": None}
    assert json.loads(query_result_json(0, orjson.dumps([True, None])))["value"] is None


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=20),
       st.integers(min_value=0, max_value=2**32 - 1))
def test_spliced_results_equal_encoding_the_message(value: Any, query_id: int) -> None:
    spliced = json.loads(query_result_json(query_id, orjson.dumps([True, value])))
    assert spliced == json.loads(orjson.dumps({"type": "QueryUpdated", "queryId": query_id,
                                               "value": value, "logLines": [],
                                               "journal": None}))
    error = {"errorMessage": "m", "errorData": value}
    failed = json.loads(query_result_json(query_id, orjson.dumps([False, error])))
    assert failed == json.loads(orjson.dumps(query_failed(query_id, error)))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(), max_size=5), st.booleans())
def test_spliced_log_lines_equal_encoding_the_message(lines: list[str], ok: bool) -> None:
    result = [True, {"v": 1}] if ok else [False, {"errorMessage": "m"}]
    spliced = json.loads(query_result_json(7, orjson.dumps(result), orjson.dumps(lines)))
    assert spliced["logLines"] == lines and spliced["journal"] is None
    assert spliced["type"] == ("QueryUpdated" if ok else "QueryFailed")
    assert query_failed(7, {"errorMessage": "m"}, log_lines=lines)["logLines"] == lines


def test_query_failed_shape() -> None:
    assert query_failed(4, {"errorMessage": "boom"}) == {
        "type": "QueryFailed", "queryId": 4, "errorMessage": "boom", "logLines": [],
        "journal": None}
    out = query_failed(4, {"errorMessage": "ConvexError", "errorData": {"code": 1}}, "j")
    assert out["errorData"] == {"code": 1}
    assert out["journal"] == "j"
    assert out["logLines"] == []
    # errorData present with a null value is still sent (ConvexError(None)).
    assert "errorData" in query_failed(4, {"errorMessage": "m", "errorData": None})


def test_query_removed_shape() -> None:
    assert query_removed(9) == {"type": "QueryRemoved", "queryId": 9}


def test_state_version_json() -> None:
    assert StateVersion().to_json() == {"querySet": 0, "identity": 0, "ts": TS_ZERO}
    assert StateVersion(2, 1, 5).to_json() == {"querySet": 2, "identity": 1,
                                               "ts": "BQAAAAAAAAA="}


def test_transition_shape() -> None:
    mods = [query_result_json(1, orjson.dumps([True, 2])), orjson.dumps(query_removed(3))]
    out = transition_json(StateVersion(), StateVersion(1, 0, 2**40), mods, 123)
    assert json.loads(out) == {
        "type": "Transition",
        "startVersion": {"querySet": 0, "identity": 0, "ts": TS_ZERO},
        "endVersion": {"querySet": 1, "identity": 0, "ts": encode_ts(2**40)},
        "modifications": [{"type": "QueryUpdated", "queryId": 1, "value": 2, "logLines": [],
                           "journal": None}, {"type": "QueryRemoved", "queryId": 3}],
        "serverTs": 123,
    }
    assert json.loads(transition_json(StateVersion(), StateVersion(), [], 0))[
        "modifications"] == []


def test_mutation_response_success() -> None:
    out = mutation_response(5, value={"id": "x"}, ts=7)
    assert out == {"type": "MutationResponse", "requestId": 5, "success": True,
                   "result": {"id": "x"}, "ts": "BwAAAAAAAAA=", "logLines": []}
    assert mutation_response(5, ts=0) == {"type": "MutationResponse", "requestId": 5,
                                          "success": True, "result": None, "ts": TS_ZERO,
                                          "logLines": []}


def test_mutation_response_failure() -> None:
    out = mutation_response(6, error={"errorMessage": "Uncaught Error: no"})
    assert out == {"type": "MutationResponse", "requestId": 6, "success": False,
                   "result": "Uncaught Error: no", "ts": None, "logLines": []}
    out = mutation_response(6, error={"errorMessage": "ConvexError", "errorData": {"c": 1}})
    assert out["errorData"] == {"c": 1}
    assert out["ts"] is None
    assert out["success"] is False
    assert out["result"] == "ConvexError"


def test_action_response() -> None:
    assert action_response(1, value=[1, 2]) == {"type": "ActionResponse", "requestId": 1,
                                                "success": True, "result": [1, 2],
                                                "logLines": []}
    assert action_response(2, error={"errorMessage": "bad"}) == {
        "type": "ActionResponse", "requestId": 2, "success": False, "result": "bad",
        "logLines": []}
    out = action_response(3, error={"errorMessage": "m", "errorData": "d"})
    assert out["errorData"] == "d"
    assert "ts" not in out


def test_auth_error_and_ping() -> None:
    assert auth_error("bad token", 2, True) == {"type": "AuthError", "error": "bad token",
                                                "baseVersion": 2, "authUpdateAttempted": True}
    assert auth_error("expired", 0, False)["authUpdateAttempted"] is False
    assert PING == {"type": "Ping"}


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.none(), st.text()), st.booleans())
def test_spliced_journal_equals_encoding_the_message(journal: str | None, ok: bool) -> None:
    result = [True, {"v": 1}] if ok else [False, {"errorMessage": "m"}]
    spliced = json.loads(query_result_json(7, orjson.dumps(result), b"[]", journal))
    assert spliced["journal"] == journal
    if not ok:
        assert spliced == query_failed(7, {"errorMessage": "m"}, journal)


def test_add_carries_the_clients_journal() -> None:
    msg = parse_client_message(modify(add(1, journal="page1:abc")))
    assert isinstance(msg, ModifyQuerySet)
    first = msg.modifications[0]
    assert isinstance(first, AddQuery) and first.journal == "page1:abc"
