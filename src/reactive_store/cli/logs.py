"""`reactive-store logs`: tail a running server's function executions."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from reactive_store.observe.terminal import Show, format_entry


def tail_logs(ns: argparse.Namespace) -> int:
    """Poll `/api/stream_function_logs` and print each execution until interrupted."""
    import time

    import httpx

    if not ns.admin_key:
        print("error: the logs need the admin key: --admin-key or $REACTIVE_STORE_ADMIN_KEY",
              file=sys.stderr)
        return 1
    both = ns.success == ns.failure
    show = Show(successes=ns.success or both, failures=ns.failure or both,
                completions=ns.success, color=sys.stdout.isatty())
    params: dict[str, Any] = {"cursor": 0, "wait": 0}
    if ns.function:
        params["function"] = ns.function
    if not both:
        params["status"] = "success" if ns.success else "failure"
    headers = {"Authorization": f"Convex {ns.admin_key}"}
    first, failures = True, 0
    with httpx.Client(base_url=ns.url.rstrip("/"), headers=headers, timeout=40) as http:
        while True:
            try:
                response = http.get("/api/stream_function_logs", params=params)
            except httpx.HTTPError as exc:
                failures += 1
                if failures > 3:
                    print(f"warning: cannot reach {ns.url} ({exc}); retrying", file=sys.stderr)
                time.sleep(min(10.0, 0.25 * 2 ** failures))
                continue
            if response.status_code != 200:
                print(f"error: {ns.url} answered {response.status_code}: {response.text}",
                      file=sys.stderr)
                return 1
            failures = 0
            body = response.json()
            if first:
                print(f"Watching logs of {ns.url} ...", file=sys.stderr, flush=True)
            entries = body["entries"][-ns.history:] if first else body["entries"]
            if not first or ns.history > 0:
                _print_entries(entries, show, ns.jsonl)
            first = False
            params |= {"cursor": body["newCursor"], "wait": 10}


def _print_entries(entries: list[dict[str, Any]], show: Show, jsonl: bool) -> None:
    for entry in entries:
        if jsonl:
            print(orjson.dumps(entry).decode())
        else:
            for line in format_entry(entry, show):
                print(line)
    sys.stdout.flush()
