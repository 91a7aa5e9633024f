"""Identity providers of the bundled app, from the environment (none by default).

Set AUTH_ISSUER (and AUTH_JWKS, AUTH_AUDIENCE when the issuer's OpenID discovery does not
apply) to require signed-in users: then only a session's owner (its userId is the token's
subject) may read it or write to it.
"""

import os

providers = (
    [{"issuer": os.environ["AUTH_ISSUER"], "jwks": os.environ.get("AUTH_JWKS"),
      "audience": os.environ.get("AUTH_AUDIENCE")}]
    if os.environ.get("AUTH_ISSUER") else []
)
