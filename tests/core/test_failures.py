"""error_body: what a caller is told when a function fails, and what only the log sees."""

from __future__ import annotations

import base64
import logging
import struct
from typing import Any

import orjson
import pytest

from reactive_store import values
from reactive_store.errors import (
    BadRequest,
    ConvexError,
    FunctionNotFound,
    InternalError,
    ValidationError,
)
from reactive_store.failures import error_body


def test_error_body_convex_error_with_string() -> None:
    assert error_body(ConvexError("not allowed")) == {"errorMessage": "not allowed",
                                                      "errorData": "not allowed"}


def test_error_body_convex_error_with_object() -> None:
    data = {"code": 404, "why": "missing", "blob": b"\x01"}
    body = error_body(ConvexError(data))
    assert body["errorMessage"] == "ConvexError"
    assert body["errorData"] == values.encode(data)
    assert body["errorData"]["code"] == {"$integer": base64.b64encode(
        struct.pack("<q", 404)).decode()}
    orjson.dumps(body)


def test_error_body_convex_error_with_none() -> None:
    body = error_body(ConvexError(None))
    assert body == {"errorMessage": "ConvexError", "errorData": None}


@pytest.mark.parametrize("data", [object(), {"$bad": 1}, 2**70, {1: "x"}],
                         ids=["object", "dollar-key", "2**70", "int-key"])
def test_error_body_convex_error_with_unencodable_data(data: Any) -> None:
    body = error_body(ConvexError(data))
    assert body["errorMessage"] == "ConvexError"
    assert body["errorData"] == str(data)
    orjson.dumps(body)


@pytest.mark.parametrize(
    "exc",
    [ValidationError("args.n: expected a number"), FunctionNotFound("no function x:y"),
     BadRequest("bad path", "BadPath")],
)
def test_error_body_our_errors_pass_their_message(exc: Exception) -> None:
    assert error_body(exc) == {"errorMessage": str(exc)}


def test_error_body_internal_error_hides_details(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="reactive_store.failures"):
        body = error_body(InternalError("database password is hunter2"))
    assert body == {"errorMessage": "Server Error"}
    assert "hunter2" not in orjson.dumps(body).decode()
    assert "hunter2" in caplog.text  # the log keeps the cause


@pytest.mark.parametrize(
    ("exc", "message"),
    [(ValueError("msg"), "Uncaught ValueError: msg"),
     (KeyError("k"), "Uncaught KeyError: 'k'"),
     (ZeroDivisionError("division by zero"), "Uncaught ZeroDivisionError: division by zero"),
     (RuntimeError(), "Uncaught RuntimeError: ")],
)
def test_error_body_other_exceptions(exc: Exception, message: str) -> None:
    assert error_body(exc) == {"errorMessage": message}
