"""Stored webhooks: every delivery is stored first, then processed by a scheduled internal
mutation that links work orders to the PRs, issues and commits it mentions; failures are
retried by a cron with exponential backoff (see http.py and crons.py)."""

import re

from reactive_store import internal_mutation, mutation, query, v

MAX_ATTEMPTS = 5
BACKOFF_MS = 30_000
WORK_ORDER = re.compile(r"work[-_ ]?order[:#\s]+([0-9a-z]{20,40})", re.IGNORECASE)


@internal_mutation(args={"source": v.string(), "event": v.string(), "deliveryId": v.string(),
                         "payload": v.any()})
async def store(ctx, source, event, deliveryId, payload):
    """Store a delivery (once per deliveryId) and schedule its processing. Returns its id."""
    same = await ctx.db.query("webhook_events").with_index(
        "by_delivery", lambda r: r.eq("deliveryId", deliveryId)).first()
    if same is not None:
        return same["_id"]
    event_id = await ctx.db.insert("webhook_events", {
        "source": source, "event": event, "deliveryId": deliveryId, "payload": payload,
        "receivedAt": ctx.now(), "status": "received", "attempts": 0.0})
    await ctx.scheduler.run_after(0, process, {"eventId": event_id})
    return event_id


def _mentions(event, payload):
    """(kind, value, text) for each PR, issue or commit a GitHub payload carries."""
    if not isinstance(payload, dict):
        raise ValueError("payload is not a JSON object")
    if event == "pull_request":
        pr = payload["pull_request"]
        yield "pr", pr["html_url"], f"{pr.get('title', '')}\n{pr.get('body') or ''}"
    elif event == "issues":
        issue = payload["issue"]
        yield ("github_issue", issue["html_url"],
               f"{issue.get('title', '')}\n{issue.get('body') or ''}")
    elif event == "push":
        for commit in payload.get("commits", []):
            yield "commit", commit["id"], commit.get("message", "")


@internal_mutation(args={"eventId": v.id("webhook_events")})
async def process(ctx, eventId):
    """Link the work orders a stored delivery mentions; mark it processed, or failed with
    its error and the time of the next attempt."""
    stored = await ctx.db.get(eventId)
    if stored is None or stored["status"] == "processed":
        return
    attempts = stored["attempts"] + 1
    try:
        links = []
        for kind, value, text in _mentions(stored["event"], stored["payload"]):
            for order_id in WORK_ORDER.findall(text):
                order = ctx.db.normalize_id("work_orders", order_id)
                if order is None or await ctx.db.get(order) is None:
                    raise ValueError(f"work order {order_id} does not exist")
                links.append((order, kind, value))
    except (KeyError, TypeError, ValueError) as exc:
        await ctx.db.patch(eventId, {
            "status": "failed", "attempts": attempts, "error": f"{type(exc).__name__}: {exc}",
            "nextAttemptAt": ctx.now() + BACKOFF_MS * 2 ** (attempts - 1)})
        return
    for order, kind, value in links:
        known = await ctx.db.query("work_order_links").with_index(
            "by_order_kind", lambda r, o=order, k=kind: r.eq("workOrderId", o).eq("kind", k)
        ).filter(lambda link, val=value: link["value"] == val).first()
        if known is None:
            await ctx.db.insert("work_order_links", {"workOrderId": order, "kind": kind,
                                                     "value": value})
    await ctx.db.patch(eventId, {"status": "processed", "attempts": attempts,
                                 "processedAt": ctx.now()})


@internal_mutation(args={})
async def retryFailed(ctx):
    """Cron: schedule another attempt for failed deliveries whose backoff has passed (at
    most 5 attempts in all). Returns how many were retried."""
    due = await ctx.db.query("webhook_events").with_index(
        "by_status_next", lambda r: r.eq("status", "failed").lte("nextAttemptAt", ctx.now())
    ).take(100)
    retried = 0
    for stored in due:
        if stored["attempts"] < MAX_ATTEMPTS:
            await ctx.db.patch(stored["_id"], {"status": "received"})
            await ctx.scheduler.run_after(0, process, {"eventId": stored["_id"]})
            retried += 1
    if retried:
        print(f"retrying {retried} failed webhook deliveries")
    return retried


@mutation(args={"eventId": v.id("webhook_events")})
async def retryNow(ctx, eventId):
    """Schedule another attempt for a failed delivery right away."""
    stored = await ctx.db.get(eventId)
    if stored is not None and stored["status"] == "failed":
        await ctx.db.patch(stored["_id"], {"status": "received"})
        await ctx.scheduler.run_after(0, process, {"eventId": eventId})


@query(args={"status": v.optional(v.union(v.literal("received"), v.literal("processed"),
                                            v.literal("failed")))})
async def list(ctx, status=None):
    """Stored deliveries, newest first (at most 100), optionally only those in `status`."""
    q = ctx.db.query("webhook_events")
    if status is not None:
        q = q.with_index("by_status_next", lambda r: r.eq("status", status))
    return await q.order("desc").take(100)
