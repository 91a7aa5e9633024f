"""The dashboard at /_dashboard, driven in Debian's Chromium against the repo's own app.

Sign in with the admin key (a wrong one is refused in the page), edit a document and see
the chat UI in a second browser follow, run a function and see its result and log line,
watch a failing function appear in Logs, schedule a job and cancel it, and read the health
figures. Every page is screenshotted to tests/browser/screenshots/dashboard-*.png; no page
may log a console error or throw.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.e2e.servers import server_pool

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
KEY = "dashboard-browser-key"
DESKTOP = {"width": 1440, "height": 900}
TIMEOUT = 10_000


@pytest.fixture
async def url(database_url: str, tmp_path_factory: pytest.TempPathFactory,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """The repo's app on `reactive-store serve`, with a known admin key."""
    monkeypatch.setenv("REACTIVE_STORE_ADMIN_KEY", KEY)
    async with server_pool(database_url, tmp_path_factory.mktemp("server-logs")) as pool:
        yield await pool(REPO)


async def call(url: str, kind: str, path: str, args: dict[str, Any]) -> Any:
    """Run a function over HTTP as the admin (another client than the page)."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{url}/api/{kind}", json={"path": path, "args": args},
                                   headers={"Authorization": f"Convex {KEY}"})
    return response.json()


class Browser:
    """Pages in their own contexts; console errors and page errors are collected."""

    def __init__(self, browser: Any, screenshots: Path) -> None:
        self.browser = browser
        self.screenshots = screenshots
        self.errors: list[str] = []
        self.expected: list[str] = []  # starts of console errors a test causes on purpose

    def expect_console_error(self, start: str) -> None:
        """The browser logs a refused request (HTTP 401), and the official client every
        failed mutation, as console errors: a test that causes one on purpose says so."""
        self.expected.append(start)

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not e.startswith(tuple(self.expected))]

    async def page(self, name: str) -> Page:
        context = await self.browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{name}: uncaught {exc}"))
        page.on("console", lambda msg: self.errors.append(f"{name}: {msg.text}")
                if msg.type == "error" else None)
        return page

    async def snap(self, page: Page, name: str) -> None:
        await page.screenshot(path=str(self.screenshots / f"dashboard-{name}.png"))


@pytest.fixture
async def browsers(browser: Any, screenshots: Path) -> AsyncIterator[Browser]:
    expect.set_options(timeout=TIMEOUT)
    pages = Browser(browser, screenshots)
    yield pages
    assert pages.unexpected() == [], "\n".join(pages.unexpected())


async def sign_in(page: Page, url: str, key: str = KEY) -> None:
    await page.goto(f"{url}/_dashboard/")
    await page.fill("#admin-key", key)
    await page.click("#signin-button")


async def test_sign_in_refuses_a_wrong_key_and_shows_every_table(url: str,
                                                                 browsers: Browser) -> None:
    page = await browsers.page("dashboard")
    requests: list[str] = []
    sockets: list[str] = []
    page.on("request", lambda request: requests.append(urlparse(request.url).path))
    page.on("websocket", lambda ws: sockets.append(urlparse(ws.url).path))
    response = await page.goto(f"{url}/_dashboard")
    assert response is not None and response.url.endswith("/_dashboard/")
    assert "frame-ancestors 'none'" in (await response.all_headers())["content-security-policy"]
    browsers.expect_console_error("dashboard: Failed to load resource: the server responded "
                                  "with a status of 401")
    await sign_in(page, url, "not-the-key")
    await expect(page.locator("#signin-error")).to_have_text(
        "That admin key was refused: the admin key is not valid.")
    await expect(page.locator("#shell")).to_be_hidden()
    await browsers.snap(page, "01-signin-refused")
    await call(url, "mutation", "chatSessions:create", {"userId": "demo-user", "title": "Q3"})
    await page.fill("#admin-key", KEY)
    await page.click("#signin-button")
    await expect(page.locator("#conn")).to_have_attribute("data-status", "open")
    # The official client: its bundle, its versioned socket path, no hand-written sync.js.
    assert "/_convex/browser.bundle.js" in requests
    assert not [p for p in requests if p.endswith("sync.js")], requests
    assert sockets == ["/api/1.48.0/sync"]
    sessions = page.locator(".subnav-item[data-table=chat_sessions]")
    await expect(sessions.locator(".badge")).to_have_text("1")
    await sessions.click()
    await expect(page.locator(".page-head h1")).to_have_text("chat_sessions")
    await expect(page.locator(".doc-row")).to_have_count(1)
    await call(url, "mutation", "chatSessions:create", {"userId": "demo-user", "title": "Q4"})
    await expect(page.locator(".doc-row")).to_have_count(2)  # live: no reload
    await expect(sessions.locator(".badge")).to_have_text("2")
    await page.click("#show-schema")
    await expect(page.locator(".drawer")).to_contain_text("by_user_updated")
    await browsers.snap(page, "02-data-schema")
    await page.reload()  # the key is kept for this browser session
    await expect(page.locator("#conn")).to_have_attribute("data-status", "open")
    await page.goto(f"{url}/_dashboard/#/data/nope")
    await expect(page.locator(".problem")).to_contain_text("There is no table “nope”")
    await page.goto(f"{url}/_dashboard/#/elsewhere")
    await expect(page.locator(".problem")).to_contain_text("Page not found")
    await page.click("#signout")
    await expect(page.locator("#signin")).to_be_visible()


async def test_an_edit_in_the_dashboard_updates_the_chat_ui(url: str,
                                                            browsers: Browser) -> None:
    session = (await call(url, "mutation", "chatSessions:create",
                          {"userId": "demo-user", "title": "Launch"}))["value"]
    await call(url, "mutation", "chatMessages:append",
               {"sessionId": session, "role": "user", "content": "Ship it on Friday?"})
    chat = await browsers.page("chat")
    await chat.goto(f"{url}/#/s/{session}")
    body = chat.locator(".message.user .message-body")
    await expect(body).to_have_text("Ship it on Friday?")

    page = await browsers.page("dashboard")
    await sign_in(page, url)
    await page.locator(".subnav-item[data-table=chat_messages]").click()
    row = page.locator(".doc-row", has_text="Ship it on Friday?")
    await row.click()
    await expect(page.locator(".drawer pre.json")).to_contain_text('"role": "user"')
    await browsers.snap(page, "03-data-document")
    await page.click("#edit-doc")
    editor = page.locator("#doc-editor")
    text = await editor.input_value()
    browsers.expect_console_error("dashboard: [CONVEX M(_system/data:replace)] chat_messages.role")
    await editor.fill(text.replace('"role": "user"', '"role": "robot"'))
    await page.click("#save-doc")
    await expect(page.locator("#doc-error")).to_contain_text("robot")
    await browsers.snap(page, "04-data-refused-edit")
    await expect(body).to_have_text("Ship it on Friday?")  # refused: nothing changed
    await editor.fill(text.replace("Ship it on Friday?", "Ship it on Monday."))
    await page.click("#save-doc")
    await expect(body).to_have_text("Ship it on Monday.")  # the other browser, live
    await expect(page.locator(".doc-row", has_text="Ship it on Monday.")).to_have_count(1)
    await browsers.snap(chat, "05-chat-ui-after-edit")

    await page.click("#add-doc")
    insert = page.locator("#doc-editor")
    await insert.fill(json.dumps({"sessionId": session, "role": "assistant",
                                  "content": "Added by hand", "createdAt": 1.0}))
    await page.click("#save-doc")
    await expect(chat.locator(".message.assistant .message-body")).to_have_text("Added by hand")
    await page.click("#delete-doc")
    await page.click("#confirm-delete")
    await expect(chat.locator(".message.assistant")).to_have_count(0)
    await expect(page.locator(".drawer")).to_be_hidden()


async def test_a_filter_by_index_range(url: str, browsers: Browser) -> None:
    for title in ("alpha", "beta"):
        await call(url, "mutation", "chatSessions:create", {"userId": title, "title": title})
    page = await browsers.page("dashboard")
    await sign_in(page, url)
    await page.locator(".subnav-item[data-table=chat_sessions]").click()
    await page.select_option("#index", "by_user_updated")
    field = page.locator(".filter-field[data-field=userId]")
    await field.locator("select.op").select_option("eq")
    await field.locator("input.val-a").fill("beta")
    await page.click("#apply-filter")
    await expect(page.locator(".doc-row")).to_have_count(1)
    await expect(page.locator(".doc-row")).to_contain_text("beta")
    await page.locator(".filter-field[data-field=_creationTime] select.op").select_option("eq")
    await page.locator(".filter-field[data-field=_creationTime] input.val-a").fill("1")
    await page.locator(".filter-field[data-field=userId] select.op").select_option("")
    await page.click("#apply-filter")
    await expect(page.locator("#filter-error")).to_contain_text("set “=” on userId")
    await browsers.snap(page, "06-data-filter-error")


async def test_run_a_function_and_see_its_result_and_log_line(url: str,
                                                              browsers: Browser) -> None:
    session = (await call(url, "mutation", "chatSessions:create",
                          {"userId": "demo-user", "title": "Runs"}))["value"]
    page = await browsers.page("dashboard")
    await sign_in(page, url)
    await page.click("[data-nav=functions]")
    await page.locator(".fn-item[data-path='chatMessages:append']").click()
    await expect(page.locator(".fn-main h1")).to_have_text("chatMessages:append")
    args = page.locator("#fn-args")
    await args.fill(f'{{"sessionId": "{session}", "role": "user", content: 1}}')
    await page.click("#run-fn")
    await expect(page.locator("#args-error")).to_contain_text("not valid JSON")
    await args.fill(json.dumps({"sessionId": session, "role": "user", "content": "hello"}))
    await page.click("#run-fn")
    await expect(page.locator(".run-status")).to_contain_text("Success")
    await expect(page.locator(".run-logs li")).to_contain_text(
        f"appended a user message (5 chars) to session {session}")
    await expect(page.locator(".run-logs .level")).to_have_text("INFO")
    await expect(page.locator(".figures .stat-value").first).to_have_text("1")  # calls, live
    await browsers.snap(page, "07-functions-run")
    await args.fill(json.dumps({"sessionId": "nope", "role": "user", "content": "x"}))
    await page.click("#run-fn")
    await expect(page.locator(".run-status")).to_contain_text("Failed")
    await expect(page.locator(".error-message")).to_contain_text("nope")
    await browsers.snap(page, "08-functions-failed")


async def test_a_failing_function_appears_in_logs(url: str, browsers: Browser) -> None:
    page = await browsers.page("dashboard")
    await sign_in(page, url)
    await page.click("[data-nav=logs]")
    # The bundled app's cron runs every minute: the log is empty only until it first runs.
    await expect(page.locator(".logs-wrap")).to_contain_text(
        re.compile("No function has run|webhooks:retryFailedCron"))
    await call(url, "mutation", "chatSessions:create", {"userId": "u", "title": "ok"})
    failed = await call(url, "mutation", "workOrders:updateStatus",
                        {"workOrderId": "nope", "status": "running"})
    assert failed["status"] == "error"
    row = page.locator(".log-row.failed")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("workOrders:updateStatus")
    await expect(page.locator(".log-row.ok", has_text="chatSessions:create")).to_have_count(1)
    await browsers.snap(page, "09-logs-tail")
    await page.select_option("#log-outcome", "failure")
    await expect(page.locator(".log-row")).to_have_count(1)
    await row.click()
    drawer = page.locator(".drawer.wide")
    await expect(drawer.locator(".error-message")).to_have_text(failed["errorMessage"])
    await expect(drawer).to_contain_text("HttpApi")
    await browsers.snap(page, "10-logs-detail")
    await page.fill("#log-text", "no such text anywhere")
    await expect(page.locator(".logs-wrap")).to_contain_text("No execution matches")


async def test_schedule_a_job_then_cancel_it(url: str, browsers: Browser) -> None:
    page = await browsers.page("dashboard")
    await sign_in(page, url)
    await page.goto(f"{url}/_dashboard/#/functions/webhooks:retryFailed")
    await expect(page.locator(".fn-main h1")).to_have_text("webhooks:retryFailed")
    await page.fill("#fn-delay", "3600")
    await page.click("#schedule-fn")
    await expect(page.locator(".toast")).to_contain_text("Scheduled webhooks:retryFailed")
    await page.click("[data-nav=schedules]")
    job = page.locator(".job-row[data-state=pending]", has_text="webhooks:retryFailed")
    await expect(job).to_have_count(1)
    await expect(job).to_contain_text("in 1 h")
    await browsers.snap(page, "11-schedules-pending")
    await job.locator(".cancel-job").click()
    await job.locator(".confirm-cancel").click()
    await expect(job).to_have_count(0)
    await page.locator(".chip[data-state=canceled]").click()
    await expect(page.locator(".job-row[data-state=canceled]")).to_have_count(1)
    await page.locator(".tab[data-tab=crons]").click()
    await expect(page.locator(".cron-row")).to_contain_text("retry failed webhooks")
    await browsers.snap(page, "12-schedules-crons")


async def test_health_shows_the_server_figures_live(url: str, browsers: Browser) -> None:
    page = await browsers.page("dashboard")
    await sign_in(page, url)
    await page.click("[data-nav=health]")
    sockets = page.locator(".stat-card[data-stat=sockets] .stat-value")
    await expect(sockets).to_have_text("1")
    await call(url, "mutation", "chatSessions:create", {"userId": "u", "title": "t"})
    await expect(page.locator(".fn-row[data-path='chatSessions:create']")).to_be_visible()
    await expect(page.locator(".stat-card[data-stat=poolInUse] .stat-value")).to_contain_text(
        "max")
    await page.wait_for_timeout(2500)  # a few samples for the charts
    await browsers.snap(page, "13-health")


async def test_a_server_restarted_with_another_key_signs_the_page_out(
        database_url: str, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch, browsers: Browser) -> None:
    """`dev` makes a new key per run: after a reconnect the page checks its key again, and
    returns to sign-in, with the reason, when the server no longer takes it."""
    monkeypatch.setenv("REACTIVE_STORE_ADMIN_KEY", KEY)
    async with server_pool(database_url, tmp_path_factory.mktemp("server-logs")) as pool:
        url = await pool(REPO)
        page = await browsers.page("dashboard")
        await sign_in(page, url)
        await expect(page.locator("#conn")).to_have_attribute("data-status", "open")
        monkeypatch.setenv("REACTIVE_STORE_ADMIN_KEY", "a-new-key-for-this-run")
        browsers.expect_console_error("dashboard: Failed to load resource: the server "
                                      "responded with a status of 401")
        browsers.expect_console_error("dashboard: Failed to authenticate")  # the socket's own
        browsers.expect_console_error("dashboard: WebSocket connection to")  # while it is down
        await pool.server(url).restart()
        await expect(page.locator("#signin")).to_be_visible(timeout=25_000)
        await expect(page.locator("#signin-error")).to_have_text(
            "That admin key was refused: the admin key is not valid.")
        assert await page.evaluate("sessionStorage.length + localStorage.length") == 0
