"""The official Convex client's bundle at /_convex/, and what a web/ folder does not serve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from reactive_store.server import create_app
from reactive_store.server.client_bundle import DIRECTORY, MISSING, PATH, ClientBundle
from tests.support import ACCOUNTS_APP

NPM_BUNDLE = Path(__file__).resolve().parents[2] / "web/node_modules/convex/dist/browser.bundle.js"


def bundle_app(directory: Path) -> httpx.AsyncClient:
    app = Starlette(routes=[Route(PATH, ClientBundle(directory).serve, methods=["GET", "HEAD"])])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_the_server_serves_the_pinned_npm_bundle(make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(ACCOUNTS_APP))
    app = create_app(engine.deployment, manage_lifespan=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as http:
        response = await http.get("/_convex/browser.bundle.js")
        assert response.status_code == 200, "run scripts/setup: it copies the bundle"
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.content == NPM_BUNDLE.read_bytes()
        assert b'var version = "1.48.0"' in response.content
        assert (await http.get("/_convex/LICENSE")).status_code == 200
        assert (await http.get("/_convex/package.json")).status_code == 404
    assert (DIRECTORY / "browser.bundle.js").is_file()


async def test_a_server_without_the_bundle_says_what_to_run(tmp_path: Path) -> None:
    async with bundle_app(tmp_path / "nothing-here") as http:
        response = await http.get("/_convex/browser.bundle.js")
    assert response.status_code == 404
    assert response.text == MISSING and "scripts/setup" in response.text


async def test_a_web_folder_never_serves_its_npm_tree(make_app: Any, deploy: Any) -> None:
    engine = await deploy(make_app(ACCOUNTS_APP))
    web = engine.app.root / "web"
    (web / "node_modules" / "convex").mkdir(parents=True)
    (web / "node_modules" / "convex" / "package.json").write_text("{}")
    (web / "package.json").write_text("{}")
    (web / "index.html").write_text("<h1>hello</h1>")
    app = create_app(engine.deployment, manage_lifespan=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as http:
        assert (await http.get("/")).status_code == 200
        assert (await http.get("/node_modules/convex/package.json")).status_code == 404
        assert (await http.get("/package.json")).status_code == 404
