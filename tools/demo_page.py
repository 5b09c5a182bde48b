"""Drive the demo page with Debian's Chromium through Playwright (never `playwright install`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, ViewportSize, WebSocket, expect

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Headless, and nothing in the background: without these, Chromium's own connections (updates,
# sync, field trials) are refused many at a time on machines without internet.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000
VIEWPORT: ViewportSize = {"width": 1000, "height": 700}

# What the page shows (web/app.js); the tests wait for these texts.
ENDED_ON_LOAD = "Your previous session has ended. Send a message to start a new one."
ENDED_ON_SEND = "Your previous session had ended, so a new one was started."
DELETED = "Conversation deleted. Its messages were erased from the server."


def launch(playwright: Playwright) -> Browser:
    expect.set_options(timeout=TIMEOUT_MS)
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)


def open_demo(page: Page, url: str) -> None:
    page.goto(url)
    wait_until_ready(page)


def wait_until_ready(page: Page) -> None:
    """The page has loaded its configuration and restored any stored conversation."""
    expect(page.locator("main[data-ready='true'][aria-busy='false']")).to_be_attached()


def send(page: Page, text: str) -> None:
    """Type `text`, press Enter, and wait until the page is idle again (answered or refused)."""
    page.locator("#message").fill(text)
    page.locator("#message").press("Enter")
    expect(page.locator("main")).to_have_attribute("aria-busy", "false")


def bubbles(page: Page) -> Any:
    """The conversation's settled message bubbles (pending ones excluded)."""
    return page.locator("#messages .message:not(.message-pending) .bubble")


def opened_sockets(page: Page) -> list[WebSocket]:
    """The WebSockets the page opens from now on."""
    sockets: list[WebSocket] = []

    def opened(socket: WebSocket) -> None:
        sockets.append(socket)

    page.on("websocket", opened)
    return sockets


def stored_session(page: Page) -> dict[str, str] | None:
    result: dict[str, str] | None = page.evaluate(
        "() => JSON.parse(sessionStorage.getItem('chatbot-demo.session') ?? 'null')"
    )
    return result


SCREENSHOT_CONVERSATION = (
    "Hi! Will this conversation survive a page reload?",
    "And what happens to <b>markup</b> in a message?",
)


def take_screenshot(browser: Browser, demo_url: str, path: Path) -> None:
    """The demo after a short conversation, as shown in the README (docs/demo.png)."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, locale="en-GB", timezone_id="UTC")
    try:
        page = context.new_page()
        open_demo(page, demo_url)
        for count, text in enumerate(SCREENSHOT_CONVERSATION, start=1):
            send(page, text)
            expect(bubbles(page)).to_have_count(2 * count)
        page.locator("#message").fill("Thanks!")
        page.screenshot(path=str(path))
    finally:
        context.close()
