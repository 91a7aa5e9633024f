"""CORS per deployment: `dev` allows any origin, `serve` none unless configured; preflights
and actual requests on the function API, app HTTP routes and file routes; the sync socket's
Origin check."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from reactive_store.cli import build_parser, settings_from
from reactive_store.server import create_app
from reactive_store.server.cors import normalize_origin, parse_origins, websocket_origin_allowed
from tests.support import ACCOUNTS_APP

ALLOWED = "https://app.example.test"
OTHER = "https://evil.example.test"

HTTP_ROUTES = """
from starlette.responses import JSONResponse
from reactive_store import HttpRouter

http = HttpRouter()

@http.route("/hello", method="POST")
async def hello(ctx, request):
    return JSONResponse({"hello": True})
"""

APP = {**ACCOUNTS_APP, "functions/http.py": HTTP_ROUTES}
Client = Callable[[tuple[str, ...]], Any]


@pytest.fixture
async def client_for(make_app: Any, deploy: Any) -> AsyncIterator[Client]:
    """An in-process client of the app whose deployment allows `origins`."""
    engine = await deploy(make_app(APP))
    clients: list[httpx.AsyncClient] = []

    def make(origins: tuple[str, ...]) -> httpx.AsyncClient:
        engine.deployment.settings.cors_origins = origins
        app = create_app(engine.deployment, manage_lifespan=False)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                   base_url="http://test")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def preflight(origin: str) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization"}


# -- where the origins come from ---------------------------------------------------------

def test_dev_allows_any_origin_and_serve_none_by_default(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("REACTIVE_STORE_CORS_ORIGINS", raising=False)
    parse = build_parser().parse_args
    assert settings_from(parse(["dev", "--app", str(tmp_path)])).cors_origins == ("*",)
    assert settings_from(parse(["serve", "--app", str(tmp_path)])).cors_origins == ()
    assert settings_from(parse(["run", "x:y", "--app", str(tmp_path)])).cors_origins == ()


def test_options_and_the_environment_configure_origins(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    parse = build_parser().parse_args
    monkeypatch.setenv("REACTIVE_STORE_CORS_ORIGINS", f"{ALLOWED}, http://localhost:5173/")
    for command in ("serve", "dev"):
        settings = settings_from(parse([command, "--app", str(tmp_path)]))
        assert settings.cors_origins == (ALLOWED, "http://localhost:5173")
    # Options win over the variable, and may repeat.
    settings = settings_from(parse(["serve", "--app", str(tmp_path), "--cors-origin", OTHER,
                                    "--cors-origin", "HTTPS://App.Example.Test:8443"]))
    assert settings.cors_origins == (OTHER, "https://app.example.test:8443")


@pytest.mark.parametrize(("bad", "why"), [
    ("app.example.test", "must look like"), ("ftp://x.test", "must look like"),
    ("https://x.test/path", "without a path"), ("https://u:p@x.test", "credentials"),
    ("https://x.test:99999", "not a URL"),
])
def test_a_malformed_origin_is_refused_naming_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bad: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        normalize_origin(bad)
    with pytest.raises(SystemExit, match=f"--cors-origin: CORS origin '{bad}'"):
        settings_from(build_parser().parse_args(["serve", "--app", str(tmp_path),
                                                 "--cors-origin", bad]))
    monkeypatch.setenv("REACTIVE_STORE_CORS_ORIGINS", bad)
    with pytest.raises(SystemExit, match=r"\$REACTIVE_STORE_CORS_ORIGINS"):
        settings_from(build_parser().parse_args(["serve", "--app", str(tmp_path)]))


def test_parse_origins_keeps_order_and_drops_duplicates() -> None:
    assert parse_origins(["https://b.test,https://a.test", "https://B.test/", " "]) == (
        "https://b.test", "https://a.test")


# -- HTTP ---------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/api/query", "/api/mutation", "/hello",
                                 "/api/storage/upload", "/api/query_at_ts"])
async def test_a_configured_origin_is_allowed_and_another_refused(
        client_for: Client, url: str) -> None:
    client = client_for((ALLOWED,))
    ok = await client.options(url, headers=preflight(ALLOWED))
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == ALLOWED
    assert ok.headers["access-control-allow-credentials"] == "true"
    assert "POST" in ok.headers["access-control-allow-methods"]
    refused = await client.options(url, headers=preflight(OTHER))
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers


async def test_actual_requests_carry_cors_headers_only_for_allowed_origins(
        client_for: Client) -> None:
    client = client_for((ALLOWED,))
    body = {"path": "accounts:total", "args": {}}
    allowed = await client.post("/api/query", json=body, headers={"Origin": ALLOWED})
    assert allowed.status_code == 200 and allowed.json()["status"] == "success"
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    # The server still answers (CORS is enforced by the browser), without the header a
    # browser needs to hand the response to the page.
    other = await client.post("/api/query", json=body, headers={"Origin": OTHER})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
    route = await client.post("/hello", headers={"Origin": ALLOWED})
    assert route.json() == {"hello": True}
    assert route.headers["access-control-allow-origin"] == ALLOWED
    download = await client.get("/api/storage/nope/bad", headers={"Origin": ALLOWED})
    assert download.headers["access-control-allow-origin"] == ALLOWED


async def test_no_origin_configured_refuses_every_cross_origin_preflight(
        client_for: Client) -> None:
    client = client_for(())
    refused = await client.options("/api/query", headers=preflight(ALLOWED))
    assert refused.status_code == 400
    response = await client.post("/api/query", json={"path": "accounts:total", "args": {}},
                                 headers={"Origin": ALLOWED})
    assert "access-control-allow-origin" not in response.headers
    # Requests without an Origin (same-origin GETs, curl, servers) are unaffected.
    assert (await client.post("/api/query", json={"path": "accounts:total",
                                                  "args": {}})).status_code == 200


async def test_any_origin_mirrors_whatever_origin_asks(client_for: Client) -> None:
    client = client_for(("*",))
    for origin in (ALLOWED, OTHER, "http://localhost:5173"):
        response = await client.options("/api/query", headers=preflight(origin))
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin


# -- the sync socket ------------------------------------------------------------------------

def test_websocket_origin_rules() -> None:
    assert websocket_origin_allowed((), None, "h:1")  # not a browser
    assert websocket_origin_allowed(("*",), OTHER, "h:1")
    assert websocket_origin_allowed((ALLOWED,), ALLOWED, "h:1")
    assert not websocket_origin_allowed((ALLOWED,), OTHER, "h:1")
    assert websocket_origin_allowed((), "http://h:1", "H:1")  # same origin
    assert not websocket_origin_allowed((), "http://h:2", "h:1")
    assert not websocket_origin_allowed((ALLOWED,), "null", "h:1")
    assert not websocket_origin_allowed((), "http://h:1", None)


async def _handshake(url: str, origin: str | None) -> bool:
    """Did a sync socket open (and answer a Connect) with this Origin header?"""
    ws_url = url.replace("http", "ws") + "/api/sync"
    try:
        async with websockets.connect(ws_url, origin=origin) as ws:  # type: ignore[arg-type]
            await ws.send('{"type": "Connect", "sessionId": "s", "connectionCount": 0, '
                          '"lastCloseReason": null, "clientTs": 0}')
            return True
    except websockets.InvalidStatus as exc:
        assert exc.response.status_code == 403
        return False


async def test_the_sync_socket_honours_the_configured_origins(
        make_app: Any, serve: Any) -> None:
    url, _ = await serve(make_app(ACCOUNTS_APP), cors_origins=(ALLOWED,))
    assert await _handshake(url, ALLOWED)
    assert not await _handshake(url, OTHER)
    assert await _handshake(url, None)  # a client outside a browser
    assert await _handshake(url, url)  # a page this server served (same origin)


async def test_the_sync_socket_of_a_default_serve_takes_same_origin_pages_only(
        make_app: Any, serve: Any) -> None:
    url, _ = await serve(make_app(ACCOUNTS_APP))
    assert await _handshake(url, url)
    assert not await _handshake(url, ALLOWED)
