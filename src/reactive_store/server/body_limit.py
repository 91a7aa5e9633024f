"""Refuse HTTP request bodies over the configured size with 413, without reading the rest."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    """Raised from `receive` once a body passes the limit; turned into a 413 below."""


class BodyLimit:
    """ASGI middleware: a declared `Content-Length` over the limit is refused before any
    byte is read; a streamed (chunked) body is counted as it arrives and refused as soon as
    it passes the limit. Every route is covered, the app's own HTTP routes included, except
    the `exempt` paths, whose endpoints stream the body and enforce their own limit (file
    uploads: `FileLimits.max_upload_bytes`)."""

    def __init__(self, app: ASGIApp, max_bytes: int, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_bytes <= 0 or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared_over(declared, self.max_bytes):
            await refusal(send, self.max_bytes)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge()
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await refusal(send, self.max_bytes)


def declared_over(content_length: bytes | None, max_bytes: int) -> bool:
    """Whether a request's `Content-Length` header declares more than `max_bytes` (a limit
    of 0 or less is none)."""
    return (max_bytes > 0 and content_length is not None and content_length.isdigit()
            and int(content_length) > max_bytes)


async def refusal(send: Send, max_bytes: int) -> None:
    """Answer 413 and close the connection (the rest of the body is never read)."""
    body = orjson.dumps({"code": "PayloadTooLarge", "message": (
        f"request body is larger than the limit of {max_bytes} bytes")})
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
