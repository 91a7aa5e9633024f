"""Answers for the Convex CLI endpoints a Python deployment cannot serve: pushing JavaScript
functions (`npx convex deploy`, `npx convex dev`) and running a one-off JavaScript query
(`npx convex run --inline-query`).

Each answers 403 with `{"code": "NotSupported", "message": ...}` at once. The CLI retries a
404 six times (over half a minute) and, for `convex dev`, waits for file changes after a
400; a 403 is fatal to it, and it prints just our message. Every endpoint says what to do
instead, so the user is never left with a retry loop or a bare "Not Found".
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from reactive_store.server.function_api import JSONResponse

CODE = "NotSupported"
PUSH = ("reactive-store does not take pushed JavaScript functions, so `npx convex deploy` "
        "and `npx convex dev` cannot push to it. Its functions are the Python modules of "
        "the app folder: restart `reactive-store serve --app <folder>` to deploy them, or "
        "run `reactive-store dev --app <folder>` to reload on every edit.")
INLINE_QUERY = ("reactive-store cannot run a one-off JavaScript query (`npx convex run "
                "--inline-query`): write it as a query in the app folder and call it with "
                "`npx convex run <module>:<name>`.")
# The CLI's push protocol: the config hashes first, then the `deploy2` steps.
PUSH_PATHS = (
    "/api/get_config_hashes", "/api/push_config", "/api/deploy2/start_push",
    "/api/deploy2/evaluate_push", "/api/deploy2/evaluate_schema",
    "/api/deploy2/wait_for_schema", "/api/deploy2/finish_push",
    "/api/deploy2/report_push_completed",
)


def refusal(message: str) -> Response:
    return JSONResponse({"code": CODE, "message": message}, status_code=403)


async def refuse_push(request: Request) -> Response:
    return refusal(PUSH)


async def refuse_inline_query(request: Request) -> Response:
    return refusal(INLINE_QUERY)


def unsupported_routes() -> list[BaseRoute]:
    """The routes that refuse, each for POST (what the CLI sends) and GET."""
    methods = ["GET", "POST"]
    routes: list[BaseRoute] = [Route(path, refuse_push, methods=methods)
                               for path in PUSH_PATHS]
    routes.append(Route("/api/run_test_function", refuse_inline_query, methods=methods))
    return routes
