"""Which browser origins may call this deployment: the CORS middleware of the HTTP routes and
the Origin check of the sync WebSocket, both from one list (`Settings.cors_origins`)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

ANY_ORIGIN = "*"
METHODS = ["GET", "POST", "OPTIONS", "PATCH", "DELETE", "PUT"]


def normalize_origin(text: str) -> str:
    """`text` as a browser sends it in `Origin` (`scheme://host[:port]`, lower case), or
    ValueError naming what is wrong; `*` stands for any origin."""
    origin = text.strip()
    if origin == ANY_ORIGIN:
        return origin
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"CORS origin {text!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"CORS origin {text!r} must look like https://app.example.com "
                         "(http or https, a host, an optional port)")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"CORS origin {text!r} must be only scheme://host[:port], without "
                         "a path, query or credentials")
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + ("" if port is None else f":{port}")


def parse_origins(values: Iterable[str]) -> tuple[str, ...]:
    """Origins from `--cors-origin` options and comma-separated lists, normalized, in order,
    without duplicates."""
    found: dict[str, None] = {}
    for value in values:
        for part in value.split(","):
            if part.strip():
                found[normalize_origin(part)] = None
    return tuple(found)


def cors_middleware(origins: tuple[str, ...]) -> Middleware:
    """CORS for the HTTP routes: the request's origin is mirrored back (credentials allowed,
    as Convex does) when it is listed, or for any origin when `*` is; preflights from other
    origins are refused (400) and their actual requests get no CORS headers, so a browser
    does not hand the response to the page."""
    if ANY_ORIGIN in origins:
        return Middleware(CORSMiddleware, allow_origin_regex=".*", allow_credentials=True,
                          allow_methods=METHODS, allow_headers=["*"])
    return Middleware(CORSMiddleware, allow_origins=list(origins), allow_credentials=True,
                      allow_methods=METHODS, allow_headers=["*"])


def websocket_origin_allowed(origins: tuple[str, ...], origin: str | None,
                             host: str | None) -> bool:
    """May a WebSocket handshake with this `Origin` (and `Host`) header go on?

    Browsers do not apply CORS to WebSockets, so the endpoint checks the origin itself.
    Clients outside a browser send no Origin and are not what CORS restricts; a page served
    by this server (the dashboard, the app's own web/ folder) is same-origin and always
    allowed."""
    if origin is None or ANY_ORIGIN in origins:
        return True
    try:
        normalized = normalize_origin(origin)
    except ValueError:
        return False
    if normalized in origins:
        return True
    return host is not None and urlsplit(normalized).netloc == host.strip().lower()
