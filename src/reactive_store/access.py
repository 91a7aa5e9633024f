"""Small helpers for per-user access checks inside functions."""

from __future__ import annotations

from typing import Any

from reactive_store.errors import ConvexError


async def require_user(ctx: Any) -> dict[str, Any]:
    """The caller's verified identity; a ConvexError `unauthenticated` when there is none."""
    identity: dict[str, Any] | None = await ctx.auth.get_user_identity()
    if identity is None:
        raise ConvexError({"code": "unauthenticated", "message": "sign in to do this"})
    return identity


async def require_owner(ctx: Any, owner: str, what: str = "this") -> dict[str, Any]:
    """The identity, when its subject is `owner`; else a ConvexError `forbidden`."""
    identity = await require_user(ctx)
    if identity.get("subject") != owner:
        raise ConvexError({"code": "forbidden", "message": f"{what} belongs to another user"})
    return identity
