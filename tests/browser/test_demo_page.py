"""The demo page (web/) in Debian's Chromium against the real chatbot-local: docs/contract.md section 5."""

from __future__ import annotations

import datetime
import functools
import json
import struct
import threading
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Page, Response, expect

from tools.demo_page import (
    DELETED,
    ENDED_ON_LOAD,
    ENDED_ON_SEND,
    bubbles,
    open_demo,
    send,
    stored_session,
    take_screenshot,
    wait_until_ready,
)
from tools.local_api import RunningApi

pytestmark = pytest.mark.browser

# Runs in the page: the outcome of a fetch as text, or the name of the error it failed with.
FETCH = """async ([url, init]) => {
    try {
        const response = await fetch(url, init);
        return `${response.status} ${await response.text()}`;
    } catch (error) {
        return error.name;
    }
}"""


def test_a_whole_conversation_from_first_message_to_deletion(
    page: Page, chatbot: RunningApi, console_errors: list[str]
) -> None:
    open_demo(page, chatbot.web + "/")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#delete")).to_be_disabled()

    send(page, "Hello there")
    send(page, "How are you?")

    expect(bubbles(page)).to_have_text(
        ["Hello there", "You said: Hello there", "How are you?", "You said: How are you?"]
    )
    expect(page.locator("#empty")).to_be_hidden()
    session = stored_session(page)
    assert session is not None
    assert set(session) == {"id", "token"}
    assert page.evaluate("() => localStorage.length") == 0
    expect(page.locator("#session-info")).to_contain_text(f"Anonymous session {session['id'][:8]}")

    page.locator("#delete").click()

    expect(page.locator("#notice")).to_have_text(DELETED)
    expect(bubbles(page)).to_have_count(0)
    expect(page.locator("#empty")).to_be_visible()
    assert stored_session(page) is None
    status, _, _ = chatbot.call("GET", f"/v1/sessions/{session['id']}/messages", session["token"])
    assert status in (403, 404)
    assert console_errors == []  # no CSP violation, no missing file, no uncaught error


def test_reloading_the_page_keeps_the_conversation(page: Page, chatbot: RunningApi) -> None:
    open_demo(page, chatbot.web + "/")
    send(page, "Remember me")
    session = stored_session(page)

    page.reload()
    wait_until_ready(page)

    expect(bubbles(page)).to_have_text(["Remember me", "You said: Remember me"])
    assert stored_session(page) == session
    send(page, "Still here?")
    expect(bubbles(page)).to_have_count(4)


def test_markup_in_a_message_is_shown_as_text_and_runs_nothing(page: Page, chatbot: RunningApi) -> None:
    payload = "<img src=x onerror=alert(1)>"
    dialogs: list[str] = []
    requested: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.on("request", lambda request: requested.append(request.url))
    open_demo(page, chatbot.web + "/")

    send(page, payload)
    expect(bubbles(page)).to_have_text([payload, f"You said: {payload}"])
    page.reload()  # the history is rendered by another code path
    wait_until_ready(page)

    expect(bubbles(page)).to_have_text([payload, f"You said: {payload}"])
    expect(page.locator("#messages img")).to_have_count(0)  # text, not markup: not even parsed
    assert dialogs == []
    assert not [url for url in requested if url.rstrip("/").endswith("/x")]


def test_a_session_that_ended_is_replaced_when_sending(page: Page, chatbot: RunningApi) -> None:
    open_demo(page, chatbot.web + "/")
    send(page, "First")
    old = stored_session(page)
    assert old is not None
    assert chatbot.call("DELETE", f"/v1/sessions/{old['id']}", old["token"])[0] == 204  # ended elsewhere

    send(page, "Second")

    expect(page.locator("#notice")).to_have_text(ENDED_ON_SEND)
    expect(bubbles(page)).to_have_text(["Second", "You said: Second"])
    new = stored_session(page)
    assert new is not None
    assert new["id"] != old["id"]


def test_a_stored_session_that_ended_is_reported_on_load(page: Page, chatbot: RunningApi) -> None:
    open_demo(page, chatbot.web + "/")
    forged = {"id": str(uuid.uuid4()), "token": "cs1.no-longer-valid"}
    page.evaluate("(value) => sessionStorage.setItem('chatbot-demo.session', value)", json.dumps(forged))

    page.reload()
    wait_until_ready(page)

    expect(page.locator("#notice")).to_have_text(ENDED_ON_LOAD)
    assert stored_session(page) is None
    expect(page.locator("#delete")).to_be_disabled()
    send(page, "Hello again")
    expect(bubbles(page)).to_have_count(2)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def other_origin(tmp_path: Path) -> Iterator[str]:
    """A page on an origin that is not in ALLOWED_ORIGINS (another port of the same host)."""
    (tmp_path / "index.html").write_text("<!doctype html><title>Another site</title><p>Another site</p>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_page_from_another_origin_cannot_read_api_responses(
    page: Page, chatbot: RunningApi, other_origin: str
) -> None:
    create = [chatbot.base + "/v1/anonymous-sessions", {"method": "POST"}]
    preflighted = [chatbot.base + "/v1/sessions", {"headers": {"Authorization": "Bearer x"}}]
    answered = chatbot.output().count("POST /v1/anonymous-sessions 201")
    page.goto(other_origin + "/")

    assert page.evaluate(FETCH, create) == "TypeError"
    assert page.evaluate(FETCH, preflighted) == "TypeError"
    # The API did answer the simple request: the browser refused to hand the answer to the page.
    assert chatbot.output().count("POST /v1/anonymous-sessions 201") == answered + 1

    for demo in (chatbot.web, chatbot.web.replace("127.0.0.1", "localhost")):  # both allowed origins
        open_demo(page, demo + "/")
        assert page.evaluate(FETCH, create).startswith("201 ")
        assert page.evaluate(FETCH, preflighted) == '403 {"message":"Forbidden"}'


def test_rate_limiting_shows_the_wait_from_retry_after(page: Page, rate_limited_chatbot: RunningApi) -> None:
    refused: list[Response] = []
    page.on("response", lambda response: refused.append(response) if response.status == 429 else None)
    # The HTTP post's 429 and its Retry-After: the page is told not to stream (a streamed turn's refusal
    # is an error frame, without a header to count down from).
    config = json.dumps({"apiUrl": rate_limited_chatbot.base, "streaming": False})
    page.route(
        "**/config.js",
        lambda route: route.fulfill(content_type="text/javascript", body=f"export default Object.freeze({config});"),
    )
    page.clock.install()
    open_demo(page, rate_limited_chatbot.web + "/")
    # Stop the page's clock, so its countdown stands still while the test reads it.
    page.clock.pause_at(datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2))

    for attempt in range(5):  # two per minute: at most four pass when the minute rolls over
        send(page, f"Message {attempt}")
        if page.locator("#notice[data-kind='warning']").count():
            break

    assert refused, "no message was rate limited"
    retry_after = refused[0].header_value("retry-after")
    exposed = refused[0].header_value("access-control-expose-headers") or ""
    assert "retry-after" in exposed.lower(), "the page cannot read Retry-After: CORS must expose it"
    assert retry_after is not None
    assert retry_after.isdigit()
    expect(page.locator("#notice")).to_have_text(f"Too many messages. Try again in {retry_after} s.")
    expect(page.locator("#message")).to_have_value(f"Message {attempt}")  # kept for later
    expect(page.locator("#send")).to_be_disabled()

    page.clock.run_for(int(retry_after) * 1000)

    expect(page.locator("#notice")).to_have_text("You can send messages again.")
    expect(page.locator("#send")).to_be_enabled()


def test_the_readme_screenshot_can_be_retaken(browser: Browser, chatbot: RunningApi, tmp_path: Path) -> None:
    path = tmp_path / "demo.png"

    take_screenshot(browser, chatbot.web + "/", path)

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1000, 700)
