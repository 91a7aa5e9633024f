"""Identity providers of the bundled app, from the environment (none by default).

Set AUTH_ISSUER (and AUTH_JWKS, AUTH_AUDIENCE when the issuer's OpenID discovery does not
apply) to require signed-in users: then only a session's owner (its userId is the token's
subject) may read it or write to it. AUTH_LOGIN_URL is where the chat UI sends people to
sign in: the provider redirects back to the page with `#id_token=<JWT>` (without it, the UI
asks for a token to paste).
"""

import os

providers = (
    [{"issuer": os.environ["AUTH_ISSUER"], "jwks": os.environ.get("AUTH_JWKS"),
      "audience": os.environ.get("AUTH_AUDIENCE")}]
    if os.environ.get("AUTH_ISSUER") else []
)
login_url = os.environ.get("AUTH_LOGIN_URL") or None
