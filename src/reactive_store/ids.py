"""Document ids: base32 strings that encode their table's number, random bits and a check."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from contextvars import ContextVar

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
_RANDOM_BYTES = 14


def _fletcher16(data: bytes) -> bytes:
    a = b = 0
    for byte in data:
        a = (a + byte) % 255
        b = (b + a) % 255
    return bytes([b, a])


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


_FROM_RFC4648 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET)


def _b32(data: bytes) -> str:
    # Right-aligned, like _unb32 expects: left-pad to whole 5-byte groups with zero bytes,
    # encode, then drop the characters that only encode the padding.
    length = (len(data) * 8 + 4) // 5
    pad = -len(data) % 5
    text = base64.b32encode(bytes(pad) + data).decode().translate(_FROM_RFC4648)
    return text[len(text) - length:]


def _unb32(text: str) -> bytes:
    bits = 0
    for char in text:
        if char not in _DECODE:
            raise ValueError(f"invalid id {text!r}: unexpected character {char!r}")
        bits = (bits << 5) | _DECODE[char]
    # The data is right-aligned: the leading (len*5 - nbytes*8) bits are zero padding.
    nbytes = len(text) * 5 // 8
    if bits >> (nbytes * 8):
        raise ValueError(f"invalid id {text!r}: bad padding")
    return bits.to_bytes(nbytes, "big")


def new_id(table_number: int) -> str:
    """A fresh id for a document of the table numbered `table_number`."""
    body = _varint(table_number) + os.urandom(_RANDOM_BYTES)
    return _b32(body + _fletcher16(body))


def table_number_of(doc_id: str) -> int:
    """The table number an id encodes; ValueError when the id is malformed."""
    if not isinstance(doc_id, str) or not 20 <= len(doc_id) <= 40:
        raise ValueError(f"invalid id {doc_id!r}: not an id string")
    raw = _unb32(doc_id)
    body, check = raw[:-2], raw[-2:]
    if _fletcher16(body) != check:
        raise ValueError(f"invalid id {doc_id!r}: checksum mismatch")
    number = shift = 0
    for i, byte in enumerate(body):
        number |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if len(body) - i - 1 != _RANDOM_BYTES:
                raise ValueError(f"invalid id {doc_id!r}: wrong length")
            return number
    raise ValueError(f"invalid id {doc_id!r}: truncated")


# The table numbering of the deployment a function runs in, so that `v.id(table)` can tell
# an id of another table apart. Set by the engine around validation and function calls.
TABLE_NAMES: ContextVar[Mapping[int, str] | None] = ContextVar("table_names", default=None)


def table_of(doc_id: str) -> str | None:
    """The table name an id belongs to in the current deployment (None when unknown)."""
    names = TABLE_NAMES.get()
    if names is None:
        return None
    number = table_number_of(doc_id)
    if number not in names:
        raise ValueError(f"invalid id {doc_id!r}: no table numbered {number}")
    return names[number]
