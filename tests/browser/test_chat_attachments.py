"""Chat attachments in two live Chromium windows: files chosen in the composer are uploaded
through upload URLs and sent with the message; the other window shows the image as a
preview and the document as a download link, live; an oversized file is refused with a
message and nothing is sent; removing a message removes it and its files everywhere."""

from __future__ import annotations

import struct
import uuid
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.test_chat_ui import DESKTOP, PHONE, TIMEOUT, watch_errors
from tests.e2e.servers import ServerProcess

pytestmark = pytest.mark.e2e


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG image, `rgb` fading to white left to right (the browser must decode it to
    show a preview)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + b"".join(bytes(c + (255 - c) * x // width for c in rgb)
                             for x in range(width))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


IMAGE = png(240, 150, (79, 70, 229))
NOTES = b"Release checklist\n- migrate\n- deploy\n"


async def open_session(page: Page, app_url: str, title: str | None = None) -> str:
    await page.goto(app_url)
    await expect(page.locator("#conn")).to_have_attribute("data-status", "open")
    if title is not None:
        await page.fill("#new-session-title", title)
        await page.click("#new-session button")
        await expect(page.locator("#session-title")).to_have_text(title)
    return page.url


async def test_attachments_between_two_windows(app_url: str, app_server: ServerProcess,
                                               browser: Any, screenshots: Path) -> None:
    expect.set_options(timeout=TIMEOUT)
    errors: list[str] = []
    a = await (await browser.new_context(viewport=DESKTOP)).new_page()
    b = await (await browser.new_context(viewport=DESKTOP)).new_page()
    watch_errors(a, "A", errors)
    watch_errors(b, "B", errors)
    title = f"Design review {uuid.uuid4().hex[:4]}"
    session_url = await open_session(a, app_url, title)
    await b.goto(session_url)
    await expect(b.locator("#session-title")).to_have_text(title)

    # A picks two files: they wait in the tray until the message is sent.
    await a.set_input_files("#composer-file", files=[
        {"name": "mockup.png", "mimeType": "image/png", "buffer": IMAGE},
        {"name": "checklist.txt", "mimeType": "text/plain", "buffer": NOTES}])
    chips = a.locator("#attach-tray .attach-chip")
    await expect(chips).to_have_count(2)
    await expect(chips.nth(0)).to_contain_text("mockup.png")
    await expect(chips.nth(1)).to_contain_text("checklist.txt")
    await a.fill("#composer-input", "New mockup and the checklist")
    await a.screenshot(path=str(screenshots / "attachments-1-tray.png"))
    await a.press("#composer-input", "Enter")
    await expect(a.locator("#attach-tray")).to_be_hidden()

    # B sees the message live: the image as a decoded preview, the text file as a link.
    message = b.locator(".message.user", has_text="New mockup and the checklist")
    image = message.locator(".attachment-image img")
    await expect(image).to_have_attribute("alt", "mockup.png")
    await b.wait_for_function(  # decoded: the bytes served are the image sent
        "() => { const img = document.querySelector(\".attachment-image img[alt='mockup.png']\");"
        " return img && img.complete && img.naturalWidth === 240 && img.naturalHeight === 150; }",
        timeout=TIMEOUT)
    link = message.locator("a.attachment-file")
    await expect(link).to_contain_text("checklist.txt")
    await expect(link).to_contain_text(f"{len(NOTES)} B")
    await expect(link).to_have_attribute("download", "checklist.txt")
    href = await link.get_attribute("href")
    assert href is not None
    fetched = await b.evaluate("async (url) => (await fetch(url)).text()", href)
    assert fetched == NOTES.decode()
    await b.screenshot(path=str(screenshots / "attachments-2-window-b.png"))

    # An attachment-only message, removing a file from the tray before sending.
    await a.set_input_files("#composer-file", files=[
        {"name": "one.png", "mimeType": "image/png", "buffer": png(120, 80, (200, 30, 30))},
        {"name": "two.png", "mimeType": "image/png", "buffer": png(120, 80, (30, 160, 60))}])
    await a.locator("#attach-tray .attach-remove").nth(0).click()
    await expect(chips).to_have_count(1)
    await a.click("#composer-send")
    await expect(b.locator(".attachment-image img[alt='two.png']")).to_be_visible()
    await expect(b.locator(".attachment-image img[alt='one.png']")).to_have_count(0)

    # Too big for the chat's 25 MB limit: refused in the page, nothing is sent.
    await a.set_input_files("#composer-file", files=[
        {"name": "huge.bin", "mimeType": "application/octet-stream",
         "buffer": b"\0" * (25 * 1024 * 1024 + 1)}])
    await expect(a.locator("#chat-error")).to_contain_text("huge.bin is larger than 25 MB")
    await expect(chips).to_have_count(0)

    # Removing the first message (chatMessages:remove) takes it and its files away, live.
    message_id = await message.get_attribute("data-id")
    src = await a.locator(".attachment-image img[alt='mockup.png']").get_attribute("src")
    async with httpx.AsyncClient(base_url=app_url) as http:
        assert src is not None and (await http.get(src)).content == IMAGE
        removed = await http.post("/api/mutation", json={
            "path": "chatMessages:remove", "args": {"messageId": message_id}})
        assert removed.json()["status"] == "success", removed.text
        await expect(message).to_have_count(0)
        await expect(a.locator(".attachment-image img[alt='mockup.png']")).to_have_count(0)
        assert (await http.get(src)).status_code == 404
        assert (await http.get(href)).status_code == 404
    await expect(b.locator(".message.user .attachments > *")).to_have_count(1)

    # The phone layout keeps the composer and previews usable.
    phone = await (await browser.new_context(viewport=PHONE)).new_page()
    watch_errors(phone, "phone", errors)
    await phone.goto(session_url)
    await expect(phone.locator(".attachment-image img[alt='two.png']")).to_be_visible()
    await expect(phone.locator(".attach-btn")).to_be_visible()
    box = await phone.locator("#composer").bounding_box()
    assert box is not None and box["width"] <= PHONE["width"]
    await phone.screenshot(path=str(screenshots / "attachments-3-phone.png"))
    assert not errors, "\n".join(errors)
