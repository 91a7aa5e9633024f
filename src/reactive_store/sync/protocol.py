"""Sync-protocol messages: strict parsing of what clients send, exact shapes of what we send.

No sockets here (h11's rule): `parse_client_message` takes a decoded JSON object and returns a
typed message or raises ProtocolError naming what was wrong; the `*_message` builders return
JSON-ready dicts that always carry the fields the official clients require.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from reactive_store.errors import BadRequest


# Commit timestamps on the wire: u64 -> 8 bytes little-endian -> standard base64.
def encode_ts(ts: int) -> str:
    """A commit timestamp as the wire carries it."""
    return base64.b64encode(struct.pack("<Q", ts)).decode()


def decode_ts(text: Any) -> int:
    """A wire timestamp back to an int; BadRequest naming what is wrong with it."""
    if not isinstance(text, str):
        raise BadRequest(f"timestamp must be a base64 string, got {text!r}", "InvalidTimestamp")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise BadRequest(f"timestamp {text!r} is not valid base64", "InvalidTimestamp") from None
    if len(raw) != 8:
        raise BadRequest(f"timestamp {text!r} must encode 8 bytes", "InvalidTimestamp")
    ts: int = struct.unpack("<Q", raw)[0]
    return ts


class ProtocolError(Exception):
    """A client message that breaks the protocol; the connection is closed with this reason.

    `close_code` is the WebSocket close code: 1002 (protocol error) for a malformed or
    out-of-order message, 1008 (policy violation) for a client over one of its limits, and
    1000 for a refused token (the client fetches a new one and reconnects).
    """

    close_code = 1002


class ClientLimitExceeded(ProtocolError):
    """A client went past one of the per-socket limits (requests, queries, queued bytes)."""

    close_code = 1008


class AuthenticationRefused(ProtocolError):
    """The client's token was refused; AuthError has been sent, the socket closes."""

    close_code = 1000


class StateVersion(NamedTuple):
    """What a client holds: query-set version, identity version, snapshot timestamp.

    A named tuple, not a dataclass: one is built per Transition per socket, and its hash and
    equality (the shared encodings' keys, sync/shared_encodings.py) are the tuple's own."""

    query_set: int = 0
    identity: int = 0
    ts: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"querySet": self.query_set, "identity": self.identity, "ts": encode_ts(self.ts)}


@dataclass(frozen=True)
class Connect:
    session_id: str
    connection_count: int
    last_close_reason: str | None
    max_observed_ts: int | None


@dataclass(frozen=True)
class AddQuery:
    query_id: int
    udf_path: str
    args: Any
    journal: str | None


@dataclass(frozen=True)
class RemoveQuery:
    query_id: int


@dataclass(frozen=True)
class ModifyQuerySet:
    base_version: int
    new_version: int
    modifications: list[AddQuery | RemoveQuery] = field(default_factory=list)


@dataclass(frozen=True)
class MutationRequest:
    request_id: int
    udf_path: str
    args: Any


@dataclass(frozen=True)
class ActionRequest:
    request_id: int
    udf_path: str
    args: Any


@dataclass(frozen=True)
class Authenticate:
    base_version: int
    token_type: str
    value: str | None
    acting_as: dict[str, Any] | None


@dataclass(frozen=True)
class Event:
    event_type: str


ClientMessage = (
    Connect | ModifyQuerySet | MutationRequest | ActionRequest | Authenticate | Event
)


def _u32(msg: dict[str, Any], name: str) -> int:
    value = msg.get(name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
        raise ProtocolError(f"{msg.get('type')}: {name} must be a u32, got {value!r}")
    return value


def _str(msg: dict[str, Any], name: str, optional: bool = False) -> Any:
    value = msg.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{msg.get('type')}: {name} must be a string, got {value!r}")
    return value


def _args(msg: dict[str, Any]) -> Any:
    args = msg.get("args")
    if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict):
        raise ProtocolError(f"{msg.get('type')}: args must be a list holding one object")
    return args[0]


def parse_client_message(msg: Any) -> ClientMessage:
    """A decoded client message -> typed message; ProtocolError when malformed."""

    if not isinstance(msg, dict):
        raise ProtocolError("a message must be a JSON object")
    kind = msg.get("type")
    if kind == "Connect":
        observed = msg.get("maxObservedTimestamp")
        try:
            max_ts = None if observed is None else decode_ts(observed)
        except Exception as exc:
            raise ProtocolError(f"Connect: bad maxObservedTimestamp: {exc}") from None
        return Connect(_str(msg, "sessionId"), _u32(msg, "connectionCount"),
                       _str(msg, "lastCloseReason", optional=True), max_ts)
    if kind == "ModifyQuerySet":
        mods: list[AddQuery | RemoveQuery] = []
        raw = msg.get("modifications")
        if not isinstance(raw, list):
            raise ProtocolError("ModifyQuerySet: modifications must be a list")
        for mod in raw:
            if not isinstance(mod, dict):
                raise ProtocolError("ModifyQuerySet: each modification must be an object")
            if mod.get("type") == "Add":
                if mod.get("componentPath"):
                    raise ProtocolError("ModifyQuerySet: componentPath is not supported")
                mods.append(AddQuery(_u32(mod, "queryId"), _str(mod, "udfPath"), _args(mod),
                                     _str(mod, "journal", optional=True)))
            elif mod.get("type") == "Remove":
                mods.append(RemoveQuery(_u32(mod, "queryId")))
            else:
                raise ProtocolError(f"ModifyQuerySet: unknown modification {mod.get('type')!r}")
        return ModifyQuerySet(_u32(msg, "baseVersion"), _u32(msg, "newVersion"), mods)
    if kind in ("Mutation", "Action"):
        if msg.get("componentPath"):
            raise ProtocolError(f"{kind}: componentPath is not supported")
        cls = MutationRequest if kind == "Mutation" else ActionRequest
        return cls(_u32(msg, "requestId"), _str(msg, "udfPath"), _args(msg))
    if kind == "Authenticate":
        token_type = msg.get("tokenType")
        if token_type not in ("User", "Admin", "None"):
            raise ProtocolError(f"Authenticate: unknown tokenType {token_type!r}")
        value = None if token_type == "None" else _str(msg, "value")
        acting = msg.get("impersonating", msg.get("acting_as"))
        if acting is not None and not isinstance(acting, dict):
            raise ProtocolError("Authenticate: impersonating must be an object")
        return Authenticate(_u32(msg, "baseVersion"), token_type, value, acting)
    if kind == "Event":
        return Event(str(msg.get("eventType")))
    raise ProtocolError(f"unknown message type {kind!r}")


def query_failed(query_id: int, error: dict[str, Any], journal: str | None = None, *,
                 log_lines: list[str] | None = None) -> dict[str, Any]:
    out = {"type": "QueryFailed", "queryId": query_id, "errorMessage": error["errorMessage"],
           "logLines": list(log_lines or ()), "journal": journal}
    if "errorData" in error:
        out["errorData"] = error["errorData"]
    return out


def query_removed(query_id: int) -> dict[str, Any]:
    return {"type": "QueryRemoved", "queryId": query_id}


def query_result_json(query_id: int, result_json: bytes, lines_json: bytes = b"[]",
                      journal: str | None = None) -> bytes:
    """QueryUpdated or QueryFailed for a result given as `orjson.dumps([ok, value])`, with
    the run's log lines given as `orjson.dumps(log_lines)` and the query's journal (an
    opaque string the client hands back when it subscribes again, or None).

    The value (or error body) and the lines are spliced in as the bytes they were encoded to
    once, so a result shared by many sockets is never encoded again per socket: orjson
    writes `[true,` and `[false,{` with no spaces, which is what the slices below rely on.
    """
    tail = b',"logLines":' + lines_json + b',"journal":' + orjson.dumps(journal) + b"}"
    if result_json.startswith(b"[true,"):
        return (b'{"type":"QueryUpdated","queryId":%d,"value":' % query_id + result_json[6:-1]
                + tail)
    assert result_json.startswith(b"[false,{") and result_json.endswith(b"}]"), result_json
    return b'{"type":"QueryFailed","queryId":%d,' % query_id + result_json[8:-2] + tail


def transition_json(start: StateVersion, end: StateVersion, modifications: list[bytes],
                    server_ts_ns: int) -> str:
    """A Transition as the text frame to send, with modifications already encoded."""
    return (b'{"type":"Transition","startVersion":' + orjson.dumps(start.to_json())
            + b',"endVersion":' + orjson.dumps(end.to_json()) + b',"modifications":['
            + b",".join(modifications) + b'],"serverTs":%d}' % server_ts_ns).decode()


def mutation_response(request_id: int, *, value: Any = None, ts: int | None = None,
                      error: dict[str, Any] | None = None, log_lines: list[str] | None = None
                      ) -> dict[str, Any]:
    if error is None:
        assert ts is not None
        return {"type": "MutationResponse", "requestId": request_id, "success": True,
                "result": value, "ts": encode_ts(ts), "logLines": list(log_lines or ())}
    out = {"type": "MutationResponse", "requestId": request_id, "success": False,
           "result": error["errorMessage"], "ts": None, "logLines": list(log_lines or ())}
    if "errorData" in error:
        out["errorData"] = error["errorData"]
    return out


def action_response(request_id: int, *, value: Any = None, error: dict[str, Any] | None = None,
                    log_lines: list[str] | None = None) -> dict[str, Any]:
    if error is None:
        return {"type": "ActionResponse", "requestId": request_id, "success": True,
                "result": value, "logLines": list(log_lines or ())}
    out = {"type": "ActionResponse", "requestId": request_id, "success": False,
           "result": error["errorMessage"], "logLines": list(log_lines or ())}
    if "errorData" in error:
        out["errorData"] = error["errorData"]
    return out


def auth_error(message: str, base_version: int, attempted: bool) -> dict[str, Any]:
    return {"type": "AuthError", "error": message, "baseVersion": base_version,
            "authUpdateAttempted": attempted}


PING: dict[str, Any] = {"type": "Ping"}
