"""The demo page's streaming in Chromium: the real chatbot-local serves the page and the HTTP API, and
the WebSocket API is the local one of the fixture template (its handlers stream the message's words
back in the product's frames); the page is told to stream, and its stream ticket points there."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Route, expect
from support.websocket_api import RunningWebSocketApi, running_websocket_api

from tools.demo_page import TIMEOUT_MS, VIEWPORT, bubbles, open_demo, opened_sockets, send
from tools.local_api import RunningApi

pytestmark = pytest.mark.browser

MARKUP = "<img src=x onerror=alert(1)> <b>bold</b>"
# Records every text the streaming bubble shows, in order (runs in the page before a message is sent).
WATCH_STREAMING = """() => {
    window.streamedStates = [];
    new MutationObserver(() => {
        const text = document.querySelector("#messages .message-streaming .bubble")?.textContent;
        if (text !== undefined && window.streamedStates.at(-1) !== text) window.streamedStates.push(text);
    }).observe(document.getElementById("messages"), { subtree: true, childList: true, characterData: true });
}"""


@pytest.fixture
def stream_api() -> Iterator[RunningWebSocketApi]:
    # Per test: the suite's autouse fixture clears the stream variables this server sets before each test.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "environ", dict(os.environ))
        with running_websocket_api(os.environ) as api:  # type: ignore[arg-type]
            yield api


def streaming_page(browser: Browser, chatbot: RunningApi, ticket_status: int, stream_url: str) -> Page:
    """The demo page, told to stream; its ticket requests answered with `ticket_status` and `stream_url`.

    The page's CSP names chatbot-local's own WebSocket port, so this context bypasses it."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC", bypass_csp=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    config = json.dumps({"apiUrl": chatbot.base, "streaming": True})
    page.route(
        "**/config.js",
        lambda route: route.fulfill(content_type="text/javascript", body=f"export default Object.freeze({config});"),
    )

    def ticket(route: Route) -> None:
        body = {"ticket": "good-alice", "expires_at": "2030-01-01T00:00:00Z", "url": f"{stream_url}/?ticket=good-alice"}
        answer = body if ticket_status == 201 else {"message": "Not Found"}
        cors = {"access-control-allow-origin": chatbot.web}
        route.fulfill(status=ticket_status, content_type="application/json", headers=cors, body=json.dumps(answer))

    page.route("**/stream-tickets", ticket)
    return page


def test_the_answer_streams_into_the_bubble_as_text(
    browser: Browser, chatbot: RunningApi, stream_api: RunningWebSocketApi
) -> None:
    page = streaming_page(browser, chatbot, 201, stream_api.url)
    sockets = opened_sockets(page)
    open_demo(page, chatbot.web + "/")
    page.evaluate(WATCH_STREAMING)

    send(page, f"one two three {MARKUP}")

    text = f"one two three {MARKUP}"
    expect(bubbles(page)).to_have_text([text, text])  # the done turn's stored versions
    states: list[str] = page.evaluate("() => window.streamedStates")
    partial = [state for state in states if state.strip() != text]
    assert len(partial) >= 2  # at least two visible partial states before done
    assert all(text.startswith(state.rstrip()) for state in partial)
    assert page.locator("#messages img, #messages b").count() == 0  # markup shown as text, never parsed
    assert len(sockets) == 1
    page.context.close()


def test_two_messages_share_one_connection(
    browser: Browser, chatbot: RunningApi, stream_api: RunningWebSocketApi
) -> None:
    page = streaming_page(browser, chatbot, 201, stream_api.url)
    sockets = opened_sockets(page)
    open_demo(page, chatbot.web + "/")

    send(page, "first")
    send(page, "second")

    expect(bubbles(page)).to_have_text(["first", "first", "second", "second"])
    assert len(sockets) == 1
    page.context.close()


def test_without_a_ticket_route_the_page_posts_the_message(browser: Browser, chatbot: RunningApi) -> None:
    page = streaming_page(browser, chatbot, 404, "ws://127.0.0.1:9")
    sockets = opened_sockets(page)
    open_demo(page, chatbot.web + "/")

    send(page, "Hello there")

    expect(bubbles(page)).to_have_text(["Hello there", "You said: Hello there"])
    assert sockets == []
    page.context.close()


def test_a_stream_closed_before_done_falls_back_to_the_http_post(
    browser: Browser, chatbot: RunningApi, stream_api: RunningWebSocketApi
) -> None:
    page = streaming_page(browser, chatbot, 201, stream_api.url)
    open_demo(page, chatbot.web + "/")

    send(page, "bye")  # the fixture's handler closes the connection instead of answering

    expect(bubbles(page)).to_have_text(["bye", "You said: bye"])
    page.context.close()
