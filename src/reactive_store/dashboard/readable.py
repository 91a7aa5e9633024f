"""Values as the dashboard shows and edits them: plain JSON text that keeps every type.

An integer is an int64 and a number with a point or exponent a float64 (`5` vs `5.0`),
as `reactive-store run` reads its arguments; bytes are `{"$bytes": "<base64>"}` and NaN,
the infinities and -0.0 are `{"$float": "<base64>"}` (Convex's own encoding of them), so a
document shown in the editor and saved unchanged is stored unchanged. Parse errors name
the line and column, for the page to show.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from typing import Any

from reactive_store import values
from reactive_store.errors import ConvexError, ReactiveStoreError

PREVIEW_CHARS = 120


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and not (value == 0.0 and math.copysign(1.0, value) < 0):
            return value
        return {"$float": base64.b64encode(struct.pack("<d", value)).decode()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return str(value)


def to_text(value: Any, indent: int | None = 2) -> str:
    """`value` as readable JSON (see the module docstring)."""
    return json.dumps(_plain(value), indent=indent, ensure_ascii=False)


def preview(value: Any) -> str:
    """One line of at most PREVIEW_CHARS characters, for a table cell."""
    text = value if isinstance(value, str) else to_text(value, indent=None)
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1] + "…"


def as_floats(value: Any) -> Any:
    """Every int in `value` as a float: the page computes with plain JS numbers (an int64
    would reach it as a BigInt). Documents travel as text, so nothing of theirs is lost."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, list):
        return [as_floats(item) for item in value]
    if isinstance(value, dict):
        return {key: as_floats(item) for key, item in value.items()}
    return value


def _typed(raw: Any) -> Any:
    if isinstance(raw, list):
        return [_typed(item) for item in raw]
    if isinstance(raw, dict):
        if len(raw) == 1 and next(iter(raw)) in ("$bytes", "$float", "$integer"):
            return values.decode(raw)
        return {key: _typed(item) for key, item in raw.items()}
    return raw


def parse(text: Any, what: str) -> Any:
    """Readable JSON text -> a value; ConvexError with the position of a syntax error."""
    if not isinstance(text, str):
        raise ConvexError(f"{what} must be JSON text")
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ConvexError(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, "
                          f"column {exc.colno})") from None
    except ValueError as exc:
        raise ConvexError(f"{what} is not valid JSON: {exc}") from None
    try:
        return _typed(raw)
    except ReactiveStoreError as exc:
        raise ConvexError(f"{what}: {exc.message}") from None


def parse_object(text: Any, what: str) -> dict[str, Any]:
    value = parse(text, what)
    if not isinstance(value, dict):
        raise ConvexError(f"{what} must be a JSON object, like {{\"name\": \"value\"}}")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON; write {{\"$float\": ...}} for special numbers")
