"""Who is calling: JWT/OIDC identities verified against the app's providers, and the admin key.

Providers come from `functions/auth_config.py`:
`providers = [{"issuer": ..., "jwks": "https://... or file://...", "audience": ...}]`
(`jwks` may be left out: it is discovered from the issuer's OpenID configuration). Only
asymmetric algorithms are accepted (RS*, PS*, ES*, EdDSA), each only with a key of its own
type, so `alg: none` and HS256-signed-with-the-public-key tokens are refused.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import jwt

from reactive_store.errors import ReactiveStoreError

log = logging.getLogger(__name__)

MAX_TOKEN_BYTES = 16 * 1024
JWKS_REFRESH_SECONDS = 10.0  # at most one refetch per provider this often (unknown kid)
LEEWAY_SECONDS = 5
_ALGORITHMS = {"RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
               "EC": ("ES256", "ES384", "ES512"), "OKP": ("EdDSA",)}
_CLAIMS = ("name", "given_name", "family_name", "nickname", "preferred_username", "email",
           "email_verified", "phone_number", "phone_number_verified", "picture", "updated_at",
           "gender", "birthday", "timezone", "language", "address")

Identity = dict[str, Any]


class AuthError(ReactiveStoreError):
    """A token or key that is refused; the message says why (never who else exists)."""

    code = "Unauthenticated"


@dataclass
class Provider:
    issuer: str
    audience: str | None
    jwks: str | None
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _url_allowed(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme in ("https", "file"):
        return True
    return parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost", "::1")


def parse_providers(raw: Any) -> list[Provider]:
    """`providers` from auth_config.py, checked; ValueError names the bad entry."""
    if not isinstance(raw, list):
        raise ValueError("auth_config.providers must be a list of {issuer, jwks?, audience?}")
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("issuer"), str):
            raise ValueError(f"auth_config.providers[{i}]: needs an 'issuer' string")
        jwks, audience = entry.get("jwks"), entry.get("audience")
        for name, value in (("jwks", jwks), ("audience", audience)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"auth_config.providers[{i}].{name} must be a string")
        if jwks is not None and not _url_allowed(jwks):
            raise ValueError(f"auth_config.providers[{i}].jwks must be an https:// or file:// "
                             f"URL, got {jwks!r}")
        out.append(Provider(entry["issuer"].rstrip("/"), audience, jwks))
    return out


class Authenticator:
    """Verifies user tokens and the admin key. One per deployment; JWKS are cached."""

    def __init__(self, providers: list[Provider], admin_key: str | None) -> None:
        self.providers = {p.issuer: p for p in providers}
        self.admin_key = admin_key

    def is_admin_key(self, key: str) -> bool:
        """Constant-time comparison, so response timing reveals nothing about the key."""
        if not self.admin_key:
            return False
        return hmac.compare_digest(key.encode(), self.admin_key.encode())

    async def caller(self, kind: str, value: str | None, acting_as: Identity | None = None
                     ) -> Caller:
        """Who a credential names: `kind` "None" (anonymous), "User" (a token to verify) or
        "Admin" (the admin key, optionally acting as an identity); AuthError if refused."""
        if kind == "None":
            return Caller()
        if kind == "User" and value:
            return Caller(await self.verify(value))
        if kind == "Admin":
            if not self.is_admin_key(value or ""):
                raise AuthError("the admin key is not valid")
            return Caller(acting_as, admin=True)
        raise AuthError(f"cannot authenticate with a {kind!r} credential")

    async def caller_from_header(self, header: str | None) -> Caller:
        """The caller an HTTP `Authorization` header names (none: anonymous)."""
        if not header:
            return Caller()
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value:
            return await self.caller("User", value.strip())
        if scheme == "Convex" and value:
            key = value.strip().partition(":")[0]
            if not self.is_admin_key(key):  # before parsing anything the caller sent
                raise AuthError("the admin key is not valid")
            return await self.caller("Admin", key, parse_admin_header(value.strip())[1])
        raise AuthError("Authorization must be 'Bearer <token>' or 'Convex <admin key>'")

    async def verify(self, token: str) -> Identity:
        """The identity a token proves, or AuthError saying why it is refused."""
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthError(f"token is larger than {MAX_TOKEN_BYTES} bytes")
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed token: {exc}") from None
        issuer = str(claims.get("iss", "")).rstrip("/")
        provider = self.providers.get(issuer)
        if provider is None:
            raise AuthError(f"no auth provider is configured for issuer {issuer!r}")
        kid = header.get("kid")
        key = await self._key(provider, kid)
        algorithm = header.get("alg")
        if algorithm not in _ALGORITHMS.get(str(key.key_type), ()):
            raise AuthError(f"algorithm {algorithm!r} is not accepted for a {key.key_type} key")
        try:
            verified = jwt.decode(
                token, key.key, algorithms=[algorithm], issuer=claims.get("iss"),
                audience=provider.audience,
                options={"require": ["exp", "iss", "sub"], "verify_aud": bool(provider.audience)},
                leeway=LEEWAY_SECONDS)
        except jwt.ExpiredSignatureError:
            raise AuthError("token has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise AuthError(f"token is not for this audience ({provider.audience!r})") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"token refused: {exc}") from None
        identity: Identity = {"subject": str(verified["sub"]), "issuer": issuer,
                              "tokenIdentifier": f"{issuer}|{verified['sub']}"}
        identity |= {k: verified[k] for k in _CLAIMS if k in verified}
        return identity

    async def _key(self, provider: Provider, kid: Any) -> jwt.PyJWK:
        async with provider.lock:
            if not provider.keys:
                await self._fetch(provider)
            key = self._pick(provider, kid)
            if key is None and time.monotonic() - provider.fetched_at > JWKS_REFRESH_SECONDS:
                await self._fetch(provider)  # keys rotate: refetch on an unknown key id
                key = self._pick(provider, kid)
        if key is None:
            raise AuthError(f"no key {kid!r} in the JWKS of {provider.issuer!r}")
        return key

    @staticmethod
    def _pick(provider: Provider, kid: Any) -> jwt.PyJWK | None:
        if kid is None and len(provider.keys) == 1:
            return next(iter(provider.keys.values()))
        return provider.keys.get(kid) if isinstance(kid, str) else None

    async def _fetch(self, provider: Provider) -> None:
        provider.fetched_at = time.monotonic()
        try:
            url = provider.jwks or await self._discover(provider.issuer)
            document = await _get_json(url)
            keys = {}
            for entry in document.get("keys", []):
                try:
                    key = jwt.PyJWK(entry)
                except jwt.PyJWTError:
                    continue  # a key type or use we do not verify with
                keys[entry.get("kid") or ""] = key
        except (OSError, httpx.HTTPError, ValueError) as exc:
            log.error("fetching the JWKS of %s failed: %s", provider.issuer, exc)
            raise AuthError(f"cannot fetch the signing keys of {provider.issuer!r}") from None
        provider.keys = keys

    @staticmethod
    async def _discover(issuer: str) -> str:
        document = await _get_json(issuer + "/.well-known/openid-configuration")
        url = document.get("jwks_uri")
        if not isinstance(url, str) or not _url_allowed(url):
            raise ValueError(f"{issuer} publishes no usable jwks_uri")
        return url


async def _get_json(url: str) -> dict[str, Any]:
    if url.startswith("file://"):
        path = Path(urlparse(url).path)
        text = await asyncio.to_thread(path.read_text)
        loaded: dict[str, Any] = json.loads(text)
        return loaded
    if not _url_allowed(url):
        raise ValueError(f"refusing to fetch {url!r}: use https")
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
        response = await client.get(url)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: an identity (or None) and whether it holds the admin key."""

    identity: Identity | None = None
    admin: bool = False


def parse_admin_header(value: str) -> tuple[str, Identity | None]:
    """`<key>` or `<key>:<base64 JSON identity>` (the part after `Convex `)."""
    import base64

    key, _, acting = value.partition(":")
    if not acting:
        return key, None
    try:
        identity = json.loads(base64.b64decode(acting + "=" * (-len(acting) % 4)))
    except (ValueError, RecursionError):
        raise AuthError("the identity after the admin key is not base64 JSON") from None
    if not isinstance(identity, dict):
        raise AuthError("the identity after the admin key must be a JSON object")
    return key, identity
