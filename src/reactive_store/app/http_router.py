"""HTTP routes of an app (`functions/http.py`: `http = HttpRouter()`), served beside /api/.

A handler is `async def handler(ctx, request) -> Response` with the action `ctx`, and
Starlette's Request and Response types. Exact paths win over prefixes; the longest prefix
wins among prefixes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[[Any, Any], Awaitable[Any]]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")
RESERVED = ("/api/", "/version", "/_dashboard", "/_convex/", "/metrics")


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str
    prefix: bool
    handler: Handler

    @property
    def label(self) -> str:
        """How its executions are named in logs and metrics: `POST /hooks/github`."""
        return f"{self.method} {self.path}{'*' if self.prefix else ''}"


class HttpRouter:
    """The app's HTTP routes."""

    def __init__(self) -> None:
        self.routes: list[HttpRoute] = []

    def route(self, path: str | None = None, *, method: str = "GET",
              path_prefix: str | None = None) -> Callable[[Handler], Handler]:
        """Declare a route: `@http.route("/hook", method="POST")` or `path_prefix="/files/"`."""
        if (path is None) == (path_prefix is None):
            raise ValueError("http.route() takes exactly one of path or path_prefix")
        target = path if path is not None else path_prefix
        assert target is not None
        if not target.startswith("/"):
            raise ValueError(f"http.route(): {target!r} must start with '/'")
        if path_prefix is not None and not path_prefix.endswith("/"):
            raise ValueError(f"http.route(): path_prefix {path_prefix!r} must end with '/'")
        if any(target == r.rstrip("/") or target.startswith(r) for r in RESERVED):
            raise ValueError(f"http.route(): {target!r} is reserved for the server")
        verb = method.upper()
        if verb not in METHODS:
            raise ValueError(f"http.route(): unknown method {method!r}")

        def register(handler: Handler) -> Handler:
            if not callable(handler):
                raise TypeError("http.route() decorates an async function (ctx, request)")
            for existing in self.routes:
                if (existing.method, existing.path, existing.prefix) == (
                        verb, target, path_prefix is not None):
                    raise ValueError(f"http.route(): {verb} {target} is declared twice")
            self.routes.append(HttpRoute(verb, target, path_prefix is not None, handler))
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[HttpRoute | None, bool]:
        """The route for a request, and whether the path exists under another method."""
        candidates = [r for r in self.routes
                      if r.path == path or (r.prefix and path.startswith(r.path))]
        if not candidates:
            return None, False
        exact = [r for r in candidates if not r.prefix]
        ordered = exact + sorted((r for r in candidates if r.prefix),
                                 key=lambda r: len(r.path), reverse=True)
        for route in ordered:
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, True
        return None, True
