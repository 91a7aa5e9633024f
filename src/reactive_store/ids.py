"""Document ids: Convex's id format (a table number, 16 random bytes and a check, in base32),
plus the legacy format of deployments made before it, which is still read forever.

A Convex id ("DocumentIdV6") is the base32 text of the bytes
`varint(table number) + 16 random bytes + footer`: the varint puts 7 bits per byte, low bits
first, the high bit set on every byte but the last (1 to 5 bytes; table number 0 is
invalid); the footer is the Fletcher-16 checksum modulo 256 of the bytes before it (c0 the
running byte sum, c1 the running sum of c0; value `c1 << 8 | c0`) XOR the version 0, stored
little-endian. The base32 is RFC 4648's bit order (the last group padded with zero bits at
its end, no '=') over the alphabet below, lower case only: 31 to 37 characters.

Legacy ids (this project before Convex's format) carry 14 random bytes, a Fletcher-16
modulo 255 stored big-endian, and right-aligned base32: 28 or 29 characters for the table
numbers a legacy deployment has. Lengths never overlap, so the length tells the format.
New ids are always Convex's, also in tables that have legacy ids.
"""

from __future__ import annotations

import base64
import functools
import itertools
import os
import threading
from collections.abc import Mapping
from contextvars import ContextVar

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
_FROM_RFC4648 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())
# Our digits as int()'s base-32 digits (0-9a-v); every other character int() would take (a
# digit, a letter, a sign, "_", white space) becomes one it refuses.
_INT_TAKES = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+-_ \t\n\r\x0b\x0c"
_TO_INT_DIGITS = str.maketrans({**{c: "!" for c in _INT_TAKES}, **{
    c: "0123456789abcdefghijklmnopqrstuv"[i] for i, c in enumerate(_ALPHABET)}})
_INTERNAL_BYTES = 16
_MAX_TABLE_NUMBER = 2**32 - 1  # a u32, as Convex's; at most 5 varint bytes
# The lengths of 19 to 23 bytes in base32 without padding (8 characters per 5 bytes, and
# 2, 4, 5 or 7 for 1 to 4 more).
_CONVEX_LENGTHS = frozenset({31, 32, 34, 36, 37})
_LEGACY_RANDOM_BYTES = 14
_LEGACY_MAX_LENGTH = 30


def new_id(table_number: int) -> str:
    """A fresh Convex-format id for a document of the table numbered `table_number`."""
    if not 1 <= table_number <= _MAX_TABLE_NUMBER:
        raise ValueError(f"table number {table_number} is not in 1..{_MAX_TABLE_NUMBER}")
    prefix = _varint_of(table_number)
    while True:
        body = prefix + _random_bytes(_INTERNAL_BYTES)
        if _legacy_check(body[:-2]) != body[-2:]:  # never looks like a converted legacy id
            return _b32(body + _footer(body))


class _RandomPool:
    """os.urandom read 4 KiB at a time (a system call per 256 ids, not per id); emptied in
    a forked child, which must not repeat its parent's ids."""

    def __init__(self) -> None:
        self.data = b""
        self.at = 0
        self.lock = threading.Lock()  # no two threads take the same bytes

    def take(self, n: int) -> bytes:
        with self.lock:
            if self.at + n > len(self.data):
                self.data, self.at = os.urandom(4096), 0
            chunk = self.data[self.at:self.at + n]
            self.at += n
            return chunk

    def clear(self) -> None:
        self.data, self.at = b"", 0
        self.lock = threading.Lock()


_RANDOM = _RandomPool()
_random_bytes = _RANDOM.take
os.register_at_fork(after_in_child=_RANDOM.clear)


def convex_form(doc_id: str) -> str:
    """A legacy id as a Convex-format id of the same table (its 14 random bytes and its own
    2-byte check as the internal id; `legacy_form` reverses it); other ids as they are."""
    if len(doc_id) > _LEGACY_MAX_LENGTH:
        return doc_id
    table_number_of(doc_id)  # a valid legacy id, or ValueError
    legacy = _digits(doc_id).to_bytes(len(doc_id) * 5 // 8, "big")  # varint + 14 + check
    return _b32(legacy + _footer(legacy))


def legacy_form(doc_id: str) -> str | None:
    """The legacy id a Convex-format id made by `convex_form` stands for, else None."""
    if len(doc_id) not in _CONVEX_LENGTHS:
        return None
    try:
        table_number_of(doc_id)
    except ValueError:
        return None
    body = _unb32(doc_id)[:-2]  # varint + 14 random bytes + their legacy check
    if _legacy_check(body[:-2]) != body[-2:]:
        return None
    length = (len(body) * 8 + 4) // 5
    value = int.from_bytes(body, "big")
    return "".join(_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(length)))


def table_number_of(doc_id: str) -> int:
    """The table number an id (Convex or legacy format) encodes; ValueError naming what is
    wrong when the id is malformed."""
    if not isinstance(doc_id, str):
        raise ValueError(f"invalid id {doc_id!r}: not an id string")
    return _table_number(doc_id)


# Every read, patch and delete decodes its id; the same ids come back again and again.
@functools.lru_cache(maxsize=16384)
def _table_number(doc_id: str) -> int:
    if 20 <= len(doc_id) <= _LEGACY_MAX_LENGTH:
        return _legacy_table_number(doc_id)
    if len(doc_id) not in _CONVEX_LENGTHS:
        raise ValueError(f"invalid id {doc_id!r}: bad length {len(doc_id)} (an id has 31, "
                         "32, 34, 36 or 37 characters)")
    raw = _unb32(doc_id)
    number, used = _read_varint(doc_id, raw)
    if len(raw) != used + _INTERNAL_BYTES + 2:
        raise ValueError(f"invalid id {doc_id!r}: bad length {len(doc_id)} for a table "
                         f"number of {used} bytes")
    body = raw[:-2]
    if _footer(body) != raw[-2:]:
        raise ValueError(f"invalid id {doc_id!r}: checksum mismatch")
    if number == 0:
        raise ValueError(f"invalid id {doc_id!r}: table number 0")
    return number


@functools.lru_cache(maxsize=1024)
def _varint_of(n: int) -> bytes:
    return _varint(n)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(doc_id: str, raw: bytes) -> tuple[int, int]:
    """(number, bytes used) of the varint `raw` starts with."""
    number = 0
    for i, byte in enumerate(raw[:5]):
        number |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if number > _MAX_TABLE_NUMBER:
                raise ValueError(f"invalid id {doc_id!r}: table number too large")
            return number, i + 1
    raise ValueError(f"invalid id {doc_id!r}: truncated table number varint")


def _fletcher_sums(body: bytes) -> tuple[int, int]:
    # c0 is the byte sum; c1 the sum of c0 after each byte (both before any modulo).
    return sum(body), sum(itertools.accumulate(body))


def _footer(body: bytes) -> bytes:
    c0, c1 = _fletcher_sums(body)
    return bytes([c0 & 0xFF, c1 & 0xFF])  # (c1 << 8 | c0) ^ version 0, little-endian


def _b32(data: bytes) -> str:
    # RFC 4648 base32 also reads 5 bits at a time from the first byte and pads the last
    # group with zero bits; only its alphabet and its "=" padding differ.
    return base64.b32encode(data).rstrip(b"=").translate(_FROM_RFC4648).decode()


def _digits(text: str) -> int:
    if text.isascii():  # int() reads any Unicode digit; the translation covers ASCII only
        try:
            return int(text.translate(_TO_INT_DIGITS), 32)
        except ValueError:
            pass  # the walk below names the character
    value = 0
    for char in text:
        if char not in _DECODE:
            raise ValueError(f"invalid id {text!r}: unexpected character {char!r}")
        value = (value << 5) | _DECODE[char]
    return value


def _unb32(text: str) -> bytes:
    value = _digits(text)
    nbytes = len(text) * 5 // 8
    pad = len(text) * 5 - nbytes * 8  # the trailing bits that only fill the last character
    if value & ((1 << pad) - 1):
        raise ValueError(f"invalid id {text!r}: bad padding")
    return (value >> pad).to_bytes(nbytes, "big")


# -- legacy ids (read only) ------------------------------------------------------------


def _legacy_check(body: bytes) -> bytes:
    a, b = _fletcher_sums(body)  # Fletcher-16 modulo 255, big-endian
    return bytes([b % 255, a % 255])


def _legacy_table_number(doc_id: str) -> int:
    value = _digits(doc_id)
    nbytes = len(doc_id) * 5 // 8  # right-aligned: the leading bits are zero padding
    if value >> (nbytes * 8):
        raise ValueError(f"invalid id {doc_id!r}: bad padding")
    raw = value.to_bytes(nbytes, "big")
    body, check = raw[:-2], raw[-2:]
    if _legacy_check(body) != check:
        raise ValueError(f"invalid id {doc_id!r}: checksum mismatch")
    number, used = _read_varint(doc_id, body)
    if len(body) - used != _LEGACY_RANDOM_BYTES:
        raise ValueError(f"invalid id {doc_id!r}: bad length {len(doc_id)} for a table "
                         f"number of {used} bytes")
    if number == 0:
        raise ValueError(f"invalid id {doc_id!r}: table number 0")
    return number


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
