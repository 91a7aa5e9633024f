"""How clients sign in to the bundled app, and who the caller is (public, no arguments).

The chat UI reads `auth:config` before anything else: without a provider it keeps its demo
user name; with one it signs in (a token from the provider, sent with `setAuth`) and acts as
the token's subject. `auth:whoami` is how it checks a token before keeping it.
"""

from typing import Any, NotRequired, TypedDict

from reactive_store import query

from .auth_config import login_url, providers


class AuthConfig(TypedDict):
    required: bool
    issuer: str | None
    loginUrl: str | None


class Identity(TypedDict):
    subject: str
    issuer: str
    tokenIdentifier: str
    name: NotRequired[str]
    email: NotRequired[str]


@query
async def config(ctx: Any) -> AuthConfig:
    """Whether the app requires signed-in users, and how to sign in.

    Returns: `required` (a provider is configured: every chat function acts as the token's
    subject), `issuer` (the provider's issuer URL or null) and `loginUrl` (where to send a
    person to sign in, or null: then a token from the provider is pasted).
    """
    issuer = providers[0]["issuer"] if providers else None
    return {"required": bool(providers), "issuer": issuer, "loginUrl": login_url}


@query
async def whoami(ctx: Any) -> Identity | None:
    """The caller's identity as the server verified it, or null when anonymous.

    Returns: `subject`, `issuer`, `tokenIdentifier`, and `name` / `email` when the token
    carries them.

    Errors: a refused token fails the request itself (HTTP 401 `Unauthenticated` with the
    reason), before this function runs.
    """
    identity = await ctx.auth.get_user_identity()
    if identity is None:
        return None
    found: Identity = {"subject": identity["subject"], "issuer": identity["issuer"],
                       "tokenIdentifier": identity["tokenIdentifier"]}
    if isinstance(identity.get("name"), str):
        found["name"] = identity["name"]
    if isinstance(identity.get("email"), str):
        found["email"] = identity["email"]
    return found
