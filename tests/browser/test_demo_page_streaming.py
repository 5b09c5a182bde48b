"""The demo page streams the answer in Chromium against the real chatbot-local (WebSocket API, echo model
streaming word by word): the answer appears progressively, as text, and a reload shows the stored turn."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tools.demo_page import bubbles, open_demo, opened_sockets, send
from tools.local_api import RunningApi, running_chatbot_local

pytestmark = pytest.mark.browser

MARKUP = "<img src=x onerror=alert(1)> <b>bold</b>"
# Records every text the streaming bubble shows, in order (runs in the page before the message is sent).
WATCH_STREAMING = """() => {
    window.streamedStates = [];
    new MutationObserver(() => {
        const bubble = document.querySelector("#messages .message-streaming .bubble");
        const text = bubble?.textContent;
        if (text !== undefined && window.streamedStates.at(-1) !== text) window.streamedStates.push(text);
    }).observe(document.getElementById("messages"), { subtree: true, childList: true, characterData: true });
}"""


@pytest.fixture(scope="module")
def streaming_chatbot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    environ = {"ANON_SESSIONS_PER_HOUR": "100", "ECHO_WORD_DELAY_MS": "120"}
    with running_chatbot_local(tmp_path_factory.mktemp("browser-streaming"), environ) as api:
        yield api


def test_the_answer_appears_progressively_as_text_then_as_stored(
    page: Page, streaming_chatbot: RunningApi, console_errors: list[str]
) -> None:
    sockets = opened_sockets(page)
    open_demo(page, streaming_chatbot.web + "/")
    page.evaluate(WATCH_STREAMING)

    send(page, f"one two three four {MARKUP}")

    answer = f"You said: one two three four {MARKUP}"
    expect(bubbles(page)).to_have_text([f"one two three four {MARKUP}", answer])
    states: list[str] = page.evaluate("() => window.streamedStates")
    partial = [state for state in states if state and state != answer]
    assert len(partial) >= 2  # at least two visible partial states before done
    assert all(answer.startswith(state.rstrip()) for state in partial)
    assert page.locator("#messages img, #messages b").count() == 0  # markup shown as text, never parsed
    assert len(sockets) == 1
    assert "ticket=" in sockets[0].url
    assert console_errors == []


def test_a_reload_shows_the_stored_streamed_turn(page: Page, streaming_chatbot: RunningApi) -> None:
    open_demo(page, streaming_chatbot.web + "/")
    send(page, "streamed then stored")

    page.reload()

    expect(bubbles(page)).to_have_text(["streamed then stored", "You said: streamed then stored"])


def test_two_messages_share_one_connection(page: Page, streaming_chatbot: RunningApi) -> None:
    sockets = opened_sockets(page)
    open_demo(page, streaming_chatbot.web + "/")

    send(page, "first")
    send(page, "second")

    expect(bubbles(page)).to_have_count(4)
    assert len(sockets) == 1
