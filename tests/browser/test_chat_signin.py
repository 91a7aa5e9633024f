"""The chat UI runs on the official Convex client, and signs in through the app's provider.

Without a provider the page keeps its demo user name; with one (AUTH_ISSUER, AUTH_JWKS,
AUTH_AUDIENCE, AUTH_LOGIN_URL, as functions/auth_config.py reads them) it shows a sign-in
page. "Sign in with the provider" goes to the provider's login page and comes back with
`#id_token=...&state=...`: the provider here is `scripts/dev_login.py` in a process of its
own (found by OpenID discovery, as a real issuer is). Or a token is pasted (the tests'
`Keys` provider signs those). The signed-in user acts as the token's subject and nobody
else; a bad token is refused with the server's reason.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import REPO
from tests.e2e.servers import server_pool
from tests.support import AUDIENCE, ISSUER, Keys, free_port, until

pytestmark = pytest.mark.e2e

TIMEOUT = 10_000
BUNDLE = REPO / "web" / "node_modules" / "convex" / "dist" / "browser.bundle.js"
DEV_LOGIN = REPO / "scripts" / "dev_login.py"


class DevLogin:
    """`scripts/dev_login.py` on a free port, its key in a temporary folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self, *args: str) -> list[str]:
        return [sys.executable, str(DEV_LOGIN), *args, "--port", str(self.port),
                "--dir", str(self.folder)]

    async def start(self) -> None:
        self.proc = subprocess.Popen(self.command("serve"), stdout=subprocess.DEVNULL)

        async def up() -> bool:
            async with httpx.AsyncClient() as http:
                try:
                    return (await http.get(f"{self.url}/jwks.json")).status_code == 200
                except httpx.TransportError:
                    return False

        await until(up)

    def token(self, name: str) -> str:
        """A token from the provider's command line, as a person would paste it."""
        return subprocess.run(self.command("token", name), check=True, capture_output=True,
                              text=True).stdout.strip()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)


@pytest.fixture
async def dev_login(tmp_path: Path) -> AsyncIterator[DevLogin]:
    provider = DevLogin(tmp_path / "dev-login")
    await provider.start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture
async def serve_with(database_url: str, monkeypatch: pytest.MonkeyPatch,
                     tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    """`await serve_with(AUTH_ISSUER=..., ...)`: the repo's app served with that provider."""
    async with server_pool(database_url, tmp_path_factory.mktemp("server-logs")) as pool:
        async def start(**env: str) -> str:
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            return await pool(REPO)

        yield start


@pytest.fixture
async def keys_app_url(serve_with: Any, keys: Keys) -> str:
    """The repo's app with the tests' `Keys` provider, and no login URL: tokens are pasted."""
    return str(await serve_with(AUTH_ISSUER=ISSUER, AUTH_JWKS=f"file://{keys.path}",
                                AUTH_AUDIENCE=AUDIENCE))


def watch_errors(page: Page, name: str, errors: list[str]) -> None:
    page.on("pageerror", lambda exc: errors.append(f"{name}: uncaught {exc}"))
    page.on("console", lambda msg: errors.append(f"{name}: {msg.text}")
            if msg.type == "error" else None)


async def test_the_page_runs_on_the_official_client(app_url: str, browser: Any) -> None:
    expect.set_options(timeout=TIMEOUT)
    page = await (await browser.new_context()).new_page()
    requests: list[str] = []
    sockets: list[str] = []
    page.on("request", lambda request: requests.append(urlparse(request.url).path))
    page.on("websocket", lambda ws: sockets.append(urlparse(ws.url).path))
    await page.goto(app_url)
    await expect(page.locator("#conn")).to_have_attribute("data-status", "open")
    await expect(page.locator("#user-id")).to_have_value("demo-user")  # no provider: demo name

    assert "/_convex/browser.bundle.js" in requests
    assert not [p for p in requests if p.endswith("sync.js")], requests
    assert sockets == ["/api/1.48.0/sync"]  # the official client names its version
    assert await page.evaluate(
        "window.workbench.client instanceof window.convex.ConvexClient") is True
    async with httpx.AsyncClient(base_url=app_url) as http:
        bundle = await http.get("/_convex/browser.bundle.js")
        assert bundle.status_code == 200
        assert bundle.headers["content-type"].startswith("text/javascript")
        assert bundle.content == BUNDLE.read_bytes()  # the pinned npm package's own file
        assert (await http.get("/sync.js")).status_code == 404
        assert (await http.get("/node_modules/convex/package.json")).status_code == 404
        assert (await http.get("/package-lock.json")).status_code == 404


async def sign_in_with_provider(page: Page, user: str) -> None:
    await page.click("#signin-provider")
    await page.fill("input[name=user]", user)
    await page.click("button[type=submit]")
    await expect(page.locator("#signed-in-name")).to_have_text(user)


async def refused(page: Page, token: str) -> Any:
    await page.fill("#signin-token", token)
    await page.click("#signin-submit")
    return page.locator("#signin-error")


async def test_sign_in_through_the_provider(serve_with: Any, dev_login: DevLogin,
                                            browser: Any) -> None:
    expect.set_options(timeout=TIMEOUT)
    login_url = f"{dev_login.url}/login"
    auth_app_url = await serve_with(AUTH_ISSUER=dev_login.url, AUTH_LOGIN_URL=login_url)
    errors: list[str] = []
    ada = await (await browser.new_context()).new_page()
    watch_errors(ada, "ada", errors)
    await ada.goto(auth_app_url)
    await expect(ada.locator("#signin")).to_be_visible()
    await expect(ada.locator("#signin-issuer")).to_have_text(dev_login.url)
    await expect(ada.locator("#layout")).to_be_hidden()
    await expect(ada.locator("#user-field")).to_be_hidden()  # no free-text name to forge
    href = await ada.locator("#signin-provider").get_attribute("href") or ""
    assert href.startswith(login_url + "?redirect_uri=")

    # Ada signs in at the provider, comes back signed in, and acts as herself.
    await sign_in_with_provider(ada, "ada")
    assert "id_token" not in ada.url  # the token is taken off the address bar
    await ada.fill("#new-session-title", "Ada's plans")
    await ada.click("#new-session button")
    await expect(ada.locator("#session-title")).to_have_text("Ada's plans")
    await expect(ada.locator("#session-meta")).to_contain_text("ada ·")
    ada_session = ada.url.split("#/s/")[1]

    # A forged name gets nowhere: the server checks it against the token's subject.
    forged = await ada.evaluate("""window.workbench.client
        .mutation("chatSessions:create", {userId: "bob", title: "forged"})
        .then(() => "created", (error) => error.data?.code)""")
    assert forged == "forbidden"

    # Bob pastes a token: he sees none of Ada's sessions and cannot open hers.
    bob = await (await browser.new_context()).new_page()
    watch_errors(bob, "bob", errors)
    await bob.goto(auth_app_url)
    await bob.fill("#signin-token", dev_login.token("bob"))
    await bob.click("#signin-submit")
    await expect(bob.locator("#signed-in-name")).to_have_text("bob")
    await expect(bob.locator("#sessions-empty")).to_be_visible()
    await bob.goto(f"{auth_app_url}/#/s/{ada_session}")
    await expect(bob.locator("#session-missing")).to_contain_text("be opened")

    # Ada's sign-in survives a reload; signing out forgets it.
    await ada.reload()
    await expect(ada.locator(".session-item", has_text="Ada's plans")).to_be_visible()
    await ada.click("#sign-out")
    await expect(ada.locator("#signin")).to_be_visible()
    await ada.reload()
    await expect(ada.locator("#signin")).to_be_visible()
    await expect(ada.locator("#signin-error")).to_be_hidden()

    expected = ("ada: [CONVEX M(chatSessions:create)] ",)  # the forged call, logged by the client
    unexpected = [e for e in errors if not e.startswith(expected)]
    assert not unexpected, "\n".join(unexpected)


async def test_bad_tokens_are_refused_with_the_reason(keys_app_url: str, browser: Any,
                                                      keys: Keys, tmp_path: Path) -> None:
    expect.set_options(timeout=TIMEOUT)
    auth_app_url = keys_app_url
    page = await (await browser.new_context()).new_page()
    await page.goto(auth_app_url)
    await expect(page.locator("#signin")).to_be_visible()

    error = await refused(page, "not-a-token")
    await expect(error).to_contain_text("That token was refused: malformed token")
    error = await refused(page, keys.token(sub="ada", exp=1_000, iat=500))
    await expect(error).to_contain_text("That token was refused: token has expired")
    (tmp_path / "other").mkdir()
    other = Keys(tmp_path / "other")
    error = await refused(page, other.token(sub="ada"))  # same key id, another key
    await expect(error).to_contain_text("That token was refused: token refused")
    await expect(page.locator("#layout")).to_be_hidden()

    # A redirect that this page did not start (no matching state) is refused too.
    back = urlencode({"id_token": keys.token(sub="ada"), "state": "not-ours"})
    await page.goto("about:blank")  # arrive from elsewhere, as from the provider
    await page.goto(f"{auth_app_url}/#{back}")
    await expect(page.locator("#signin-error")).to_contain_text("did not start on this page")
    await expect(page.locator("#layout")).to_be_hidden()
    assert "id_token" not in page.url


async def test_a_sign_in_the_server_stops_accepting_returns_to_sign_in(
        keys_app_url: str, browser: Any, keys: Keys) -> None:
    """setAuth's refusal path: the token expires, the socket reconnects, the server refuses
    the token (AuthError), the client asks fetchToken again, which has nothing newer: the
    page says so and asks to sign in again."""
    expect.set_options(timeout=TIMEOUT)
    page = await (await browser.new_context()).new_page()
    sockets: list[Any] = []

    async def route(ws: Any) -> None:
        server = ws.connect_to_server()
        server.on_message(ws.send)
        sockets.append(ws)

    await page.route_web_socket(re.compile(r".*/api/(?:[^/]+/)?sync$"), route)
    await page.goto(keys_app_url)
    await expect(page.locator("#signin-provider")).to_be_hidden()  # no login URL: paste only
    now = int(time.time())
    await page.fill("#signin-token", keys.token(sub="ada", iat=now, exp=now + 3))
    await page.click("#signin-submit")
    await expect(page.locator("#signed-in-name")).to_have_text("Ada")
    await expect(page.locator("#sessions-empty")).to_be_visible()
    await asyncio.sleep(now + 3 + 5 + 1 - time.time())  # past exp and the server's 5 s leeway
    for ws in sockets:
        await ws.close(code=1011, reason="InternalServerError: dropped")
    await expect(page.locator("#signin")).to_be_visible(timeout=20_000)
    await expect(page.locator("#signin-error")).to_contain_text("Sign in again")
    assert await page.evaluate("localStorage.getItem('workbench.token')") is None
