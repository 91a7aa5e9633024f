"""Commit timestamps on the wire: u64 -> 8 bytes little-endian -> standard base64."""

from __future__ import annotations

import base64
import struct
from typing import Any

from reactive_store.errors import BadRequest


def encode_ts(ts: int) -> str:
    return base64.b64encode(struct.pack("<Q", ts)).decode()


def decode_ts(text: Any) -> int:
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
