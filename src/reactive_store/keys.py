"""Order-preserving byte encoding of index keys: bytes compare (memcmp) as the values do.

Each value is a type tag followed by a self-delimiting payload, in the spirit of the
FoundationDB tuple layer, so a tuple's key is the concatenation of its elements' keys and
tuples order lexicographically. Type order follows Convex:
missing < null < int64 < float64 < boolean < string < bytes < array < object.
Every tag is below 0xFF, and a string or bytes encoding is a prefix of another only when the
longer one continues with 0xFF (an escaped NUL: "a" < "a\\x00"). So after a complete element
encoding, any further element starts below 0xFF, and `prefix + b"\\xff"` is above every key
whose leading elements are exactly `prefix`'s and below every key with a greater element.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from reactive_store.types import Value

TAG_MISSING = 0x01
TAG_NULL = 0x02
TAG_INT64 = 0x03
TAG_FLOAT64 = 0x04
TAG_BOOLEAN = 0x05
TAG_STRING = 0x06
TAG_BYTES = 0x07
TAG_ARRAY = 0x08
TAG_OBJECT = 0x09
END = b"\x00"
TOP = b"\xff"

# A sentinel for "this field is absent from the document".
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()

_CANONICAL_NAN = struct.pack(">d", math.nan)
_DOUBLE = struct.Struct(">d").pack


def _escape(raw: bytes) -> bytes:
    # 0x00 inside a payload becomes 0x00 0xFF so that 0x00 0x00 can only be a terminator.
    return raw.replace(b"\x00", b"\x00\xff") + END


def _float_bits(x: float) -> bytes:
    raw = _CANONICAL_NAN if x != x else _DOUBLE(x)  # x != x: NaN
    if raw[0] & 0x80:  # negative: flip every bit so larger magnitudes sort first
        return bytes(b ^ 0xFF for b in raw)
    return bytes([raw[0] | 0x80]) + raw[1:]


def encode_value(value: Value, out: bytearray) -> None:
    """Append the order-preserving encoding of one value to `out`."""
    kind = type(value)  # the common exact types first; subclasses take the chain below
    if kind is str:
        out.append(TAG_STRING)
        out += _escape(value.encode("utf-8"))
    elif kind is float:
        out.append(TAG_FLOAT64)
        out += _float_bits(value)
    elif value is MISSING:
        out.append(TAG_MISSING)
    elif value is None:
        out.append(TAG_NULL)
    elif isinstance(value, bool):
        out.append(TAG_BOOLEAN)
        out.append(1 if value else 0)
    elif isinstance(value, int):
        if not -(1 << 63) <= value < (1 << 63):
            raise ValueError(f"integer {value} does not fit in int64")
        out.append(TAG_INT64)
        out += struct.pack(">Q", value + (1 << 63))
    elif isinstance(value, float):
        out.append(TAG_FLOAT64)
        out += _float_bits(value)
    elif isinstance(value, str):
        out.append(TAG_STRING)
        out += _escape(value.encode("utf-8"))
    elif isinstance(value, bytes | bytearray | memoryview):
        out.append(TAG_BYTES)
        out += _escape(bytes(value))
    elif isinstance(value, list | tuple):
        out.append(TAG_ARRAY)
        for item in value:
            encode_value(item, out)
        out += END
    elif isinstance(value, dict):
        out.append(TAG_OBJECT)
        for key in sorted(value):
            encode_value(key, out)
            encode_value(value[key], out)
        out += END
    else:
        raise TypeError(f"cannot encode {type(value).__name__} in an index key")


def encode_tuple(values: list[Value] | tuple[Value, ...]) -> bytes:
    """The key of a tuple of values: the concatenation of their encodings."""
    out = bytearray()
    for value in values:
        encode_value(value, out)
    return bytes(out)


def field_value(doc: dict[str, Any], path: str) -> Value:
    """The value at a dotted field path of a document, or MISSING."""
    if "." not in path:
        return doc.get(path, MISSING) if isinstance(doc, dict) else MISSING
    current: Any = doc
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return MISSING
        current = current[part]
    return current


def successor(key: bytes) -> bytes:
    """The smallest key strictly after `key` (keys are unique, so [a, successor(a)) is {a})."""
    return key + END


def prefix_end(prefix: bytes) -> bytes:
    """An exclusive upper bound above every key that starts with `prefix`."""
    return prefix + TOP
