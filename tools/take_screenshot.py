"""Retake the README's screenshot of the demo page (docs/demo.png) after a short conversation.

    .venv/bin/python -m tools.take_screenshot

Starts chatbot-local on free ports and drives Debian's Chromium like the browser tests do.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tools.demo_page import launch, take_screenshot
from tools.local_api import ROOT, running_chatbot_local


def main() -> None:
    target = ROOT / "docs" / "demo.png"
    with (
        tempfile.TemporaryDirectory() as folder,
        running_chatbot_local(Path(folder)) as api,
        sync_playwright() as playwright,
    ):
        browser = launch(playwright)
        take_screenshot(browser, api.web + "/", target)
        browser.close()
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
