"""The official Convex browser client at `/_convex/`, for the chat UI and the dashboard.

`scripts/setup` installs npm `convex` (pinned in `web/package-lock.json`) and copies its
browser bundle (`dist/browser.bundle.js`, one classic script defining the global `convex`)
and its LICENSE into `reactive_store/static/convex/`, so the file ships with the package
(wheels included) and every page of every deployment loads the same pinned client without a
bundler. A deployment without it answers 404 with what to run, and logs it once.
"""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

log = logging.getLogger(__name__)

DIRECTORY = Path(__file__).resolve().parents[1] / "static" / "convex"
PATH = "/_convex/{name}"
FILES = {"browser.bundle.js": "text/javascript; charset=utf-8",
         "LICENSE": "text/plain; charset=utf-8"}
HEADERS = {"x-content-type-options": "nosniff", "cache-control": "no-cache"}
MISSING = ("the official Convex client is not installed in this server: run scripts/setup "
           "(it needs npm) or reinstall a reactive-store built with it")


class ClientBundle:
    """Serves the files in FILES from `directory`; anything else under /_convex/ is a 404."""

    def __init__(self, directory: Path = DIRECTORY) -> None:
        self.directory = directory
        self.warned = False

    async def serve(self, request: Request) -> Response:
        name = request.path_params["name"]
        media_type = FILES.get(name)
        if media_type is None:
            return PlainTextResponse("Not Found", status_code=404)
        path = self.directory / name
        if not path.is_file():
            if not self.warned:
                self.warned = True
                log.warning("%s (looked for %s)", MISSING, path)
            return PlainTextResponse(MISSING, status_code=404)
        return FileResponse(path, media_type=media_type, headers=HEADERS)
