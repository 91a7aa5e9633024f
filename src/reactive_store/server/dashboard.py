"""The dashboard at `/_dashboard`: static files served by the server itself, no build step.

The page holds no secret: it asks for the admin key and uses it only on its own WebSocket
(`Authenticate` with the admin key), and every figure it shows comes from `_system/...`
functions that only the admin key reaches. The headers keep the page out of other sites'
frames and limit it to scripts, styles and connections of this server.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC = Path(__file__).resolve().parents[1] / "static" / "dashboard"
HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
     b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
]


class DashboardFiles:
    """The page's files, each answered with the headers above."""

    def __init__(self, directory: Path = STATIC) -> None:
        self.files = StaticFiles(directory=directory, html=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.files(scope, receive, with_headers)


async def to_dashboard(request: Request) -> Response:
    """`/_dashboard` -> `/_dashboard/` (the page's relative URLs need the slash)."""
    return RedirectResponse("/_dashboard/", status_code=308)
