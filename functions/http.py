"""HTTP routes of the bundled app: the GitHub webhook."""

import hashlib
import hmac
import json

from starlette.responses import JSONResponse

from reactive_store import HttpRouter

http = HttpRouter()


@http.route("/webhooks/github", method="POST")
async def github(ctx, request):
    """Store a GitHub delivery, signed with GITHUB_WEBHOOK_SECRET (X-Hub-Signature-256),
    then answer at once; processing happens in a scheduled mutation.

    The secret is a deployment environment variable (`reactive-store env set
    GITHUB_WEBHOOK_SECRET ...`), never the server process's environment: it changes without
    a restart and each deployment has its own."""
    secret = ctx.env.get("GITHUB_WEBHOOK_SECRET")
    if not secret:
        return JSONResponse({"error": "GITHUB_WEBHOOK_SECRET is not configured: set it with "
                                      "`reactive-store env set GITHUB_WEBHOOK_SECRET ...`"},
                            503)
    body = await request.body()
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("x-hub-signature-256", "")):
        return JSONResponse({"error": "bad signature"}, 401)
    try:
        payload = json.loads(body)
    except ValueError:
        return JSONResponse({"error": "body is not JSON"}, 400)
    event_id = await ctx.run_mutation("webhooks:store", {
        "source": "github",
        "event": request.headers.get("x-github-event", "unknown"),
        "deliveryId": request.headers.get("x-github-delivery", "") or expected,
        "payload": payload,
    })
    return JSONResponse({"stored": event_id})
