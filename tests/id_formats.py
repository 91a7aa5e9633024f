"""Id codecs written for the tests, independent of reactive_store.ids: Convex's id format
from its specification (so a drift of ids.py from Convex fails the tests), and the legacy
id maker of deployments made before Convex's format (to build old data)."""

from __future__ import annotations

import base64
import os

CONVEX_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_RFC4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_CONVEX = str.maketrans(_RFC4648, CONVEX_ALPHABET)
_FROM_CONVEX = str.maketrans(CONVEX_ALPHABET, _RFC4648)


def _vint(n: int) -> bytes:
    out = []
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _fletcher256(data: bytes) -> int:
    c0 = c1 = 0
    for byte in data:
        c0 = (c0 + byte) % 256
        c1 = (c1 + c0) % 256
    return (c1 << 8) | c0


def convex_id(table_number: int, internal: bytes | None = None) -> str:
    """A Convex id, by the specification: vint + 16 bytes + LE footer, RFC 4648 base32
    (standard library) without padding, Convex's alphabet."""
    internal = os.urandom(16) if internal is None else internal
    assert len(internal) == 16
    return raw_id(_vint(table_number) + internal)


def raw_id(body: bytes, spoil_footer: bool = False) -> str:
    """`body` and its footer (version 0; one bit flipped with `spoil_footer`) in Convex's
    base32, whatever the body's structure: for ids that are wrong in a chosen way."""
    footer = (_fletcher256(body) ^ spoil_footer).to_bytes(2, "little")
    text = base64.b32encode(body + footer).decode().rstrip("=")
    return text.translate(_TO_CONVEX)


def decode_convex_id(text: str) -> tuple[int, bytes]:
    """(table number, internal id) of a Convex id; AssertionError if it is not one."""
    assert 31 <= len(text) <= 37, f"{text!r}: length {len(text)}"
    assert set(text) <= set(CONVEX_ALPHABET), f"{text!r}: characters"
    padded = text.translate(_FROM_CONVEX) + "=" * (-len(text) % 8)
    raw = base64.b32decode(padded)
    assert base64.b32encode(raw).decode().rstrip("=").translate(_TO_CONVEX) == text, \
        f"{text!r}: not canonical base32"
    number = used = 0
    while True:
        assert used < 5, f"{text!r}: varint"
        byte = raw[used]
        number |= (byte & 0x7F) << (7 * used)
        used += 1
        if byte < 0x80:
            break
    assert len(raw) == used + 18, f"{text!r}: {len(raw)} bytes"
    assert int.from_bytes(raw[-2:], "little") == _fletcher256(raw[:-2]), f"{text!r}: footer"
    assert 0 < number < 2**32, f"{text!r}: table number {number}"
    return number, raw[used:-2]


def legacy_id(table_number: int, random: bytes | None = None) -> str:
    """An id as deployments made before Convex's format stored them: vint + 14 random
    bytes + Fletcher-16 mod 255 (big-endian), base32 right-aligned."""
    random = os.urandom(14) if random is None else random
    body = _vint(table_number) + random
    a = b = 0
    for byte in body:
        a = (a + byte) % 255
        b = (b + a) % 255
    data = body + bytes([b, a])
    length = (len(data) * 8 + 4) // 5
    value = int.from_bytes(data, "big")
    return "".join(CONVEX_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(length)))
