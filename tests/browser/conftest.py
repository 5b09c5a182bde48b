"""Fixtures of the browser tests: chatbot-local in a subprocess, Debian's Chromium, a fresh page per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tools.demo_page import CHROMIUM, TIMEOUT_MS, VIEWPORT, launch
from tools.local_api import RunningApi, running_chatbot_local


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without Chromium the browser tests are skipped on a laptop, but fail in CI (.ci/run installs it)."""
    if CHROMIUM.exists() or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} not found (apt-get install chromium)")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def chatbot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    """The local API with its defaults; a few more anonymous sessions per IP than the default 10."""
    with running_chatbot_local(tmp_path_factory.mktemp("browser"), {"ANON_SESSIONS_PER_HOUR": "100"}) as api:
        yield api


@pytest.fixture(scope="session")
def rate_limited_chatbot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    environ = {"RATE_LIMIT_PER_MINUTE": "2", "ANON_SESSIONS_PER_HOUR": "100"}
    with running_chatbot_local(tmp_path_factory.mktemp("browser-rate-limited"), environ) as api:
        yield api


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def console_errors() -> list[str]:
    return []


@pytest.fixture
def page(browser: Browser, console_errors: list[str]) -> Iterator[Page]:
    """A fresh context (own sessionStorage) and page; console errors are collected."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(TIMEOUT_MS)
    new_page = context.new_page()

    def record(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    new_page.on("console", record)
    new_page.on("pageerror", lambda error: console_errors.append(f"uncaught: {error}"))
    yield new_page
    context.close()
