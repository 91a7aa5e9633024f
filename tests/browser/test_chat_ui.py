"""The chat UI in web/ (served at /), driven in two live browser windows and at phone width.

One test walks the whole product: sessions, live chat between two windows, the work-order
board (create, legal moves only, live status changes, details), an illegal move caused by a
stale window (the error is shown), a dropped connection (banner, then reconnect and replay of
a message typed while offline), and the phone layout. Screenshots go to
tests/browser/screenshots/ for people to look at.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, WebSocketRoute, expect

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT = 10_000  # ms, for every wait on the UI


class SocketControl:
    """Sits between a page and the server's sync socket, /api/<client version>/sync
    (Playwright's WebSocket routing).

    `hold` buffers what the server sends (the page goes stale while its own messages still
    reach the server); `release` delivers the buffer. `refuse` closes new sockets at once;
    `drop` closes the open ones, as a network failure would.
    """

    def __init__(self) -> None:
        self.hold = False
        self.refuse = False
        self.held: list[tuple[WebSocketRoute, str | bytes]] = []
        self.open: list[WebSocketRoute] = []

    async def route(self, ws: WebSocketRoute) -> None:
        if self.refuse:
            await ws.close(code=1011, reason="InternalServerError: test refuses")
            return
        server = ws.connect_to_server()
        self.open.append(ws)

        def from_server(message: str | bytes) -> None:
            if self.hold:
                self.held.append((ws, message))
            else:
                ws.send(message)

        server.on_message(from_server)

    def release(self) -> None:
        self.hold = False
        held, self.held = self.held, []
        for ws, message in held:
            ws.send(message)

    async def drop(self) -> None:
        sockets, self.open = self.open, []
        for ws in sockets:
            await ws.close(code=1011, reason="InternalServerError: dropped")


def watch_errors(page: Page, name: str, errors: list[str]) -> None:
    page.on("pageerror", lambda exc: errors.append(f"{name}: uncaught {exc}"))
    page.on("console", lambda msg: errors.append(f"{name}: console.{msg.type}: {msg.text}")
            if msg.type == "error" else None)


def card(page: Page, status: str, title: str) -> Any:
    return page.locator(f".column[data-status={status}] .card", has_text=title)


async def offered_moves(page: Page, status: str, title: str) -> set[str]:
    buttons = card(page, status, title).locator("[data-next]")
    return {await b.get_attribute("data-next") or "" for b in await buttons.all()}


async def send_message(page: Page, text: str, role: str = "user") -> None:
    await page.select_option("#composer-role", role)
    await page.fill("#composer-input", text)
    await page.press("#composer-input", "Enter")


async def create_work_order(page: Page, title: str, *, target: tuple[str, str] | None = None,
                            args: str = "") -> None:
    await page.click("#new-work-order")
    dialog = page.locator("dialog.create")
    await expect(dialog).to_be_visible()
    await dialog.locator("[name=title]").fill(title)
    await dialog.locator("[name=workflowType]").fill("bugfix")
    await dialog.locator("[name=prompt]").fill(
        "The login test fails about once in 20 runs. Find the race and fix it.")
    if target:
        await dialog.locator("[name=targetRepo]").fill(target[0])
        await dialog.locator("[name=targetBranch]").fill(target[1])
    await dialog.locator("[name=args]").fill(args)
    await dialog.locator("button[type=submit]").click()
    await expect(dialog).to_be_hidden()


async def test_chat_ui_two_windows_and_phone(app_url: str, browser: Any,
                                             screenshots: Path) -> None:
    expect.set_options(timeout=TIMEOUT)
    errors: list[str] = []
    shot = 0

    async def snap(page: Page, name: str) -> None:
        nonlocal shot
        shot += 1
        await page.screenshot(path=str(screenshots / f"{shot:02d}-{name}.png"))

    # Two windows with separate storage, as two people on two machines.
    context_a = await browser.new_context(viewport=DESKTOP)
    context_b = await browser.new_context(viewport=DESKTOP)
    a, b = await context_a.new_page(), await context_b.new_page()
    watch_errors(a, "A", errors)
    watch_errors(b, "B", errors)
    control = SocketControl()
    await a.route_web_socket(re.compile(r".*/api/(?:[^/]+/)?sync$"), control.route)

    for page in (a, b):
        await page.goto(app_url)
        await expect(page.locator("#conn")).to_have_attribute("data-status", "open")
        await expect(page.locator("#sessions-empty")).to_contain_text("No sessions yet")
        await expect(page.locator("#user-id")).to_have_value("demo-user")
    await snap(a, "no-sessions")

    # A creates a session; it appears in B's list live and B opens it.
    title = f"Release planning {uuid.uuid4().hex[:4]}"
    await a.fill("#new-session-title", title)
    await a.click("#new-session button")
    await expect(a.locator("#session-title")).to_have_text(title)
    await expect(a.locator("#messages-empty")).to_contain_text("No messages yet")
    session_id = a.url.split("#/s/")[1]
    await b.locator(".session-item", has_text=title).click()
    await expect(b.locator("#session-title")).to_have_text(title)
    await expect(b.locator("#messages-empty")).to_be_visible()

    # Messages go both ways without reloads.
    await send_message(a, "Can we ship the login fix today?")
    await expect(b.locator(".message.user .message-body")).to_have_text(
        "Can we ship the login fix today?")
    await send_message(b, "Yes, CI is green on main.\nI'll open a work order.", "assistant")
    await expect(a.locator(".message.assistant .message-body")).to_contain_text("CI is green")
    await expect(a.locator("#messages-empty")).to_be_hidden()
    await expect(a.locator("#composer-input")).to_have_value("")
    await snap(b, "chat-window-b")

    # A creates a work order; B sees it in Draft and moves it to Submitted; A follows live.
    await a.click("#tab-board")
    await b.click("#tab-board")
    await expect(a.locator(".board-empty")).to_contain_text("No work orders yet")
    order = "Fix flaky login test"
    await create_work_order(a, order, target=("acme/webapp", "release-2.4"),
                            args="priority=high\nretries=2")
    await expect(card(b, "draft", order)).to_be_visible()
    assert await offered_moves(b, "draft", order) == {"submitted", "canceled"}
    await card(b, "draft", order).locator("[data-next=submitted]").click()
    await expect(card(a, "submitted", order)).to_be_visible()
    await expect(card(a, "draft", order)).to_have_count(0)
    assert await offered_moves(a, "submitted", order) == {"accepted", "canceled"}
    await snap(a, "board-submitted-window-a")

    # Details (workOrders:get) in A: args, target, links; live while B moves the order.
    await card(a, "submitted", order).locator(".card-open").click()
    detail = a.locator("dialog.detail")
    await expect(detail.locator(".args")).to_contain_text("priority")
    await expect(detail.locator(".args")).to_contain_text("high")
    await expect(detail.locator(".detail-target")).to_have_text("acme/webapp @ release-2.4")
    await detail.locator(".link-form [name=kind]").select_option("pr")
    await detail.locator(".link-form [name=value]").fill("https://github.com/acme/webapp/pull/7")
    await detail.locator(".link-form button").click()
    await expect(detail.locator(".links a")).to_have_text("https://github.com/acme/webapp/pull/7")
    await expect(detail.locator(".link-form [name=value]")).to_have_value("")
    await card(b, "submitted", order).locator("[data-next=accepted]").click()
    await expect(detail.locator(".badge")).to_have_text("Accepted")
    assert {await x.get_attribute("data-next")
            for x in await detail.locator("[data-next]").all()} == {"running", "canceled"}
    await snap(a, "work-order-details")
    await detail.locator("button[aria-label=Close]").click()
    await expect(detail).to_be_hidden()

    # A goes stale (its updates are held back); B cancels; A's "Start" is then illegal and
    # the server's refusal is shown inline. A catches up once updates flow again.
    control.hold = True
    await card(b, "accepted", order).locator("[data-next=canceled]").click()
    await expect(card(b, "canceled", order)).to_be_visible()
    assert await offered_moves(b, "canceled", order) == set()
    await card(a, "accepted", order).locator("[data-next=running]").click()
    control.release()
    error = a.locator(".board-error")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("cannot move a work order from canceled to running")
    await expect(card(a, "canceled", order)).to_be_visible()
    await expect(card(a, "canceled", order).locator("[data-next]")).to_have_count(0)
    await snap(a, "illegal-move-error")

    # The connection drops. A message the server ran but never answered (its reply was lost)
    # and one typed while offline are both sent on reconnect under the same session id; each
    # lands exactly once. Meanwhile A shows the banner and the pending message.
    await a.click("#tab-chat")
    await b.click("#tab-chat")
    control.hold = True
    await send_message(a, "Sent just before the drop")
    await expect(b.locator(".message-body", has_text="before the drop")).to_have_count(1)
    control.refuse = True
    control.held.clear()
    control.hold = False
    await control.drop()
    await expect(a.locator("#conn-banner")).to_be_visible()
    await expect(a.locator("#conn")).to_have_attribute("data-status", "reconnecting")
    await send_message(a, "Typed while offline")
    await expect(a.locator(".message.pending")).to_have_count(2)
    await snap(a, "connection-lost")
    control.refuse = False
    await expect(a.locator("#conn-banner")).to_be_hidden(timeout=20_000)
    await expect(a.locator(".message.pending")).to_have_count(0)
    for page in (a, b):
        for text in ("Sent just before the drop", "Typed while offline"):
            await expect(page.locator(".message-body", has_text=text)).to_have_count(1)

    # Phone width: the session list first, then the chat, then a stacked board.
    phone_context = await browser.new_context(viewport=PHONE, device_scale_factor=2,
                                              is_mobile=True, has_touch=True)
    phone = await phone_context.new_page()
    watch_errors(phone, "phone", errors)
    await phone.goto(app_url)
    await expect(phone.locator(".session-item", has_text=title)).to_be_visible()
    await expect(phone.locator("#welcome")).to_be_hidden()
    await snap(phone, "phone-sessions")
    await phone.locator(".session-item", has_text=title).click()
    await expect(phone.locator(".message-body", has_text="Typed while offline")).to_be_visible()
    await expect(phone.locator(".sidebar")).to_be_hidden()
    await expect(phone.locator(".back")).to_be_visible()
    await snap(phone, "phone-chat")
    await b.click("#tab-board")
    await phone.goto(f"{app_url}/#/s/{session_id}/board")
    await expect(card(phone, "canceled", order)).to_be_visible()
    await create_work_order(phone, "Update the changelog")
    await card(phone, "draft", "Update the changelog").locator("[data-next=submitted]").click()
    await expect(card(phone, "submitted", "Update the changelog")).to_be_visible()
    await expect(card(b, "submitted", "Update the changelog")).to_be_visible()
    boxes = [await phone.locator(f".column[data-status={s}]").bounding_box()
             for s in ("draft", "submitted", "canceled")]
    assert all(box is not None for box in boxes)
    assert len({round(box["x"]) for box in boxes if box}) == 1, "columns should stack"
    assert boxes[0] and boxes[1] and boxes[1]["y"] > boxes[0]["y"]
    assert all(box["width"] <= PHONE["width"] for box in boxes if box)
    overflow = await phone.evaluate("document.documentElement.scrollWidth")
    assert overflow <= PHONE["width"], f"the page scrolls sideways at phone width ({overflow}px)"
    await snap(phone, "phone-board")

    # A link to a session that does not exist shows an error state, not a broken page.
    await b.goto(f"{app_url}/#/s/no-such-session")
    await expect(b.locator("#session-missing")).to_contain_text("be opened")
    await expect(b.locator("#chat-panel")).to_be_hidden()

    for context in (context_a, context_b, phone_context):
        await context.close()
    # The official client logs every failed mutation to the console: the refused move is the
    # one failure this walk causes on purpose.
    refused = "A: console.error: [CONVEX M(workOrders:updateStatus)] cannot move a work order"
    unexpected = [e for e in errors if not e.startswith(refused)]
    assert not unexpected, "\n".join(unexpected)


async def test_reconnects_after_server_restart(app_server: Any, browser: Any,
                                               screenshots: Path) -> None:
    """A real outage: the server is SIGKILLed and comes back on the same port. The page
    shows the banner, reconnects on its own, resubscribes, and keeps working."""
    expect.set_options(timeout=TIMEOUT)
    errors: list[str] = []
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    watch_errors(page, "page", errors)
    await page.goto(app_server.url)
    await page.fill("#new-session-title", "Outage drill")
    await page.click("#new-session button")
    await send_message(page, "Before the restart")
    await expect(page.locator(".message-body", has_text="Before the restart")).to_be_visible()

    await app_server.kill()
    await expect(page.locator("#conn-banner")).to_be_visible()
    await app_server.start()
    await expect(page.locator("#conn-banner")).to_be_hidden(timeout=25_000)
    await expect(page.locator("#conn")).to_have_attribute("data-status", "open")
    await send_message(page, "After the restart")
    await expect(page.locator(".message:not(.pending) .message-body")).to_have_text(
        ["Before the restart", "After the restart"])
    await page.screenshot(path=str(screenshots / "20-after-server-restart.png"))
    await context.close()
    # Chromium logs each refused reconnect attempt; anything else is a bug.
    unexpected = [e for e in errors if "WebSocket connection to" not in e]
    assert not unexpected, "\n".join(unexpected)
