"""Retake the README's screenshot of the demo page (docs/demo.png) after a short conversation.

    .venv/bin/python tests/browser/take_screenshot.py

Starts chatbot-local on free ports and drives Debian's Chromium like the browser tests do.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared support package
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "local"))

from browser_kit import launch, take_screenshot
from local_kit import ROOT, running_chatbot_local
from playwright.sync_api import sync_playwright


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
