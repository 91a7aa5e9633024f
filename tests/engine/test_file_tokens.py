"""Upload tokens and download signatures (no I/O): what they carry, what they refuse, and the
rules for content types and Digest headers."""

from __future__ import annotations

import base64
import hashlib

import pytest

from reactive_store.engine.file_tokens import (
    UploadGrant,
    check_content_type,
    check_file_signature,
    check_pattern,
    file_signature,
    open_upload,
    parse_digest,
    sign_upload,
)
from reactive_store.errors import (
    DigestMismatch,
    InvalidUploadUrl,
    UnsupportedContentType,
    UploadUrlExpired,
    ValidationError,
)

SECRET = b"s" * 32
NOW = 1_700_000_000_000.0


def test_a_token_round_trips_its_grant() -> None:
    grant = UploadGrant.new(NOW + 1000, 500, ("image/*",))
    assert open_upload(SECRET, sign_upload(SECRET, grant), NOW) == grant
    plain = UploadGrant.new(NOW + 1000)
    assert open_upload(SECRET, sign_upload(SECRET, plain), NOW) == plain
    assert UploadGrant.new(NOW).nonce != UploadGrant.new(NOW).nonce


def test_tokens_are_refused_when_missing_malformed_forged_or_expired() -> None:
    token = sign_upload(SECRET, UploadGrant.new(NOW + 1000))
    for bad in (None, "", "no-dot", "a.b.c", "!!!.???"):
        with pytest.raises(InvalidUploadUrl):
            open_upload(SECRET, bad, NOW)
    with pytest.raises(InvalidUploadUrl, match="not issued by this deployment"):
        open_upload(b"o" * 32, token, NOW)
    mac = token.split(".")[1]
    forged = base64.urlsafe_b64encode(b'{"n":"x","e":9e99}').rstrip(b"=").decode()
    with pytest.raises(InvalidUploadUrl, match="not issued"):
        open_upload(SECRET, f"{forged}.{mac}", NOW)
    with pytest.raises(UploadUrlExpired):
        open_upload(SECRET, token, NOW + 1000)


def test_download_signatures_are_per_file_and_per_deployment() -> None:
    one = file_signature(SECRET, "id-one")
    assert one == file_signature(SECRET, "id-one") and len(one) == 22
    assert check_file_signature(SECRET, "id-one", one)
    assert not check_file_signature(SECRET, "id-two", one)
    assert not check_file_signature(b"o" * 32, "id-one", one)
    assert not check_file_signature(SECRET, "id-one", "é" * 22)
    upload_mac = sign_upload(SECRET, UploadGrant("id-one", 0.0)).split(".")[1]
    assert upload_mac[:22] != one, "the two kinds of signature never coincide"


@pytest.mark.parametrize(("value", "allowed", "stored"), [
    (None, (), None),
    ("  ", (), None),
    ("image/png", (), "image/png"),
    ("text/plain; charset=utf-8", ("text/*",), "text/plain; charset=utf-8"),
    ("IMAGE/PNG", ("image/png",), "IMAGE/PNG"),
    ("application/vnd.api+json", ("*/*",), "application/vnd.api+json"),
])
def test_accepted_content_types(value: str | None, allowed: tuple[str, ...],
                                stored: str | None) -> None:
    assert check_content_type(value, allowed) == stored


@pytest.mark.parametrize(("value", "allowed", "message"), [
    ("png", (), "is not a media type"),
    ("image/", (), "is not a media type"),
    ("image/png\nX: y", (), "is not a media type"),
    ("text/plain; a=b\r\nSet-Cookie: x", (), "is not a media type"),
    ("a/" + "b" * 300, (), "at most 255 characters"),
    ("text/html", ("image/*",), "'text/html' is not accepted here; allowed: image/*"),
    (None, ("image/*",), "a Content-Type header is required"),
])
def test_refused_content_types(value: str | None, allowed: tuple[str, ...],
                               message: str) -> None:
    with pytest.raises(UnsupportedContentType, match=message.replace("*", r"\*")):
        check_content_type(value, allowed)


def test_patterns() -> None:
    for pattern in ("image/*", "*/*", "application/pdf"):
        assert check_pattern(pattern) == pattern
    for bad in ("image", "image/png/x", "", "im age/png"):
        with pytest.raises(ValidationError, match="is not like"):
            check_pattern(bad)


def test_digest_headers() -> None:
    digest = hashlib.sha256(b"x").digest()
    encoded = base64.b64encode(digest).decode()
    assert parse_digest(None) is None and parse_digest("") is None
    assert parse_digest(f"sha-256={encoded}") == digest
    assert parse_digest(f"md5=abc, SHA-256={encoded}") == digest
    assert parse_digest("md5=abc") is None
    with pytest.raises(DigestMismatch, match="not base64 of 32 bytes"):
        parse_digest("sha-256=" + base64.b64encode(b"short").decode())
    with pytest.raises(DigestMismatch):
        parse_digest("sha-256=***")
