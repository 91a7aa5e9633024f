"""Signed capabilities for file storage: upload URL tokens and download URL signatures.

Both are HMAC-SHA256 under the deployment's file secret (kept in its database, so every
server process agrees on it), with a domain prefix so one can never pass for the other.
An upload token carries its nonce (single use is enforced by storage when the upload
commits), its expiry and optional narrower limits; a download signature is a function of
the storage id alone, so `get_url` returns the same URL every time (stable query results,
cacheable by browsers) and knowing a storage id is not enough to fetch the file.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

import orjson

from reactive_store.errors import (
    DigestMismatch,
    InvalidUploadUrl,
    UnsupportedContentType,
    UploadUrlExpired,
    ValidationError,
)

_UPLOAD = b"upload\x00"
_FILE = b"file\x00"
SIGNATURE_BYTES = 16  # 128 bits: unguessable, and short enough for a tidy URL
MAX_CONTENT_TYPE_CHARS = 255
# RFC 9110 media type: type "/" subtype, then optional parameters.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
MEDIA_TYPE = re.compile(rf"({_TOKEN})/({_TOKEN})\s*(;.*)?", re.DOTALL)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class UploadGrant:
    """What an upload URL allows: until `expires_ms`, once, at most `max_bytes` (None: the
    deployment's limit), of one of `content_types` (empty: the deployment's rule)."""

    nonce: str
    expires_ms: float
    max_bytes: int | None = None
    content_types: tuple[str, ...] = ()

    @staticmethod
    def new(expires_ms: float, max_bytes: int | None = None,
            content_types: tuple[str, ...] = ()) -> UploadGrant:
        return UploadGrant(_b64(os.urandom(16)), expires_ms, max_bytes, content_types)


def sign_upload(secret: bytes, grant: UploadGrant) -> str:
    """The URL token for `grant`: base64url(JSON) "." base64url(HMAC)."""
    body: dict[str, object] = {"n": grant.nonce, "e": grant.expires_ms}
    if grant.max_bytes is not None:
        body["m"] = grant.max_bytes
    if grant.content_types:
        body["t"] = list(grant.content_types)
    payload = orjson.dumps(body)
    mac = hmac.new(secret, _UPLOAD + payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def open_upload(secret: bytes, token: str | None, now_ms: float) -> UploadGrant:
    """The grant a token carries; InvalidUploadUrl or UploadUrlExpired when it is not usable."""
    if not token:
        raise InvalidUploadUrl("the upload URL has no token: use the URL that "
                               "ctx.storage.generate_upload_url() returned, unchanged")
    try:
        payload_text, mac_text = token.split(".")
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except (ValueError, binascii.Error):
        raise InvalidUploadUrl("the upload URL's token is malformed") from None
    expected = hmac.new(secret, _UPLOAD + payload, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise InvalidUploadUrl("the upload URL was not issued by this deployment")
    body = orjson.loads(payload)
    grant = UploadGrant(body["n"], body["e"], body.get("m"), tuple(body.get("t", ())))
    if grant.expires_ms <= now_ms:
        raise UploadUrlExpired("the upload URL has expired; generate a new one with "
                               "ctx.storage.generate_upload_url()")
    return grant


def file_signature(secret: bytes, storage_id: str) -> str:
    """The download URL's signature for a stored file (the same every time)."""
    mac = hmac.new(secret, _FILE + storage_id.encode(), hashlib.sha256).digest()
    return _b64(mac[:SIGNATURE_BYTES])


def check_file_signature(secret: bytes, storage_id: str, signature: str) -> bool:
    return hmac.compare_digest(file_signature(secret, storage_id).encode(),
                               signature.encode(errors="replace"))


def check_content_type(value: str | None, allowed: tuple[str, ...]) -> str | None:
    """The Content-Type to store (None when the client sent none), after checking it is a
    well-formed media type that `allowed` patterns (empty: any) admit."""
    if value is None or value.strip() == "":
        if allowed:
            raise UnsupportedContentType(
                f"a Content-Type header is required; allowed: {', '.join(allowed)}")
        return None
    value = value.strip()
    match = MEDIA_TYPE.fullmatch(value)
    control = any(ord(c) < 32 or ord(c) == 127 for c in value)  # it is sent back as a header
    if len(value) > MAX_CONTENT_TYPE_CHARS or match is None or control:
        shown = value[:60] + ("..." if len(value) > 60 else "")
        raise UnsupportedContentType(f"Content-Type {shown!r} is not a media type like "
                                     "'image/png' (at most 255 characters)")
    essence = f"{match.group(1)}/{match.group(2)}".lower()
    if allowed and not any(fnmatch.fnmatchcase(essence, p.lower()) for p in allowed):
        raise UnsupportedContentType(f"Content-Type {essence!r} is not accepted here; "
                                     f"allowed: {', '.join(allowed)}")
    return value


def check_pattern(pattern: str) -> str:
    """A content-type pattern as `FileLimits.content_types` and upload URLs take them."""
    if not isinstance(pattern, str) or not re.fullmatch(rf"{_TOKEN}/{_TOKEN}", pattern):
        raise ValidationError(f"content type pattern {pattern!r} is not like 'image/png', "
                              "'image/*' or '*/*'")
    return pattern


def parse_digest(header: str | None) -> bytes | None:
    """The SHA-256 a `Digest: sha-256=<base64>` header announces (other digests ignored)."""
    if not header:
        return None
    for part in header.split(","):
        algorithm, _, value = part.strip().partition("=")
        if algorithm.strip().lower() == "sha-256":
            try:
                digest = base64.b64decode(value.strip(), validate=True)
            except binascii.Error:
                digest = b""
            if len(digest) != hashlib.sha256().digest_size:
                raise DigestMismatch("the Digest header's sha-256 value is not base64 of "
                                     "32 bytes")
            return digest
    return None
