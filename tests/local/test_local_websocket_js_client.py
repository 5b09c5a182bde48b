"""web/chatbot-client.js's streaming method, run in node against the local WebSocket API of the
fixture template (whose handlers answer in the product's frames), with a fake fetch for the ticket."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.websocket_api import RunningWebSocketApi, running_websocket_api

from tools.local_api import ROOT

CLIENT = ROOT / "web" / "chatbot-client.js"
DRIVER = """
import { ApiError, ChatbotClient, StreamUnavailableError } from "CLIENT";

const WS_URL = process.env.WS_URL;
let tickets = 0;
// The HTTP API's stream-ticket route: a ticket the fixture's authorizer allows; "no-route" has no route.
globalThis.fetch = async (url, init) => {
  if (url.includes("/no-route/")) return new Response('{"message":"Not Found"}', { status: 404 });
  tickets += 1;
  const ticket = { ticket: "good-alice", expires_at: "2030-01-01T00:00:00Z", url: `${WS_URL}/?ticket=good-alice` };
  return new Response(JSON.stringify(ticket), { status: 201 });
};

async function outcome(stream) {
  const texts = [];
  try {
    for await (const text of stream) texts.push(text);
    return { texts, turn: await stream.turn };
  } catch (error) {
    return { texts, error: { name: error.name, status: error.status, code: error.code, requestId: error.requestId,
                             permanent: error.permanent } };
  }
}

const client = new ChatbotClient("http://127.0.0.1:9", { token: "t" });
const result = {};
result.streamed = await outcome(client.streamMessage("s1", "one two three", "9b2f4c1e-3a5d-4e6f-8a7b-0c1d2e3f4a5b"));
result.failed = await outcome(client.streamMessage("s1", "fail"));
result.ticketsForTwoMessages = tickets;
result.closed = await outcome(client.streamMessage("s1", "bye"));
result.reconnected = await outcome(client.streamMessage("s1", "again"));
result.tickets = tickets;
result.noRoute = await outcome(client.streamMessage("no-route", "hi"));
client.closeStream();
globalThis.WebSocket = undefined;
result.noWebSocket = await outcome(client.streamMessage("s1", "hi"));
console.log(JSON.stringify(result));
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("node is needed to run the JavaScript client")
        pytest.skip("node not found")
    folder = tmp_path_factory.mktemp("js-client")
    script = folder / "driver.mjs"
    script.write_text(DRIVER.replace("CLIENT", CLIENT.as_uri()))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "environ", dict(os.environ))
        with running_websocket_api(os.environ) as api:  # type: ignore[arg-type]
            yield run(node, script, api)


def run(node: str, script: Path, api: RunningWebSocketApi) -> dict[str, Any]:
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    flags = ["--experimental-websocket"] if int(version.lstrip("v").split(".")[0]) < 22 else []
    finished = subprocess.run(
        [node, *flags, str(script)],
        env={**os.environ, "WS_URL": api.url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    answer: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return answer


def test_the_stream_yields_the_deltas_then_resolves_with_the_done_turn(result: dict[str, Any]) -> None:
    streamed = result["streamed"]

    assert streamed["texts"] == ["one ", "two ", "three "]
    assert streamed["turn"]["assistant_message"]["content"] == "one two three"
    assert streamed["turn"]["user_message"]["client_message_id"] == "9b2f4c1e-3a5d-4e6f-8a7b-0c1d2e3f4a5b"


def test_an_error_frame_rejects_with_its_body_and_the_status_of_its_code(result: dict[str, Any]) -> None:
    error = result["failed"]["error"]

    assert error["name"] == "ApiError"
    assert (error["status"], error["code"], error["requestId"]) == (429, "rate_limited", "req-1")


def test_one_connection_serves_several_messages(result: dict[str, Any]) -> None:
    assert result["ticketsForTwoMessages"] == 1


def test_a_connection_closed_mid_turn_sends_the_caller_to_http_then_a_new_ticket_reconnects(
    result: dict[str, Any],
) -> None:
    assert result["closed"]["error"]["name"] == "StreamUnavailableError"
    assert result["closed"]["error"]["permanent"] is False
    assert result["reconnected"]["turn"]["assistant_message"]["content"] == "again"
    assert result["tickets"] == 2


def test_no_ticket_route_or_no_websocket_means_streaming_is_unavailable_for_good(result: dict[str, Any]) -> None:
    assert result["noRoute"]["error"] == {"name": "StreamUnavailableError", "permanent": True}
    assert result["noWebSocket"]["error"] == {"name": "StreamUnavailableError", "permanent": True}
