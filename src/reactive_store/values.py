"""The document value model and its Convex JSON encoding (the wire and storage form).

Python holds Convex values as: None, bool, int (int64), float (float64), str, bytes,
list and dict[str, value]. A Python int is always an int64 and is encoded as
`{"$integer": ...}`; plain JSON numbers decode to float, as in Convex.

Arrays and objects nest at most MAX_NESTING_DEPTH levels (Convex's limit, the outermost
counted; `{"$integer": ...}`-style special objects are leaves): every walk here counts depth
and refuses a deeper value before Python's recursion limit could be reached.
"""

from __future__ import annotations

import base64
import math
import re
import struct
from typing import Any

from reactive_store.errors import BadRequest, ValidationError
from reactive_store.types import Value

UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()
"""In `ctx.db.patch(id, {"field": UNSET})`: remove the field (Convex's `undefined`)."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_FIELD_NAME_LENGTH = 1024
MAX_NESTING_DEPTH = 64
_TOO_DEEP = f"nested deeper than {MAX_NESTING_DEPTH} levels (the limit for a value)"


def type_name(value: Any) -> str:
    """The Convex name of a Python value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return f"unsupported Python type {type(value).__name__}"


_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
# Field names already found valid; documents repeat the same few names endlessly.
_valid_names: set[str] = set()
_MAX_CACHED_NAMES = 50_000


def field_name_problem(name: Any) -> str | None:
    """Why `name` may not be an object key in a Convex value, or None when it may."""
    if name in _valid_names:
        return None
    if not isinstance(name, str):
        return f"object keys must be strings, got {type(name).__name__}"
    if len(name) > MAX_FIELD_NAME_LENGTH:
        return f"field name longer than {MAX_FIELD_NAME_LENGTH} characters"
    if name.startswith("$"):
        return f"field name {name!r} starts with '$'"
    if not _PRINTABLE_ASCII.fullmatch(name):
        return f"field name {name!r} has non-printable or non-ASCII characters"
    if len(_valid_names) < _MAX_CACHED_NAMES:
        _valid_names.add(name)
    return None


def _encode_float(x: float) -> Any:
    if math.isfinite(x) and not (x == 0.0 and math.copysign(1.0, x) < 0):
        return x
    return {"$float": base64.b64encode(struct.pack("<d", x)).decode()}


class _Unencodable(Exception):
    """Raised by the fast encoder; the slow one then finds the path and the reason."""


def _encode_fast(value: Any, depth: int = 0) -> Any:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is float:
        if value - value == 0.0 and (value != 0.0 or math.copysign(1.0, value) > 0):
            return value
        return _encode_float(value)
    if kind is dict:
        depth += 1
        if depth > MAX_NESTING_DEPTH:
            raise _Unencodable
        out = {}
        for key, item in value.items():
            if key not in _valid_names and field_name_problem(key) is not None:
                raise _Unencodable
            out[key] = _encode_fast(item, depth)
        return out
    if kind is list:
        depth += 1
        if depth > MAX_NESTING_DEPTH:
            raise _Unencodable
        return [_encode_fast(item, depth) for item in value]
    if kind is int and INT64_MIN <= value <= INT64_MAX:
        return {"$integer": base64.b64encode(struct.pack("<q", value)).decode()}
    raise _Unencodable


def encode(value: Value, path: str = "value") -> Any:
    """Python value -> JSON-ready Convex encoding. Raises ValidationError on what Convex forbids."""
    try:
        return _encode_fast(value)
    except _Unencodable:
        return _encode_checked(value, path)


def _encode_checked(value: Value, path: str, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValidationError(f"{path}: integer {value} does not fit in int64")
        return {"$integer": base64.b64encode(struct.pack("<q", value)).decode()}
    if isinstance(value, float):
        return _encode_float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, list | tuple | dict) and depth >= MAX_NESTING_DEPTH:
        raise ValidationError(f"{path}: {_TOO_DEEP}")
    if isinstance(value, list | tuple):
        return [_encode_checked(item, f"{path}[{i}]", depth + 1)
                for i, item in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            problem = field_name_problem(key)
            if problem is not None:
                raise ValidationError(f"{path}: {problem}")
            out[key] = _encode_checked(item, f"{path}.{key}", depth + 1)
        return out
    raise ValidationError(f"{path}: {type_name(value)} is not a Convex value")


def _b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise BadRequest(f"{what} must be a base64 string, got {type(text).__name__}")
    try:
        padded = text + "=" * (-len(text) % 4)
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except ValueError as exc:
        raise BadRequest(f"{what} is not valid base64: {text!r}") from exc


def decode(data: Any) -> Value:
    """Convex JSON -> Python value. Raises BadRequest on malformed special objects and on
    values nested deeper than MAX_NESTING_DEPTH."""
    return _decode(data, 0)


def _decode(data: Any, depth: int) -> Value:
    kind = type(data)
    if kind is str or kind is bool or data is None:
        return data
    if kind is float or kind is int:
        return float(data)
    if kind is dict:
        if len(data) == 1:
            ((key, inner),) = data.items()
            if key.startswith("$"):
                return _decode_special(key, inner)
        depth += 1
        if depth > MAX_NESTING_DEPTH:
            raise BadRequest(f"value {_TOO_DEEP}")
        out: dict[str, Any] = {}
        for key, item in data.items():
            if key not in _valid_names:
                problem = field_name_problem(key)
                if problem is not None:
                    raise BadRequest(problem)
            out[key] = _decode(item, depth)
        return out
    if kind is list:
        depth += 1
        if depth > MAX_NESTING_DEPTH:
            raise BadRequest(f"value {_TOO_DEEP}")
        return [_decode(item, depth) for item in data]
    raise BadRequest(f"{kind.__name__} is not a JSON value")


def _decode_special(key: str, inner: Any) -> Value:
    if key == "$integer":
        raw = _b64(inner, "$integer")
        if len(raw) != 8:
            raise BadRequest(f"$integer must hold 8 bytes, got {len(raw)}")
        return int(struct.unpack("<q", raw)[0])
    if key == "$float":
        raw = _b64(inner, "$float")
        if len(raw) != 8:
            raise BadRequest(f"$float must hold 8 bytes, got {len(raw)}")
        x = float(struct.unpack("<d", raw)[0])
        if math.isfinite(x) and not (x == 0.0 and math.copysign(1.0, x) < 0):
            raise BadRequest(f"$float may only hold NaN, Infinity or -0, got {x}")
        return x
    if key == "$bytes":
        return _b64(inner, "$bytes")
    if key in ("$set", "$map"):
        raise BadRequest(f"{key} values are no longer supported")
    raise BadRequest(f"unknown special value {key!r}")


def export_clean(value: Value, depth: int = 0) -> Any:
    """The lossy `json` format: int64 as decimal strings, bytes as base64, non-finite as names."""
    if isinstance(value, list | tuple | dict):
        if depth >= MAX_NESTING_DEPTH:
            raise ValidationError(f"value {_TOO_DEEP}")
        if isinstance(value, dict):
            return {key: export_clean(item, depth + 1) for key, item in value.items()}
        return [export_clean(item, depth + 1) for item in value]
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    raise ValidationError(f"{type_name(value)} is not a Convex value")


class _ShapeExceeded(Exception):
    """Raised by the fast shape count; the checked walk then names what is wrong."""


def _count_fields(item: Any, depth: int, max_depth: int, max_array: int) -> int:
    # The walk of every valid write: no paths built (they cost more than the walk itself).
    if isinstance(item, dict):
        if depth > max_depth:
            raise _ShapeExceeded
        fields = len(item)
        for child in item.values():
            if isinstance(child, dict | list | tuple):
                fields += _count_fields(child, depth + 1, max_depth, max_array)
        return fields
    if depth > max_depth or len(item) > max_array:
        raise _ShapeExceeded
    fields = 0
    for child in item:
        if isinstance(child, dict | list | tuple):
            fields += _count_fields(child, depth + 1, max_depth, max_array)
    return fields


def check_document_shape(
    value: Value, *, max_depth: int, max_array: int, max_fields: int, path: str = "document"
) -> int:
    """Check nesting depth, array lengths and field counts; return the number of fields seen."""
    if not isinstance(value, dict | list | tuple):
        return 0
    try:
        fields = _count_fields(value, 1, max_depth, max_array)
    except (_ShapeExceeded, RecursionError):  # a limit set deeper than Python recurses
        pass
    else:
        if fields <= max_fields:
            return fields
    return _checked_shape(value, max_depth, max_array, max_fields, path)


def _checked_shape(value: Value, max_depth: int, max_array: int, max_fields: int,
                   path: str) -> int:
    """The walk that names the first problem it meets (a path to it) and raises."""
    fields = 0
    stack: list[tuple[Any, int, str]] = [(value, 1, path)]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, dict | list | tuple) and depth > max_depth:
            raise ValidationError(f"{where}: nesting deeper than {max_depth} levels")
        if isinstance(item, dict):
            fields += len(item)
            if fields > max_fields:
                raise ValidationError(f"{path}: more than {max_fields} fields")
            stack.extend((v, depth + 1, f"{where}.{k}") for k, v in item.items())
        elif isinstance(item, list | tuple):
            if len(item) > max_array:
                raise ValidationError(
                    f"{where}: array of {len(item)} elements, more than {max_array}"
                )
            stack.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(item))
    return fields
