"""Message search in the chat UI (web/search.js), in headless Chromium: typing shows the
session's matching messages best first with the matched words marked, a matching message
sent from another window joins the results live, typeahead matches a word's start, a query
with no match says so, and clearing the box (Escape) brings the conversation back."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.test_chat_ui import DESKTOP, TIMEOUT, send_message, watch_errors

pytestmark = pytest.mark.e2e


async def test_live_message_search(app_url: str, browser: Any, screenshots: Path) -> None:
    expect.set_options(timeout=TIMEOUT)
    errors: list[str] = []
    a: Page = await (await browser.new_context(viewport=DESKTOP)).new_page()
    b: Page = await (await browser.new_context(viewport=DESKTOP)).new_page()
    watch_errors(a, "A", errors)
    watch_errors(b, "B", errors)
    await a.goto(app_url)
    await expect(a.locator("#conn")).to_have_attribute("data-status", "open")
    title = f"Search {uuid.uuid4().hex[:4]}"
    await a.fill("#new-session-title", title)
    await a.click("#new-session button")
    await expect(a.locator("#session-title")).to_have_text(title)
    for text in ("The deploy to staging failed", "Lunch at noon?",
                 "Deploy again after the fix. Deploy logs attached."):
        await send_message(a, text)
        await expect(a.locator(".message.user .message-body", has_text=text)).to_be_visible()
    await b.goto(a.url)
    await expect(b.locator("#session-title")).to_have_text(title)

    await a.fill("#message-search-input", "deploy")
    results = a.locator("#search-list .message-body")
    await expect(results).to_have_text(["Deploy again after the fix. Deploy logs attached.",
                                        "The deploy to staging failed"])
    await expect(a.locator("#search-summary")).to_have_text(
        "2 messages match “deploy”, best first")
    await expect(a.locator("#search-list mark")).to_have_text(["Deploy", "Deploy", "deploy"])
    await expect(a.locator("#messages-scroll")).to_be_hidden()

    # Another window says something that matches: the results follow without a reload.
    await send_message(b, "Deploy finished, all green")
    await expect(results).to_have_count(3)
    await expect(a.locator("#search-summary")).to_contain_text("3 messages match")
    await a.screenshot(path=str(screenshots / "search-live.png"))

    await a.fill("#message-search-input", "lun")  # typeahead: the start of a word
    await expect(results).to_have_text(["Lunch at noon?"])
    await a.fill("#message-search-input", "kubernetes")
    await expect(a.locator("#search-summary")).to_have_text("No messages match “kubernetes”")
    await expect(results).to_have_count(0)

    await a.press("#message-search-input", "Escape")
    await expect(a.locator("#search-results")).to_be_hidden()
    await expect(a.locator("#messages .message-body")).to_have_count(4)
    assert errors == []
